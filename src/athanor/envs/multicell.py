"""Multicell World: a grid chemistry in which multicellular organisms grow, specialise, mutate and kill.

Source: "Open-Endedness 3: Multicell World". Stated there: a grid; eight chemicals with counts in every space;
each cell performs one chemical reaction, which needs its inputs in the cell's own space and yields energy; the
cells of one organism average their energy and chemicals; a cell with enough energy creates a new cell in a
neighbouring space; the inputs of the first reaction (01 + 02) arrive periodically, more near the bottom; a genome
is a decision tree over a cell's 4-bit pheromone that chooses each new cell's reaction, and a parent can give its
child a new pheromone; killer cells cost energy and are powered by their organism. Everything else below is a
design choice, each with its reason.

World state (all dense grids, H x W, one pure ``tick``):
    chem[y, x, c]  amount of chemical c (c = 0..7) in space (y, x); real-valued, because organisms average it
    org[y, x]      organism slot of the cell there, -1 for an empty space (a table of M slots, ``Rules.slots``)
    rx[y, x]       the cell's reaction r in 0..R-1, or R for a killer cell
    pher[y, x]     the cell's pheromone, 4 bits
    energy[y, x]   the cell's energy
Row 0 is the top, row H - 1 the bottom.

Chemistry. A reaction r has input counts a_r[c] and output counts b_r[c] (two molecules in, two or fewer out). Each
chemical has a potential u[c]; a reaction releases e_r = sum_c u[c] (a_r[c] - b_r[c]) > 0, so energy is the drop
in chemical potential and no cycle of reactions makes energy from nothing. The default table (chemicals written
00..07; inputs ``+``, products after ``>``), u = (0, 4, 4, 3, 3, 2, 2, 1):
    0 green   01+02>03+04  e = 2   the supplied pair (the post's green reaction)
    1 brown   03+04>05+06  e = 2   eats both of green's wastes: green + brown doubles the energy per supplied pair
    2 blue    05+06>07+07  e = 2   eats brown's waste
    3 purple  07+07>00+00  e = 2   the end of the chain
    4 orange  03+03>05+07  e = 3   competes with brown for 03
    5 cyan    04+04>06+07  e = 3   competes with brown for 04
The chain green -> brown -> blue -> purple releases 2 + 2 + 2 + 2 = 8 per supplied pair, all of the pair's
potential (4 + 4); only 01 and 02 are supplied, so every other reaction lives on some organism's waste
("reactions that consume other reactions' waste"). The table is a string in the config (``reactions``,
``potentials``) and can be replaced.

One tick, in this order (each step a choice where the source is silent):
 1. supply: every ``supply_every`` ticks each space gains ``supply * exp(-(H - 1 - y) / (supply_scale * H))`` of
    01 and of 02 (deterministic: an amount, not a draw), so the bottom row gets ``supply`` and a row a quarter of
    the height up gets about 1/e of it when supply_scale = 0.25.
 2. diffusion: every pair of 4-neighbouring spaces exchanges ``diffusion * (c_a - c_b)`` of each chemical (closed
    walls; conservative; stable for diffusion < 0.25); then every amount decays by the factor (1 - ``decay``), a
    sink that keeps the far-from-supply top from filling up forever.
 3. reactions: a cell of reaction r runs it at extent x = min(rate, min over inputs c of chem[c] / a_r[c]), taking
    x a_r from its space, putting x b_r back and gaining x e_r energy (killer cells react nothing).
 4. upkeep: every cell pays ``upkeep``, a killer cell ``killer_cost`` more (killers are powered by their
    organism's reaction cells through the pooling of step 5, as in the post).
 5. pooling: every organism's cells take the mean of their energies, and their spaces the mean of their chemical
    amounts (totals are unchanged). An organism is thus one metabolism spread over its cells, and moves chemicals
    between its spaces: a waste made in one cell can feed another cell's reaction.
 6. death: a cell with negative energy dies (after pooling an organism starves as a whole), and every cell dies
    with probability ``death`` per tick (turnover: space keeps freeing up). A dead cell's energy is lost; its
    space's chemicals stay.
 7. killing: every killer cell destroys each 4-neighbour cell of another organism with probability ``kill``; it
    never harms its own organism or empty space.
 8. birth: every cell with energy >= ``birth_energy`` picks one of the 4 directions at random and a random
    priority (both from one draw of 32 random bits); an empty target space goes to the highest-priority parent
    aiming at it, so a space gets at most one child and only empty spaces are filled. The parent pays
    ``birth_cost``; the child starts with ``child_energy``. The child founds a new organism (reproduction) when
    its parent's organism already has ``max_cells`` cells, or else with probability ``new_organism``; otherwise
    it joins the parent's organism (growth). A founder takes a free slot and its parent's genome, mutated with
    probability ``mutate`` (otherwise it is of its parent's type, so types have populations). At most
    ``MAX_FOUNDINGS`` organisms are founded per tick, the first children in raster order; a child that finds no
    free slot, or comes after them, joins its parent's organism.
Then organism slots without cells are freed.

Genome. A complete binary decision tree of depth D = 4 (31 nodes, node n has children 2n + 1 and 2n + 2). Node n
holds a bit index ``bit[n]`` (-1: the node is a leaf) and a payload: a reaction ``react[n]`` in 0..R (R = killer)
and a 4-bit ``mask[n]``. Evaluated on a pheromone p from the root: at an inner node go to child 2n + 1 + ((p >>
bit) & 1); at a leaf return the payload. A new cell of pheromone p takes reaction react(p). A cell of pheromone
p gives its children pheromone p XOR mask(p) (the post: "a cell with a pheromone of [0001] will produce a child
of pheromone [0010]"; XOR makes alternating checker-board patterns as easy as the post says they are). A founder
has pheromone 0. The tree is compiled into a 16-entry table per organism (``tables``); the cells an organism can
make are those of the pheromones on the orbit 0, m(0), m(m(0)), ... (``phenotype``).
Mutation: ``mutations`` edits, each at the leaf n that a random pheromone reaches (so an edit changes what some
cell would do, rather than a node no pheromone visits), each one of: n's reaction redrawn uniformly over the
R + 1 choices (p 0.4); one bit of n's mask flipped (0.3); n split on a random bit if it lies above depth D, both
children copying its payload (0.2, neutral until they mutate); n's parent made a leaf carrying n's payload (0.1,
the subtree merged). Founders at tick 0 are single-leaf genomes of a random non-killer reaction and mask
0, so the first reaction's dominance near the supply has to be won, not given.

Type. An organism's genome type is an FNV-1a hash of its phenotype: (reaction, child pheromone) for each
pheromone on the orbit of 0, the rest marked unreachable. Mutations of unreachable nodes leave the type unchanged.
Its complexity is the number of distinct reactions (killer included) on that orbit: the cell kinds it can make.

Conservation. For every chemical, the amount in the world changes only by supply, reaction outputs, reaction
inputs and decay; ``World`` accumulates each, and ``tests/envs/test_multicell.py`` checks
    sum chem(t) = sum chem(0) + supplied + produced - consumed - decayed
and that the energy released equals the chemical potential consumed. The totals grow without bound, so float32
sums of them lose the small difference over a long run; ``balance`` accumulates each tick's net change instead
(supplied + produced - consumed - decayed in that tick), which stays as small as the world's contents. Amounts
are float32, and the pooling of step 5 (a segment sum, a division, a broadcast) does not give back exactly what
it took: measured on a 32 x 32 world, it adds about 2e-8 of the world's contents per tick, 0.1-0.2% over a
100,000-tick run (the system logs it as ``conservation_residual``); every other step conserves to rounding.
"""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

N_CHEM = 8
N_PHER = 16
DEPTH = 4
N_NODES = 2 ** (DEPTH + 1) - 1
DIRS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right as (dy, dx)
MUTATION_OPS = (0.4, 0.3, 0.2, 0.1)  # redraw a reaction, flip a mask bit, split a leaf, merge a leaf
MAX_FOUNDINGS = 64  # new organisms per tick at most (a bound on the genomes mutated per tick)

DEFAULT_REACTIONS = "01+02>03+04, 03+04>05+06, 05+06>07+07, 07+07>00+00, 03+03>05+07, 04+04>06+07"
DEFAULT_POTENTIALS = "0,4,4,3,3,2,2,1"
REACTION_NAMES = ("green", "brown", "blue", "purple", "orange", "cyan")
REACTION_COLOURS = ((0.30, 0.75, 0.30), (0.55, 0.36, 0.17), (0.25, 0.45, 0.90), (0.60, 0.30, 0.70),
                    (0.98, 0.60, 0.15), (0.20, 0.80, 0.85))
KILLER_COLOUR = (0.90, 0.10, 0.10)
EXTRA_COLOURS = ((0.85, 0.85, 0.20), (0.95, 0.50, 0.70), (0.50, 0.50, 0.50), (0.65, 0.85, 0.45))


class Chemistry(NamedTuple):
    """A parsed reaction table: inputs a (R, 8), outputs b (R, 8), energies e (R,), potentials u (8,)."""

    inputs: np.ndarray
    outputs: np.ndarray
    energy: np.ndarray
    potential: np.ndarray
    text: tuple[str, ...]


def parse_chemistry(reactions: str, potentials: str) -> Chemistry:
    """Parse ``"01+02>03+04, ..."`` and ``"0,4,4,..."``; every reaction must release positive energy."""
    try:
        u = np.array([float(v) for v in potentials.split(",")], np.float32)
    except ValueError as e:
        raise ValueError(f"potentials must be {N_CHEM} comma-separated numbers, got {potentials!r}") from e
    if u.shape != (N_CHEM,):
        raise ValueError(f"potentials must list {N_CHEM} numbers (one per chemical), got {len(u)}")
    rows_a, rows_b, texts = [], [], []
    for part in [p.strip() for p in reactions.split(",") if p.strip()]:
        m = re.fullmatch(r"([0-7+ ]+)>([0-7+ ]*)", part)
        if not m:
            raise ValueError(f"reaction {part!r} is not of the form '01+02>03+04' (chemicals 00..07)")
        a, b = np.zeros(N_CHEM, np.float32), np.zeros(N_CHEM, np.float32)
        for side, row in ((m.group(1), a), (m.group(2), b)):
            for tok in [t.strip() for t in side.split("+") if t.strip()]:
                row[int(tok)] += 1
        if a.sum() == 0:
            raise ValueError(f"reaction {part!r} has no inputs")
        rows_a.append(a)
        rows_b.append(b)
        texts.append(part.replace(" ", ""))
    if not rows_a:
        raise ValueError("the reaction table is empty")
    inputs, outputs = np.stack(rows_a), np.stack(rows_b)
    energy = (inputs - outputs) @ u
    bad = [t for t, e in zip(texts, energy, strict=True) if e <= 0]
    if bad:
        raise ValueError(f"reactions {bad} release no energy under potentials {potentials!r}; every reaction "
                         "must lower the total potential (otherwise cycles make energy from nothing)")
    return Chemistry(inputs, outputs, energy.astype(np.float32), u, tuple(texts))


@dataclasses.dataclass(frozen=True)
class Rules:
    """Every constant of the world (hashable: a static argument of the jitted tick). See the module docstring."""

    height: int = 64
    width: int = 64
    slots: int = 2048
    founders: int = 128
    reactions: str = DEFAULT_REACTIONS
    potentials: str = DEFAULT_POTENTIALS
    supply: float = 8.0
    supply_every: int = 10
    supply_scale: float = 0.25
    diffusion: float = 0.05
    decay: float = 0.002
    rate: float = 1.0
    upkeep: float = 0.5
    killer_cost: float = 0.5
    kill: float = 1.0
    death: float = 0.005
    birth_energy: float = 8.0
    birth_cost: float = 4.0
    child_energy: float = 2.0
    new_organism: float = 0.02
    max_cells: int = 24
    mutate: float = 0.3
    mutations: int = 1

    @property
    def chemistry(self) -> Chemistry:
        return parse_chemistry(self.reactions, self.potentials)

    @property
    def n_reactions(self) -> int:
        return len(self.chemistry.text)


class Genomes(struct.PyTreeNode):
    bit: jax.Array  # (M, N_NODES) int32, -1 = leaf
    react: jax.Array  # (M, N_NODES) int32 in 0..R (R = killer)
    mask: jax.Array  # (M, N_NODES) int32, 4 bits


class World(struct.PyTreeNode):
    key: jax.Array
    tick: jax.Array  # int32
    chem: jax.Array  # (H, W, 8) float32
    org: jax.Array  # (H, W) int32, -1 empty
    rx: jax.Array  # (H, W) int32
    pher: jax.Array  # (H, W) int32
    energy: jax.Array  # (H, W) float32
    genomes: Genomes
    alive: jax.Array  # (M,) bool
    otype: jax.Array  # (M,) uint32 genome type (phenotype hash)
    parent_type: jax.Array  # (M,) uint32
    born: jax.Array  # (M,) int32 tick of founding
    gain: jax.Array  # (M,) float32 energy released by the organism's reactions since founding
    supply_used: jax.Array  # (M,) float32 supplied chemicals (01, 02) its reactions consumed since founding
    supplied: jax.Array  # (8,) float32 totals since tick 0 (conservation accounting)
    produced: jax.Array
    consumed: jax.Array
    decayed: jax.Array
    balance: jax.Array  # (8,) the sum over ticks of each tick's net change (see Conservation)
    released: jax.Array  # float32 total energy released by reactions


# --- genomes -------------------------------------------------------------------------------------------------


def _depth(n):
    return jnp.floor(jnp.log2(n + 1.0)).astype(jnp.int32)


def evaluate_tree(bit, react, mask, p):
    """(reaction, mask) of the leaf that pheromone ``p`` reaches in one tree (bit/react/mask: (N_NODES,))."""
    n = jnp.int32(0)
    for _ in range(DEPTH):
        b = bit[n]
        go = 2 * n + 1 + ((p >> jnp.maximum(b, 0)) & 1)
        n = jnp.where(b < 0, n, go)
    return react[n], mask[n]


def tables(g: Genomes):
    """Per organism the 16-entry tables of reaction and child-pheromone mask: two (M, 16) int32 arrays."""
    ps = jnp.arange(N_PHER, dtype=jnp.int32)
    per_tree = jax.vmap(evaluate_tree, in_axes=(None, None, None, 0))
    return jax.vmap(per_tree, in_axes=(0, 0, 0, None))(g.bit, g.react, g.mask, ps)


def orbit(mask_table):
    """(M, 16) bool: the pheromones an organism's cells can carry, the orbit 0, p ^ mask(p), ... of the founder."""
    def one(mt):
        def body(carry, _):
            p, seen = carry
            return (p ^ mt[p], seen.at[p].set(True)), None

        (_, seen), _ = jax.lax.scan(body, (jnp.int32(0), jnp.zeros(N_PHER, bool)), None, length=N_PHER)
        return seen

    return jax.vmap(one)(mask_table)


def phenotype(g: Genomes):
    """Per organism: genome type (M,) uint32, complexity (M,) int32 (distinct reactions on the orbit) and those
    reactions as a bitmask (M,) int32 (bit r: reaction r; bit R: killer), see the docstring."""
    react_t, mask_t = tables(g)
    reach = orbit(mask_t)
    code = jnp.where(reach, react_t * N_PHER + mask_t, 255).astype(jnp.uint32)
    h = jnp.full(code.shape[:1], 2166136261, jnp.uint32)
    for k in range(N_PHER):
        h = (h ^ code[:, k]) * jnp.uint32(16777619)
    onehot = jax.nn.one_hot(jnp.where(reach, react_t, -1), 31, dtype=jnp.int32)  # (M, 16, 31); -1 -> zeros
    present = onehot.max(axis=1) > 0  # (M, 31)
    kinds = (present * (1 << jnp.arange(31))).sum(axis=1).astype(jnp.int32)
    return h, present.sum(axis=1).astype(jnp.int32), kinds


def single_leaf(n: int, react, mask=None) -> Genomes:
    """``n`` one-leaf genomes: every pheromone gets reaction ``react`` (array (n,)) and mask ``mask``."""
    react = jnp.broadcast_to(jnp.asarray(react, jnp.int32)[:, None], (n, N_NODES))
    mask = jnp.zeros((n, N_NODES), jnp.int32) if mask is None else jnp.broadcast_to(
        jnp.asarray(mask, jnp.int32)[:, None], (n, N_NODES))
    return Genomes(bit=jnp.full((n, N_NODES), -1, jnp.int32), react=react, mask=mask)


def mutate_one(bit, react, mask, key, n_react: int, mutations: int):
    """``mutations`` random edits of one tree (see the docstring); returns new (bit, react, mask).

    Each edit acts where a random pheromone's path ends (its leaf n), so it changes what some cell would do.
    """
    nodes = jnp.arange(N_NODES)
    depth = _depth(nodes)

    def leaf_of(bit, p):
        n = jnp.int32(0)
        for _ in range(DEPTH):
            b = bit[n]
            n = jnp.where(b < 0, n, 2 * n + 1 + ((p >> jnp.maximum(b, 0)) & 1))
        return n

    def edit(carry, k):
        bit, react, mask = carry
        k_op, k_p, k_val, k_bit = jax.random.split(k, 4)
        op = jax.random.choice(k_op, 4, p=jnp.array(MUTATION_OPS))
        n = leaf_of(bit, jax.random.randint(k_p, (), 0, N_PHER))
        new_r = jax.random.randint(k_val, (), 0, n_react + 1)
        b = jax.random.randint(k_bit, (), 0, 4)
        at = nodes == n
        react = jnp.where((op == 0) & at, new_r, react)
        mask = jnp.where((op == 1) & at, mask ^ (1 << b), mask)
        kids = (nodes == 2 * n + 1) | (nodes == 2 * n + 2)
        split = (op == 2) & (depth[n] < DEPTH)
        bit = jnp.where(split & at, b, bit)
        bit = jnp.where(split & kids, -1, bit)
        react = jnp.where(split & kids, react[n], react)
        mask = jnp.where(split & kids, mask[n], mask)
        up = (n - 1) // 2  # merge: the leaf's parent becomes a leaf with the leaf's payload
        merge = (op == 3) & (n > 0) & (nodes == up)
        bit = jnp.where(merge, -1, bit)
        react = jnp.where(merge, react[n], react)
        mask = jnp.where(merge, mask[n], mask)
        return (bit, react, mask), None

    (bit, react, mask), _ = jax.lax.scan(edit, (bit, react, mask), jax.random.split(key, mutations))
    return bit, react, mask


# --- the world -----------------------------------------------------------------------------------------------


def shift(a, dy: int, dx: int, fill):
    """out[y, x] = a[y - dy, x - dx] inside the grid, ``fill`` where that falls outside (no wrap-around)."""
    h, w = a.shape[:2]
    pad = [(max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0))] + [(0, 0)] * (a.ndim - 2)
    padded = jnp.pad(a, pad, constant_values=fill)
    y0, x0 = max(-dy, 0), max(-dx, 0)
    return padded[y0:y0 + h, x0:x0 + w]


def supply_profile(rules: Rules) -> np.ndarray:
    """(H,) amount of each supplied chemical a row gains per supply event."""
    y = np.arange(rules.height, dtype=np.float32)
    return (rules.supply * np.exp(-(rules.height - 1 - y) / (rules.supply_scale * rules.height))).astype(np.float32)


def init(rules: Rules, key) -> World:
    """An empty world with ``founders`` one-cell organisms at random spaces, each a random non-killer reaction."""
    h, w, m = rules.height, rules.width, rules.slots
    if rules.founders > min(m, h * w):
        raise ValueError(f"founders={rules.founders} exceeds the organism slots ({m}) or the spaces ({h * w})")
    n_r = rules.n_reactions
    k_pos, k_rx, key = jax.random.split(key, 3)
    pos = jax.random.choice(k_pos, h * w, (rules.founders,), replace=False)
    first = jax.random.randint(k_rx, (rules.founders,), 0, n_r)
    founders = single_leaf(rules.founders, first)
    pad = single_leaf(m - rules.founders, jnp.zeros(m - rules.founders, jnp.int32))
    genomes = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), founders, pad)
    ids = jnp.arange(rules.founders, dtype=jnp.int32)
    org = jnp.full(h * w, -1, jnp.int32).at[pos].set(ids).reshape(h, w)
    rx = jnp.zeros(h * w, jnp.int32).at[pos].set(first).reshape(h, w)
    alive = jnp.arange(m) < rules.founders
    otype, _, _ = phenotype(genomes)
    chem = jnp.zeros((h, w, N_CHEM), jnp.float32)
    chem = chem.at[:, :, 1].set(jnp.asarray(supply_profile(rules))[:, None])
    chem = chem.at[:, :, 2].set(jnp.asarray(supply_profile(rules))[:, None])
    zeros8 = jnp.zeros(N_CHEM, jnp.float32)
    return World(key=key, tick=jnp.int32(0), chem=chem, org=org, rx=rx, pher=jnp.zeros((h, w), jnp.int32),
                 energy=jnp.where(org >= 0, rules.child_energy, 0.0).astype(jnp.float32), genomes=genomes,
                 alive=alive, otype=otype, parent_type=otype, born=jnp.zeros(m, jnp.int32),
                 gain=jnp.zeros(m, jnp.float32), supply_used=jnp.zeros(m, jnp.float32), supplied=zeros8,
                 produced=zeros8, consumed=zeros8, decayed=zeros8, balance=zeros8, released=jnp.float32(0.0))


def _segment(values, org, m: int):
    """Sums of ``values`` (H, W, ...) over each organism: (M, ...). Empty spaces (org -1) are dropped."""
    seg = jnp.where(org >= 0, org, m).reshape(-1)
    flat = values.reshape((seg.shape[0],) + values.shape[2:])
    return jax.ops.segment_sum(flat, seg, num_segments=m + 1)[:m]


def _per_cell(per_org, org):
    """Gather an (M, ...) organism table back onto the grid (values at empty spaces are meaningless)."""
    return per_org[jnp.maximum(org, 0)]


def pool(world: World, m: int):
    """Step 5: each organism's cells take the mean energy, their spaces the mean chemical amounts."""
    occupied = world.org >= 0
    n = _segment(occupied.astype(jnp.float32), world.org, m)
    safe = jnp.maximum(n, 1.0)
    e_mean = _segment(world.energy, world.org, m) / safe
    c_mean = _segment(world.chem, world.org, m) / safe[:, None]
    energy = jnp.where(occupied, _per_cell(e_mean, world.org), world.energy)
    chem = jnp.where(occupied[..., None], _per_cell(c_mean, world.org), world.chem)
    return world.replace(energy=energy, chem=chem)


def diffuse(chem, rate: float):
    """Step 2: conservative exchange between 4-neighbours with closed walls."""
    if rate == 0.0:
        return chem
    flow_y = rate * (chem[1:] - chem[:-1])  # (H-1, W, C): from row y+1 into row y
    flow_x = rate * (chem[:, 1:] - chem[:, :-1])
    out = chem.at[:-1].add(flow_y).at[1:].add(-flow_y)
    return out.at[:, :-1].add(flow_x).at[:, 1:].add(-flow_x)


def react(world: World, rules: Rules, chemistry: Chemistry):
    """Step 3: every non-killer cell runs its reaction as far as its space's chemicals and ``rate`` allow."""
    a, b = jnp.asarray(chemistry.inputs), jnp.asarray(chemistry.outputs)
    e = jnp.asarray(chemistry.energy)
    n_r = a.shape[0]
    cell = (world.org >= 0) & (world.rx < n_r)
    r = jnp.minimum(world.rx, n_r - 1)
    need = a[r]  # (H, W, 8)
    avail = jnp.where(need > 0, world.chem / jnp.where(need > 0, need, 1.0), jnp.inf).min(axis=-1)
    extent = jnp.where(cell, jnp.minimum(rules.rate, avail), 0.0)  # (H, W)
    # never take more than is there: extent * need can exceed the amount by a rounding error, and clamping the
    # result at zero instead would create that error's worth of matter every time, a drift over long runs
    used = jnp.minimum(extent[..., None] * need, world.chem)
    made = extent[..., None] * b[r]
    chem = world.chem - used + made
    gain = extent * e[r]
    m = rules.slots
    return world.replace(
        chem=chem, energy=world.energy + gain,
        gain=world.gain + _segment(gain, world.org, m),
        supply_used=world.supply_used + _segment(used[..., 1] + used[..., 2], world.org, m),
        consumed=world.consumed + used.sum(axis=(0, 1)), produced=world.produced + made.sum(axis=(0, 1)),
        balance=world.balance + (made - used).sum(axis=(0, 1)),
        released=world.released + gain.sum())


def kill(world: World, n_r: int, p: float, key):
    """Step 7: killer cells destroy 4-neighbour cells of other organisms, each with probability ``p``."""
    killer_org = jnp.where((world.org >= 0) & (world.rx == n_r), world.org, -1)
    certain = p >= 1.0  # static: no draws needed (the default)
    u = None if certain else jax.random.uniform(key, (len(DIRS),) + world.org.shape)
    dead = jnp.zeros(world.org.shape, bool)
    for d, (dy, dx) in enumerate(DIRS):
        attacker = shift(killer_org, dy, dx, -1)  # the killer one step against direction d
        hit = (attacker >= 0) & (world.org >= 0) & (attacker != world.org)
        dead |= hit if certain else hit & (u[d] < p)
    return world.replace(org=jnp.where(dead, -1, world.org))


def birth(world: World, rules: Rules, key):
    """Step 8: children into empty 4-neighbour spaces, one per space; some found new organisms (mutated)."""
    m, n_r = rules.slots, rules.n_reactions
    h, w = world.org.shape
    k_draw, k_mut, k_mutate = jax.random.split(key, 3)
    # one draw of 2 x 32 random bits per space: bits 0-1 of the first pick the direction, its other 30 bits the
    # priority (ties have chance 2^-30); the top 24 bits of the second decide a new organism
    bits = jax.random.bits(k_draw, (2, h, w), jnp.uint32)
    direction = (bits[0] & 3).astype(jnp.int32)
    priority = (bits[0] >> 2).astype(jnp.int32)
    u_new = (bits[1] >> 8).astype(jnp.float32) * jnp.float32(2.0 ** -24)
    ready = (world.org >= 0) & (world.energy >= rules.birth_energy)
    empty = world.org < 0
    bids = []
    for d, (dy, dx) in enumerate(DIRS):
        aiming = ready & (direction == d)
        bids.append(jnp.where(shift(aiming, dy, dx, False) & empty, shift(priority, dy, dx, -1), -1))
    bids = jnp.stack(bids)  # (4, H, W): priority of the parent reaching this space along each direction
    src = bids.argmax(axis=0)
    has_child = bids.max(axis=0) >= 0
    won = jnp.zeros((h, w), bool)
    for d, (dy, dx) in enumerate(DIRS):
        won |= (direction == d) & shift(has_child & (src == d), -dy, -dx, False)

    def from_parent(a, fill):
        """The parent's value of ``a`` at every child space."""
        out = jnp.full_like(a, fill)
        for d, (dy, dx) in enumerate(DIRS):
            out = jnp.where(src == d, shift(a, dy, dx, fill), out)
        return out

    react_t, mask_t = tables(world.genomes)
    parent_org = jnp.where(has_child, from_parent(world.org, -1), -1)
    parent_pher = from_parent(world.pher, 0)
    child_pher = parent_pher ^ mask_t[jnp.maximum(parent_org, 0), parent_pher]
    child_rx = react_t[jnp.maximum(parent_org, 0), child_pher]

    # reproduction: the first children (raster order) that drew a new organism take the free slots in order, at
    # most MAX_FOUNDINGS per tick (so only that many genomes are mutated per tick)
    k = min(MAX_FOUNDINGS, m)
    size = _segment((world.org >= 0).astype(jnp.int32), world.org, m)
    full = size[jnp.maximum(parent_org, 0)] >= rules.max_cells
    wants = (has_child & (full | (u_new < rules.new_organism))).reshape(-1)
    rank = jnp.cumsum(wants) - 1
    free_slots = jnp.nonzero(~world.alive, size=m, fill_value=m)[0]
    founds = wants & (rank < jnp.minimum((~world.alive).sum(), k))
    pos = jnp.nonzero(founds, size=k, fill_value=h * w)[0]  # (K,) raster index of each founder, h*w = none
    valid = pos < h * w
    slots = jnp.where(valid, free_slots[:k], m)  # (K,) slot of each founder, m = none (dropped by scatters)
    parents = parent_org.reshape(-1)[jnp.minimum(pos, h * w - 1)]
    src = jax.tree.map(lambda a: a[jnp.maximum(parents, 0)], world.genomes)
    bit, react_g, mask_g = jax.vmap(lambda bt, r, mk, kk: mutate_one(bt, r, mk, kk, n_r, rules.mutations))(
        src.bit, src.react, src.mask, jax.random.split(k_mut, k))
    mutant = jax.random.uniform(k_mutate, (k,)) < rules.mutate
    bit, react_g, mask_g = (jnp.where(mutant[:, None], new, old)
                            for new, old in zip((bit, react_g, mask_g), (src.bit, src.react, src.mask), strict=True))
    fresh = Genomes(bit=bit, react=react_g, mask=mask_g)
    new_type, _, _ = phenotype(fresh)
    first_rx = jax.vmap(lambda bt, r, mk: evaluate_tree(bt, r, mk, jnp.int32(0))[0])(bit, react_g, mask_g)
    genomes = jax.tree.map(lambda old, new: old.at[slots].set(new, mode="drop"), world.genomes, fresh)

    def at_founders(grid, values):
        return grid.reshape(-1).at[pos].set(values, mode="drop").reshape(h, w)

    founder = at_founders(jnp.zeros((h, w), bool), valid)
    child_org = jnp.where(founder, at_founders(parent_org, slots), parent_org)
    child_pher = jnp.where(founder, 0, child_pher)
    child_rx = jnp.where(founder, at_founders(child_rx, first_rx), child_rx)
    energy = jnp.where(won, world.energy - rules.birth_cost, world.energy)
    return world.replace(
        org=jnp.where(has_child, child_org, world.org),
        rx=jnp.where(has_child, child_rx, world.rx),
        pher=jnp.where(has_child, child_pher, world.pher),
        energy=jnp.where(has_child, rules.child_energy, energy),
        genomes=genomes,
        alive=world.alive.at[slots].set(True, mode="drop"),
        otype=world.otype.at[slots].set(new_type, mode="drop"),
        parent_type=world.parent_type.at[slots].set(world.otype[jnp.maximum(parents, 0)], mode="drop"),
        born=world.born.at[slots].set(world.tick, mode="drop"),
        gain=world.gain.at[slots].set(0.0, mode="drop"),
        supply_used=world.supply_used.at[slots].set(0.0, mode="drop"))


def tick(world: World, rules: Rules) -> World:
    """One tick of the world (steps 1-8 of the module docstring). Pure; deterministic given ``world.key``."""
    chemistry = rules.chemistry
    n_r = len(chemistry.text)
    key, k_death, k_kill, k_birth = jax.random.split(world.key, 4)
    # 1. supply
    on = (world.tick % rules.supply_every) == 0
    prof = jnp.asarray(supply_profile(rules)) * on  # (H,)
    chem = world.chem.at[:, :, 1:3].add(prof[:, None, None])
    added = jnp.zeros(N_CHEM, jnp.float32).at[1:3].set(prof.sum() * rules.width)
    # 2. diffusion and decay
    chem = diffuse(chem, rules.diffusion)
    lost = chem * rules.decay
    lost_total = lost.sum(axis=(0, 1))
    world = world.replace(chem=chem - lost, supplied=world.supplied + added, decayed=world.decayed + lost_total,
                          balance=world.balance + added - lost_total)
    # 3. reactions, 4. upkeep, 5. pooling
    world = react(world, rules, chemistry)
    cost = rules.upkeep + rules.killer_cost * (world.rx == n_r)
    world = world.replace(energy=jnp.where(world.org >= 0, world.energy - cost, 0.0))
    world = pool(world, rules.slots)
    # 6. death
    dies = (world.energy < 0) | (jax.random.uniform(k_death, world.org.shape) < rules.death)
    world = world.replace(org=jnp.where(dies, -1, world.org))
    # 7. killing, 8. birth
    world = kill(world, n_r, rules.kill, k_kill)
    world = birth(world, rules, k_birth)
    cells = _segment((world.org >= 0).astype(jnp.int32), world.org, rules.slots)
    energy = jnp.where(world.org >= 0, world.energy, 0.0)
    return world.replace(key=key, tick=world.tick + 1, alive=cells > 0, energy=energy)


def run(world: World, rules: Rules, ticks: int) -> World:
    """``ticks`` ticks in one ``lax.scan``."""
    return jax.lax.scan(lambda w, _: (tick(w, rules), None), world, None, length=ticks)[0]


# --- observation ---------------------------------------------------------------------------------------------


def organism_table(world: World, rules: Rules):
    """Per slot: cells (M,) int32; the reactions its living cells run, and those its genome can make (the orbit),
    as bitmasks (M,) int32 (bit r: reaction r, bit R: killer); and its complexity (M,) int32."""
    m, n_r = rules.slots, rules.n_reactions
    cells = _segment((world.org >= 0).astype(jnp.int32), world.org, m)
    kinds = _segment(jax.nn.one_hot(world.rx, n_r + 1, dtype=jnp.int32), world.org, m)  # (M, R+1)
    bits = ((kinds > 0) * (1 << jnp.arange(n_r + 1))).sum(axis=1).astype(jnp.int32)
    _, complexity, genome_bits = phenotype(world.genomes)
    return cells, bits, genome_bits, complexity


def colours(n_reactions: int) -> np.ndarray:
    """(R + 2, 3) float colours: one per reaction, then the killer, then empty space (black)."""
    base = list(REACTION_COLOURS) + list(EXTRA_COLOURS)
    if n_reactions > len(base):
        raise ValueError(f"only {len(base)} reaction colours are defined; the table has {n_reactions} reactions")
    return np.array(base[:n_reactions] + [KILLER_COLOUR, (0.0, 0.0, 0.0)], np.float32)


def legend(rules: Rules) -> list[tuple[str, tuple[float, float, float]]]:
    """(label, colour) per reaction and the killer, for figures."""
    chem = rules.chemistry
    cols = colours(len(chem.text))
    names = list(REACTION_NAMES) + [f"reaction {i}" for i in range(len(REACTION_NAMES), len(chem.text))]
    out = [(f"{names[i]}  {t}  (e={chem.energy[i]:g})", tuple(cols[i])) for i, t in enumerate(chem.text)]
    return out + [("killer", tuple(cols[len(chem.text)]))]
