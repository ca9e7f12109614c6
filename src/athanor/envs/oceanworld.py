"""Oceanworld: grid-genome soft swimmers in a 2-D fluid (from "Quality Diversity: Evolving Ocean Creatures").

Genome (the original release's). nodes bool[16, 16]; bonds bool[16, 16, 2, 3]: from each node a bond to the right and
one down, each [exists, muscle, drag]. The creature (`phenotype`) is the connected component of node (6, 6) in the
graph of existing nodes joined by existing bonds whose two end nodes exist; without node (6, 6) the genome is
invalid. `start_genome`: the 5x5 block at rows/columns [5, 10) with all 40 inner bonds, muscle and drag bits fair
coins. `mutate`: every node and bond bit is resampled (a fair coin) with probability p = 0.05. Descriptors:
d = (min(nodes / 100, 1), bonds / nodes - 1); a tree has bond ratio -1 / nodes, the full 16 x 16 grid 0.875.
Fitness: x displacement minus |y displacement| of node (6, 6) after 500 steps (node (6, 6), not the centre of
mass: a creature without drag bonds cannot move its centre of mass but can still carry node (6, 6) around).

Physics (ours; the original used Box2D rigid bodies and joints, modelled in `envs.oceanworld_box2d`). Each node
is a point mass, each bond a rod between two nodes, no gravity, no collisions (nodes and bonds pass through each
other). Time step dt = 1/60 (the original's) split into S = `substeps` sub-steps h = dt / S of extended
position-based dynamics (XPBD); per sub-step:
  1. drag (only while the heart opens, unless asymmetric_drag=False): the original puts two unit squares on a bond,
     at 0.2 and 0.8 of it (S_b = 0.6 |b| apart), and pushes each with F = -(100 / S_b) (v . n) n, n the bond's unit
     normal: ~33 per unit normal speed at rest length, falling as the bond stretches. Here the square next to a
     node acts on that node: c = drag / (0.6 |b|), drag = 100, and per node and drag bond at it
     v <- v - f (v . n) n, f = c h w / (1 + 2 c h w) (w = 1 / m): the explicit rate c h w for slow bonds, never
     above 1/2, so the summed update of up to four bonds at a node is a contraction (drag never adds energy);
  2. predict p = x + h v;
  3. constraints, one Gauss-Seidel sweep per `iteration`, all of them bounds on the distance of two nodes,
     lo <= |p_j - p_i| <= hi. With C = |d| - t (t = |d| clipped into [lo, hi]) and compliance a = alpha / h^2,
     the ends move by w_i dl and -w_j dl along d / |d|, dl = (C - a lam) / (w_i + w_j + a), lam the pair's
     multiplier (0 at the start of every sub-step): equal and opposite momentum, so linear and angular momentum
     are conserved and without drag the centre of mass never moves. The pairs:
       bonds      |d| = l(s) = L (1 + gain s) for muscles (L otherwise); L = spacing = 5, gain = muscle_gain = 1;
                  plain bonds are rigid (alpha = 0), muscles compliant (alpha = muscle_compliance = 1e-3);
       straight   two collinear bonds a, b at a node: angle >= 180 - beta  <=>  d^2 >= a^2 + b^2 + 2ab cos(beta)
       joints     for the distance d of their far ends;
       corners    two perpendicular bonds: |angle - 90| <= beta  <=>  a^2 + b^2 - 2ab sin(beta) <= d^2 <=
                  a^2 + b^2 + 2ab sin(beta), d the cell diagonal (which spans two corners: bounds intersected);
     with beta = bend_limit_deg = 60 (the original: +-0.33 pi = 59.4 deg per hinge), a, b the bonds' current rest
     lengths and alpha = bend_compliance = 1e-3. Joint damping (in the first sweep): each bending pair (straight
     joint or corner) also loses the share w_i / (w_i + w_j) of f = c h / (1 + c h) of its relative motion along
     d in this sub-step, c = joint_damping = 10 / s (the two compliances and c have no constant in the original:
     they were chosen with the validation benchmark, BENCHMARKS.md). Joint friction, off by default
     (joint_friction = F > 0, in the same place): after damping, each end of a bending pair also loses what is left
     of its share of the pair's motion along d, up to F h^2 w_i: Coulomb friction of force F on the far ends'
     distance, which stops slow joint motion and slows fast motion by a fixed amount (the original's hinges have
     friction torques of up to 500: about F = 141 on a right-angle corner's diagonal, F = torque |d| / (a b sin);
     F = 141 in place of the damping measured worse in a trial, BENCHMARKS.md). Each constraint type is split into two
     colours (parity of the first node's row or column in genome coordinates) so that no node is in two pairs of a
     pass; order: straight joints, corners, bonds (bonds last, best satisfied);
  4. v = (p - x) / h, x = p.
Masses follow the original's bodies: a node is a disc of radius 0.5 and density 1 (m = pi / 4) and each bond's
square next to it (mass 1) is lumped onto it, m = node_mass + bond_mass x (bonds at the node), so a corner of a
5x5 block weighs 2.8 and an inner node 4.8. The heart starts closed (the original rests for its first 30 steps),
then opens for 30 steps and closes for 30: muscle activation s(t) = 0 for t <= 30, then 0.5 (1 + cos(pi t / 30)),
0 -> 1 over steps 31-60, 1 -> 0 over steps 61-90, ...; drag acts in the opening steps, as the original's drag,
which is computed after each step and integrated in the next. A creature at rest without muscles is an exact fixed
point (fitness exactly 0). Drag is skipped with a `lax.cond` while the heart closes (it is zero then).

Why these choices (measured with `benchmarks/validate_oceanworld.py` and `benchmarks/bench_oceanworld.py`;
BENCHMARKS.md): the earlier rigid, undamped, equal-mass model's fitness was not converged in the solver (rank
correlation 0.64-0.69 against twice the sub-steps: the search partly optimised solver artefacts) and agreed only
moderately with the original (0.56). Rigid muscles and limits solved in one sweep are what fails to converge:
compliance makes the constraint forces finite, so refining h changes them little; joint damping (the original's
hinges carry friction torques of up to 500) removes the fast joint oscillations whose phase decides a chaotic
creature's fate; the original's masses and drag law set how far each stroke carries. Measured at the defaults
(BENCHMARKS.md): rank correlation of fitness against twice the sub-steps 0.996 over start genomes (0.64 before) and
0.80 over a quick MAP-Elites archive's elites (0.69; larger creatures, selected at one exact setting, stay more
sensitive: the Box2D model of the original ranks them 0.73 against itself at half its time step, and a 1% change of
the muscle gain moves them to 0.85 here; their motion is chaotic, two runs 1% apart drifting twice as far apart
every heart cycle where start genomes' drift grows in proportion to time); against the Box2D model 0.69 pooled
(0.56) and none of the top 30 elites an exploit (5 of 30 before); worst plain-bond stretch of a typical 5x5 creature
4% (19.6% rigid); 5x5 start creatures ~1,050 evaluations per CPU-second at batches of 256-1024 (the rigid variant
809 in the same run; the original: ~10/s/core), creatures spanning the grid ~60-67. Fitness of random 5x5 start
genomes lies in about [-76, 38] (p1 -45, median -8, p99 22).

Deviations from the original, on purpose: point masses and distance constraints instead of rigid bodies and
revolute joints; the bending limit bounds the angle between two bonds meeting at a node (the original limits
each bond's hinge on its freely rotating node, so two bonds can turn up to +-119 deg against each other: measured
much worse agreement when copied); compliant limits and bounds on far-end distances (weak near straight angles)
can be overshot briefly; joint damping is viscous where the original's hinge motors give Coulomb-like friction; a
muscle's rest length follows a raised cosine where the original's motor snaps it open in ~8 steps (copying the
snap measured much worse agreement); drag is lumped on the end nodes; no collisions (the original's squares touch
corner to corner at a node and resist closing an angle below 90 deg).

Implementation. Everything is float32, deterministic and jittable. The physics runs on [2, N, N, *batch]
arrays (spatial axes first, creatures last, so every stencil is a contiguous vector operation over creatures)
with a halo of 2 dead nodes, and neighbours are read as static slices; a pass writes its interior in place
(`dynamic_update_slice`), and each constraint type's two colours run as a length-2 `lax.scan`, which keeps
every pass one kernel (unrolled, XLA re-derived positions from the chain of earlier passes inside each consumer:
several times slower). `evaluate_batch` crops each creature to the smallest grid in TIERS that holds it
(exact: bit-identical fitness, tested), so 5x5 creatures cost ~1/12 of a full-grid rollout.

Pictures: `simulate` records node positions and `phenotype` says which nodes and bonds make the creature;
``athanor.viz.creatures`` draws them. Nothing here draws.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from athanor.core.errors import ConfigError

__all__ = ["G", "CENTRE", "INVALID_FITNESS", "TIERS", "WorldConfig", "Genome", "start_genome", "make_genome",
           "random_genome", "mutate", "phenotype", "node_masses", "descriptors", "simulate", "evaluate_one",
           "evaluate_batch", "diagnostics", "joint_overshoot"]

G = 16  # genome grid side
CENTRE = (6, 6)  # the node a creature grows from and whose motion is its fitness
INVALID_FITNESS = -1.0e6  # finite stand-in for creatures without node (6, 6); `valid` says which they are
TIERS = (5, 6, 8, 11, 16)  # grid sides a batch is simulated on (smallest that holds each chunk's bounding boxes)
CHUNK = 256  # creatures per tier decision in evaluate_batch
DRAG_SPAN = 0.6  # the original's two squares of a bond sit at 0.2 and 0.8 of it: 0.6 |b| apart


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Rules of the world; hashable so it can be a static argument of jitted functions."""

    steps: int = 500  # fitness horizon (the original release: 500 steps)
    dt: float = 1.0 / 60.0  # one step, as the original's Box2D step
    substeps: int = 1  # solver sub-steps per step (accuracy vs speed: benchmarks/bench_oceanworld.py)
    iterations: int = 1  # constraint sweeps per sub-step
    beat_period: int = 30  # the heart toggles every 30 steps, starting closed: 30 resting, then 30 opening, ...
    spacing: float = 5.0  # rest distance of grid neighbours (the original: nodes 5 units apart)
    muscle_gain: float = 1.0  # a muscle bond's rest length reaches (1 + gain) x spacing at full opening (orig. ~1.02)
    drag: float = 100.0  # the original's: F = -(drag / S) (v . n) n per bond square, S = 0.6 |b| the squares' distance
    asymmetric_drag: bool = True  # drag only while opening (the reference's asymmetry); False: both halves
    bend_limit_deg: float = 60.0  # each angle between two bonds at a node stays within +-60 deg of its rest angle
    node_mass: float = math.pi / 4  # the original's node: a disc of radius 0.5 and density 1
    bond_mass: float = 1.0  # mass a bond adds to each end node (the original: a unit square next to each end)
    muscle_compliance: float = 1e-3  # XPBD compliance of muscle bonds (length / force); 0: rigid
    bend_compliance: float = 1e-3  # XPBD compliance of the bending limits; 0: hard limits
    joint_damping: float = 10.0  # viscous damping rate (1/s) of every joint's opening and closing; 0: none
    joint_friction: float = 0.0  # Coulomb friction force on every joint's opening and closing; 0: none (default)

    def __post_init__(self):
        checks = {"steps": self.steps >= 1, "substeps": self.substeps >= 1, "iterations": self.iterations >= 1,
                  "beat_period": self.beat_period >= 1, "dt": self.dt > 0, "spacing": self.spacing > 0,
                  "muscle_gain": self.muscle_gain >= 0, "drag": self.drag >= 0,
                  "bend_limit_deg": 0 < self.bend_limit_deg <= 180, "node_mass": self.node_mass > 0,
                  "bond_mass": self.bond_mass >= 0, "muscle_compliance": self.muscle_compliance >= 0,
                  "bend_compliance": self.bend_compliance >= 0, "joint_damping": self.joint_damping >= 0,
                  "joint_friction": self.joint_friction >= 0}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"WorldConfig.{name}={getattr(self, name)!r} is out of range; see the field's "
                                  "comment in athanor/envs/oceanworld.py for the allowed values")


class Genome(NamedTuple):
    nodes: jnp.ndarray  # bool [..., 16, 16]
    bonds: jnp.ndarray  # bool [..., 16, 16, 2, 3]: [right, down] x [exists, muscle, drag]


# ----------------------------------------------------------------------------------------- genomes


def start_genome(key) -> Genome:
    """A 5x5 block at rows and columns [5, 10) with every inner bond present, muscle and drag bits p = 0.5."""
    nodes = jnp.zeros((G, G), bool).at[5:10, 5:10].set(True)
    exists = jnp.zeros((G, G, 2), bool).at[5:10, 5:9, 0].set(True).at[5:9, 5:10, 1].set(True)
    bits = jax.random.bernoulli(key, 0.5, (G, G, 2, 2)) & exists[..., None]
    return Genome(nodes, jnp.concatenate([exists[..., None], bits], -1))


def random_genome(key, p_node: float = 0.5, p_bond: float = 0.5) -> Genome:
    """Every bit independent: node bits Bernoulli(p_node), bond-exists bits Bernoulli(p_bond), muscle and drag
    bits Bernoulli(0.5); the defaults are a fair coin for every bit. Measured over 4000 genomes (valid share;
    nodes p10 / median / p90; bond ratio median): p = 0.5: 0.51; 1 / 3 / 9; -0.33. p = 0.6: 0.60; 1 / 6 / 26;
    -0.14. p = 0.7: 0.70; 2 / 42 / 104; 0.08. p = 0.8: 0.80; 124 / 185 / 204; 0.26 (percolation sets in
    between 0.6 and 0.7)."""
    kn, kb, kt = jax.random.split(key, 3)
    nodes = jax.random.bernoulli(kn, p_node, (G, G))
    exists = jax.random.bernoulli(kb, p_bond, (G, G, 2, 1))
    bits = jax.random.bernoulli(kt, 0.5, (G, G, 2, 2))
    return Genome(nodes, jnp.concatenate([exists, bits], -1))


def make_genome(nodes, bonds=()) -> Genome:
    """A genome drawn by hand. nodes: (row, col) pairs; bonds: (row, col, direction, muscle, drag) tuples, direction
    0 = to the right, 1 = down, muscle and drag bools. Everything not listed is absent."""
    n = np.zeros((G, G), bool)
    b = np.zeros((G, G, 2, 3), bool)
    for r, c in nodes:
        n[r, c] = True
    for r, c, d, muscle, drag in bonds:
        b[r, c, d] = (True, muscle, drag)
    return Genome(jnp.asarray(n), jnp.asarray(b))


def mutate(key, genome: Genome, p: float = 0.05) -> Genome:
    """Each node and bond bit is resampled (a fair coin) with probability p, so it flips with probability p / 2."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    nodes = jnp.asarray(genome.nodes, bool)
    bonds = jnp.asarray(genome.bonds, bool)
    nodes = jnp.where(jax.random.bernoulli(k1, p, nodes.shape), jax.random.bernoulli(k2, 0.5, nodes.shape), nodes)
    bonds = jnp.where(jax.random.bernoulli(k3, p, bonds.shape), jax.random.bernoulli(k4, 0.5, bonds.shape), bonds)
    return Genome(nodes, bonds)


def phenotype(genome: Genome):
    """-> (alive bool [16, 16], bond_on bool [16, 16, 2], valid bool).

    The creature is the connected component of node (6, 6) in the graph of existing nodes joined by existing
    bonds; a bond counts only if both its end nodes exist (a right bond in the last column or a down bond in
    the last row has no second node). Flood fill: one ring of neighbours per while-loop iteration until no
    node is added (at most the longest path in the grid, ~128 rings for a serpentine).
    """
    nodes = jnp.asarray(genome.nodes, bool)
    bonds = jnp.asarray(genome.bonds, bool)
    right = bonds[:, :, 0, 0] & nodes & jnp.pad(nodes[:, 1:], ((0, 0), (0, 1)))
    down = bonds[:, :, 1, 0] & nodes & jnp.pad(nodes[1:, :], ((0, 1), (0, 0)))
    seed = jnp.zeros((G, G), bool).at[CENTRE].set(True) & nodes
    r, d = right[:, :-1], down[:-1, :]

    def grow(c):
        a, _ = c
        g = a | jnp.pad(a[:, 1:] & r, ((0, 0), (0, 1))) | jnp.pad(a[:, :-1] & r, ((0, 0), (1, 0)))
        g = g | jnp.pad(a[1:, :] & d, ((0, 1), (0, 0))) | jnp.pad(a[:-1, :] & d, ((1, 0), (0, 0)))
        return g, jnp.any(g != a)

    alive, _ = jax.lax.while_loop(lambda c: c[1], grow, (seed, jnp.array(True)))
    return alive, jnp.stack([right & alive, down & alive], -1), nodes[CENTRE]


def node_masses(genome: Genome, cfg: WorldConfig) -> jnp.ndarray:
    """f32 [16, 16]: each creature node's mass, node_mass + bond_mass x (bonds at the node); 0 off the creature."""
    alive, bond_on, _ = phenotype(genome)
    return jnp.where(alive, cfg.node_mass + cfg.bond_mass * _degree(bond_on[..., 0], bond_on[..., 1]), 0.0)


def _degree(right, down):
    """Bonds at each node, from the bool maps of bonds to the right and down [N, N, *b] -> f32 [N, N, *b]."""
    z = ((0, 0),) * (right.ndim - 2)
    r, d = right.astype(jnp.float32), down.astype(jnp.float32)
    return r + d + jnp.pad(r[:, :-1], ((0, 0), (1, 0)) + z) + jnp.pad(d[:-1], ((1, 0), (0, 0)) + z)


def descriptors(genome: Genome) -> jnp.ndarray:
    """[min(nodes / 100, 1), bonds / nodes - 1] of the phenotype ([0, -1] for an invalid genome)."""
    return _prepare(genome).desc


# ---------------------------------------------------------------- physics: stencils on halo-padded grids

H = 2  # halo width: every neighbour a node reads (bonds, skips, diagonals) is at most 2 cells away


def _halo(a, ax=0):
    pads = [(0, 0)] * a.ndim
    pads[ax] = pads[ax + 1] = (H, H)
    return jnp.pad(a, pads)


def _set_interior(a, x):
    """Write x into the interior of the halo-padded state a [2, N+2H, N+2H, *b] (in place under jit)."""
    return jax.lax.dynamic_update_slice(a, x.astype(a.dtype), (0, H, H) + (0,) * (a.ndim - 3))


def _view(a, off, ax=0):
    """Interior of a halo-padded array shifted by off: out[r, c] = a[r + dr, c + dc]."""
    n = a.shape[ax] - 2 * H
    idx = [slice(None)] * a.ndim
    idx[ax] = slice(H + off[0], H + off[0] + n)
    idx[ax + 1] = slice(H + off[1], H + off[1] + n)
    return a[tuple(idx)]


# Pair constraints, each described from the pair's first node: (offset to the second node, kind, bonds), a bond
# being (direction, offset of its first node) with direction "r" (to the right) or "d" (down).
#   bond:  the pair is the bond itself; its length is the bond's rest length (1 + s gain) L.
#   skip:  the two collinear bonds of a straight joint; angle >= 180 - beta  <=>  d^2 >= a^2 + b^2 + 2ab cos(beta).
#   diag:  a cell diagonal; it measures the angle of the two corners it spans, each (bond, bond):
#          |angle - 90| <= beta  <=>  a^2 + b^2 - 2ab sin(beta) <= d^2 <= a^2 + b^2 + 2ab sin(beta).
_PAIRS = (
    ((0, 2), "skip", (("r", (0, 0)), ("r", (0, 1)))),
    ((2, 0), "skip", (("d", (0, 0)), ("d", (1, 0)))),
    ((1, 1), "diag", ((("r", (0, 0)), ("d", (0, 1))), (("d", (0, 0)), ("r", (1, 0))))),
    ((1, -1), "diag", ((("r", (0, -1)), ("d", (0, -1))), (("r", (1, -1)), ("d", (0, 0))))),
    ((0, 1), "bond", (("r", (0, 0)),)),
    ((1, 0), "bond", (("d", (0, 0)),)),
)  # solved in this order, bonds last so that they are the best satisfied after a sweep


class _Body(NamedTuple):
    gr: jnp.ndarray  # f32 [N+2H, N+2H, *b]: muscle gain of the bond to the right of each node (0: plain)
    gd: jnp.ndarray  # f32: same for the bond below
    er: jnp.ndarray  # bool: the bond to the right exists in the phenotype
    ed: jnp.ndarray  # bool: the bond below exists
    fr: jnp.ndarray  # f32: the bond to the right is a drag bond (0/1)
    fd: jnp.ndarray  # f32: the bond below is a drag bond
    passes: tuple  # per _PAIRS entry: (first, params, q, inv, damp, fric), each stacked over the 2 colours [2, ...]
    x0: jnp.ndarray  # f32 [2, N+2H, N+2H, *b]: rest positions, centre node at the origin
    winv: jnp.ndarray  # f32 [N+2H, N+2H, *b]: inverse node masses 1 / (node_mass + bond_mass x bonds at the node)


def _make_body(bond_on, bits, origin, cfg):
    """bond_on [N, N, 2, *b]; bits [N, N, 2, 3, *b]; origin [2, *b] int (grid index of local (0, 0)).

    Every pair constraint is coloured by the parity of its first node's row or column (in whole-genome
    coordinates, so a cropped creature is solved in the same order), such that within one colour no node
    belongs to two pairs; node-layout copies of each pair's parameters are stored at both of its ends.
    """
    n = bond_on.shape[0]
    er, ed = bond_on[:, :, 0], bond_on[:, :, 1]
    extra = er.ndim - 2
    rows = jnp.arange(n).reshape((n, 1) + (1,) * extra) + origin[0]
    cols = jnp.arange(n).reshape((1, n) + (1,) * extra) + origin[1]
    gr = _halo(jnp.where(er & bits[:, :, 0, 1], cfg.muscle_gain, 0.0).astype(jnp.float32))
    gd = _halo(jnp.where(ed & bits[:, :, 1, 1], cfg.muscle_gain, 0.0).astype(jnp.float32))
    er_h, ed_h = _halo(er), _halo(ed)

    def bond(b, shift):
        kind, off = b
        off = (off[0] + shift[0], off[1] + shift[1])
        return (_view(gr, off), _view(er_h, off)) if kind == "r" else (_view(gd, off), _view(ed_h, off))

    def pair_params(off, kind, bonds, shift):
        """(active, params) of the pair whose first node is this node shifted by `shift`."""
        if kind == "diag":
            params, act = [], False
            for b1, b2 in bonds:
                (g1, e1), (g2, e2) = bond(b1, shift), bond(b2, shift)
                params += [g1, g2, (e1 & e2).astype(jnp.float32)]
                act = act | (e1 & e2)
            return act, params
        gs, es = zip(*(bond(b, shift) for b in bonds), strict=True)
        return functools.reduce(jnp.logical_and, es), list(gs)

    winv = 1.0 / (cfg.node_mass + cfg.bond_mass * _degree(er_h, ed_h))
    h = cfg.dt / cfg.substeps
    a_muscle, a_bend = cfg.muscle_compliance / (h * h), cfg.bend_compliance / (h * h)
    f_damp = cfg.joint_damping * h / (1.0 + cfg.joint_damping * h)
    friction = cfg.joint_friction > 0
    wi = _view(winv, (0, 0))

    passes = []
    for off, kind, bonds in _PAIRS:
        back = (-off[0], -off[1])
        idx, period = (cols, abs(off[1])) if off[0] == 0 else (rows, abs(off[0]))
        act_i, par_i = pair_params(off, kind, bonds, (0, 0))  # this node is the pair's first end
        act_j, par_j = pair_params(off, kind, bonds, back)  # this node is the pair's second end
        cols_out = {"first": [], "params": [], "q": [], "inv": [], "damp": [], "fric": []}
        for colour in (0, 1):
            ci = ((idx // period) % 2) == colour
            cj = (((idx - off[0] if off[0] else idx - off[1]) // period) % 2) == colour
            fi, fj = act_i & ci, act_j & cj
            member = fi | fj
            par = jnp.stack([jnp.where(fi, a, b) for a, b in zip(par_i, par_j, strict=True)])
            alpha = jnp.where(par[0] > 0, a_muscle, 0.0) if kind == "bond" else a_bend
            wj = jnp.where(fi, _view(winv, off), _view(winv, back))
            inv = jnp.where(member, 1.0 / (wi + wj + alpha), 0.0)
            cols_out["first"].append(fi)
            cols_out["params"].append(par)
            cols_out["q"].append(wi * inv)
            cols_out["inv"].append(inv)
            cols_out["damp"].append(jnp.where(member, f_damp * wi / (wi + wj), 0.0) if kind != "bond" else None)
            # friction: this end's share of the joint's motion left after damping, and the most it may take
            cols_out["fric"].append(jnp.stack([jnp.where(member, (1.0 - f_damp) * wi / (wi + wj), 0.0),
                                               jnp.where(member, cfg.joint_friction * h * h * wi, 0.0)])
                                    if kind != "bond" and friction else None)
        passes.append(tuple(None if v[0] is None else jnp.stack(v) for v in cols_out.values()))
    fr = (er & bits[:, :, 0, 2]).astype(jnp.float32)
    fd = (ed & bits[:, :, 1, 2]).astype(jnp.float32)
    shape = (n, n) + er.shape[2:]
    x0 = jnp.stack([jnp.broadcast_to((cols - CENTRE[1]) * cfg.spacing, shape),
                    jnp.broadcast_to((rows - CENTRE[0]) * cfg.spacing, shape)]).astype(jnp.float32)
    return _Body(gr, gd, er_h, ed_h, _halo(fr), _halo(fd), tuple(passes), _halo(x0, 1), winv)


def _solve(P, body, s, cfg, h, lams=None, X0=None):
    """One Gauss-Seidel sweep of XPBD: for each pair type in _PAIRS and each of its two colours, project every
    pair of that colour. With C = |d| - t (t = |d| clipped into the pair's bounds, d = p_j - p_i), the
    pair's multiplier grows by dl = (C - a lam) / (w_i + w_j + a), a = compliance / h^2, and the ends move by
    w_i dl d/|d| and -w_j dl d/|d| (equal and opposite momentum: linear and angular momentum are conserved).
    A satisfied pair (C = 0) moves nothing. Multipliers start at 0 every sub-step; `lams` (one [2, N, N, *b]
    array per pair type, or None for a single sweep, where they are all 0) carries them between sweeps. The
    mass factors q = w_i / (w_i + w_j + a) and inv = 1 / (w_i + w_j + a), zero off the pair, come from the body.

    Joint damping, given X0 (the positions at the start of the sub-step; the first sweep only): a bending pair
    (skip or diag) also loses the share f w_i / (w_i + w_j) (the body's `damp`) of its relative motion along d
    in this sub-step, (d - d0) . d / |d|^2, f = c h / (1 + c h), c = joint_damping: the implicit step of a
    viscous damper on the rate at which the joint opens or closes, equal and opposite at both ends. Joint friction
    (the body's `fric`: this end's share of what damping left, and F h^2 w_i) then takes that share, clipped to
    +-F h^2 w_i: Coulomb friction of force F, also equal and opposite. Fused into
    the projection kernel: a separate velocity pass per pair type and colour made the step ~30% slower than
    without damping (measured).

    Each type's colours run as a length-2 scan: that materialises positions between passes, which stops the
    compiler from re-deriving them inside every consumer (unrolled passes measured several times slower).
    """
    L = cfg.spacing
    beta = math.radians(cfg.bend_limit_deg)
    sin_b = math.sin(min(beta, math.pi / 2))
    cos_b = math.cos(min(beta, math.pi))
    a_muscle, a_bend = cfg.muscle_compliance / (h * h), cfg.bend_compliance / (h * h)
    new_lams = []
    for i, ((off, kind, _), (first, params, q, inv, damp, fric)) in enumerate(zip(_PAIRS, body.passes,
                                                                                    strict=True)):
        back = (-off[0], -off[1])

        def one(P, xs, off=off, back=back, kind=kind, fric_on=fric is not None):
            first, par, q, inv, damp, fric, lam = xs if lams is not None else (*xs, None)
            X = _view(P, (0, 0), 1)
            d = jnp.where(first, _view(P, off, 1), _view(P, back, 1)) - X
            d2 = d[0] * d[0] + d[1] * d[1] + 1e-12
            ln = L * (1.0 + s * par)  # rest lengths of the bonds involved
            if kind == "bond":
                t = ln[0]
            elif kind == "skip":
                a, b = ln[0], ln[1]
                t = jnp.sqrt(jnp.maximum(d2, a * a + b * b + 2 * cos_b * a * b))
            else:
                lo, hi = 0.0, jnp.inf
                for a, b, on in ((ln[0], ln[1], par[2]), (ln[3], ln[4], par[5])):
                    qq, m = a * a + b * b, 2 * sin_b * a * b
                    lo = jnp.maximum(lo, jnp.where(on > 0, qq - m, 0.0))
                    hi = jnp.minimum(hi, jnp.where(on > 0, qq + m, jnp.inf))
                t = jnp.sqrt(jnp.clip(d2, lo, hi))
            dist = jnp.sqrt(d2)
            C = dist - t  # exactly 0 for a satisfied pair
            damping = 0.0
            if X0 is not None and kind != "bond":  # joint damping of the pair's motion in this sub-step
                d0 = jnp.where(first, _view(X0, off, 1), _view(X0, back, 1)) - _view(X0, (0, 0), 1)
                along = (d[0] - d0[0]) * d[0] + (d[1] - d0[1]) * d[1]  # the pair's motion along d, times |d|
                damping = damp * along / d2
                if fric_on:  # Coulomb: what damping left of this end's share, up to F h^2 w_i
                    damping = damping + jnp.clip(fric[0] * along / d2, -fric[1] / dist, fric[1] / dist)
            if lam is None:
                return _set_interior(P, X + (q * C / dist + damping) * d), None
            alpha = jnp.where(par[0] > 0, a_muscle, 0.0) if kind == "bond" else a_bend
            g = jnp.where(C != 0, C - alpha * lam, 0.0)  # an inactive bound keeps its multiplier, moves nothing
            return _set_interior(P, X + (q * g / dist + damping) * d), lam + inv * g

        xs = (first, params, q, inv, damp if damp is not None else q, fric if fric is not None else q)
        xs += (lams[i],) if lams is not None else ()
        P, lam = jax.lax.scan(one, P, xs)
        new_lams.append(lam)
    return P, (tuple(new_lams) if lams is not None else None)


def _drag(X, V, body, h, cfg):
    """Per node, for each drag bond b at it: dv = -f (v . n) n, f = c h w / (1 + 2 c h w), c = drag / (0.6 |b|).

    c is the original's drag coefficient of the bond's square next to this node, w the node's inverse mass:
    f is c h w (the explicit rate) for slow bonds and at most 1/2, so the summed reduction of up to four bonds at
    one node stays a contraction (drag never adds energy). With the unnormalised normal m = (-t_y, t_x) of the
    bond vector t, (v . n) n = (v . m) m / |t|^2.
    """
    Xc, Vc = _view(X, (0, 0), 1), _view(V, (0, 0), 1)
    hw = h * _view(body.winv, (0, 0))
    dvx = dvy = 0.0
    for off, flag, foff in (((0, 1), body.fr, (0, 0)), ((0, -1), body.fr, (0, -1)),
                            ((1, 0), body.fd, (0, 0)), ((-1, 0), body.fd, (-1, 0))):
        tx, ty = _view(X, off, 1)[0] - Xc[0], _view(X, off, 1)[1] - Xc[1]
        ln2 = tx * tx + ty * ty + 1e-12
        chw = hw * cfg.drag / (DRAG_SPAN * jnp.sqrt(ln2))
        w = _view(flag, foff) * chw / ((1.0 + 2.0 * chw) * ln2) * (ty * Vc[0] - tx * Vc[1])
        dvx, dvy = dvx - w * ty, dvy + w * tx
    return _set_interior(V, Vc + jnp.stack([dvx, dvy]))


def _activation(t, cfg):
    """Heartbeat muscle activation at (fractional) step t: 0 while the heart rests closed for the first period,
    then 0 -> 1 over each opening period and 1 -> 0 over each closing one (a raised cosine, period 2 P)."""
    P = cfg.beat_period
    return jnp.where(t > P, 0.5 * (1.0 + jnp.cos(jnp.pi * t / P)), 0.0)


def _step(carry, k, body, cfg):
    """Advance one step (k = step index): per sub-step drag, predict, constraint sweep(s) (joint damping and
    friction in the first), velocity update."""
    X, V = carry
    S = cfg.substeps
    h = cfg.dt / S
    opening = (k // cfg.beat_period) % 2 == 1
    joints = cfg.joint_damping > 0 or cfg.joint_friction > 0  # the first sweep needs the sub-step's start
    for j in range(S):
        s = _activation(k.astype(jnp.float32) + (j + 1.0) / S, cfg)
        if cfg.drag > 0 and cfg.asymmetric_drag:  # skip the drag kernel entirely while the heart closes
            V = jax.lax.cond(opening, lambda V, X=X, h=h: _drag(X, V, body, h, cfg), lambda V: V, V)
        elif cfg.drag > 0:
            V = _drag(X, V, body, h, cfg)
        P = X + h * V
        lams = None if cfg.iterations == 1 else tuple(jnp.zeros_like(p[0], jnp.float32) for p in body.passes)
        for it in range(cfg.iterations):
            P, lams = _solve(P, body, s, cfg, h, lams, X if (it == 0 and joints) else None)
        V = (P - X) / h
        X = P
    return X, V


def _stats(X, V, body, k, cfg):
    """At the end of step k: kinetic energy 0.5 sum m |v|^2, and the largest relative length error |d| / l - 1
    of plain bonds (rigid rods) and of muscle bonds (against their current target length)."""
    Xc, Vc = _view(X, (0, 0), 1), _view(V, (0, 0), 1)
    ke = 0.5 * jnp.sum(Vc * Vc / _view(body.winv, (0, 0)), axis=(0, 1, 2))
    s = _activation(k.astype(jnp.float32) + 1.0, cfg)
    plain = muscle = jnp.zeros(ke.shape)
    for off, g, e in (((0, 1), body.gr, body.er), ((1, 0), body.gd, body.ed)):
        d = _view(X, off, 1) - Xc
        ln = jnp.sqrt(d[0] * d[0] + d[1] * d[1])
        gain = _view(g, (0, 0))
        rel = jnp.abs(ln / (cfg.spacing * (1.0 + s * gain)) - 1.0)
        on = _view(e, (0, 0))
        plain = jnp.maximum(plain, jnp.max(jnp.where(on & (gain == 0), rel, 0.0), axis=(0, 1)))
        muscle = jnp.maximum(muscle, jnp.max(jnp.where(on & (gain > 0), rel, 0.0), axis=(0, 1)))
    return ke, plain, muscle


def _rollout(body, cfg, record_every=0, stats=False):
    """Simulate cfg.steps steps from rest. Returns final positions [2, N, N, *b] and, if asked, frames every
    `record_every` steps ([T, 2, N, N, *b], T = steps // record_every + 1, the first at rest), or with `stats`
    the kinetic energy after every step [*b, steps] and the max bond and muscle length errors."""
    X0 = body.x0
    batch = X0.shape[3:]
    zero = jnp.zeros(batch, jnp.float32)
    carry = (X0, jnp.zeros_like(X0), zero, zero)

    def f(c, k):
        X, V, plain_max, muscle_max = c
        X, V = _step((X, V), k, body, cfg)
        if not stats:
            return (X, V, plain_max, muscle_max), None
        ke, plain, muscle = _stats(X, V, body, k, cfg)
        return (X, V, jnp.maximum(plain_max, plain), jnp.maximum(muscle_max, muscle)), ke

    def run(c, ks):
        return jax.lax.scan(f, c, ks)

    frames = None
    if record_every:
        n_frames = cfg.steps // record_every

        def chunk(c, i):
            c, _ = run(c, i * record_every + jnp.arange(record_every))
            return c, _view(c[0], (0, 0), 1)

        carry, frames = jax.lax.scan(chunk, carry, jnp.arange(n_frames))
        frames = jnp.concatenate([_view(X0, (0, 0), 1)[None], frames])
        rest = cfg.steps - n_frames * record_every
        if rest:
            carry, _ = run(carry, n_frames * record_every + jnp.arange(rest))
        ke = None
    else:
        carry, ke = run(carry, jnp.arange(cfg.steps))
    X, _, plain_max, muscle_max = carry
    out = {"X": _view(X, (0, 0), 1), "frames": frames}
    if stats:
        out.update(kinetic_energy=jnp.moveaxis(ke, 0, -1), max_bond_error=plain_max, max_muscle_error=muscle_max)
    return out


# ------------------------------------------------------------------------------------ evaluation


def _bbox(alive):
    """Side of the smallest square holding the creature's bounding box, and that box's top-left node."""
    rows, cols = jnp.any(alive, 1), jnp.any(alive, 0)
    idx = jnp.arange(G)
    r0, r1 = jnp.min(jnp.where(rows, idx, G)), jnp.max(jnp.where(rows, idx, -1))
    c0, c1 = jnp.min(jnp.where(cols, idx, G)), jnp.max(jnp.where(cols, idx, -1))
    size = jnp.maximum(jnp.maximum(r1 - r0, c1 - c0) + 1, 0)
    return size, jnp.where(size > 0, jnp.stack([r0, c0]), 0)


def _crop(a, origin, k):
    """a[origin : origin + k] on the two leading (spatial) axes, zeros beyond the genome grid."""
    pad = [(0, k)] * 2 + [(0, 0)] * (a.ndim - 2)
    return jax.lax.dynamic_slice(jnp.pad(a, pad), (origin[0], origin[1]) + (0,) * (a.ndim - 2), (k, k) + a.shape[2:])


class _Prepared(NamedTuple):
    bond_on: jnp.ndarray  # bool [16, 16, 2]
    bits: jnp.ndarray  # bool [16, 16, 2, 3]
    origin: jnp.ndarray  # int [2]
    size: jnp.ndarray  # int: bounding-box side
    valid: jnp.ndarray
    desc: jnp.ndarray  # f32 [2]


def _prepare(genome: Genome) -> _Prepared:
    alive, bond_on, valid = phenotype(genome)
    size, origin = _bbox(alive)
    n = jnp.sum(alive).astype(jnp.float32)
    b = jnp.sum(bond_on).astype(jnp.float32)
    desc = jnp.stack([jnp.minimum(n / 100.0, 1.0), b / jnp.maximum(n, 1.0) - 1.0])
    return _Prepared(bond_on, jnp.asarray(genome.bonds, bool), origin, size, valid, desc)


def _centre_final(prep: _Prepared, cfg: WorldConfig, k: int, stats: bool = False):
    """Batch-leading prepared creatures -> final (x, y) of node (6, 6) [B, 2], simulated on a k x k crop.

    The physics runs with the batch on the trailing axis so that every stencil is a contiguous vector
    operation over creatures (batch-leading layouts measured ~5x slower on CPU).
    """
    crop = jax.vmap(lambda a, o: _crop(a, o, k))
    to_last = lambda a: jnp.moveaxis(a, 0, -1)  # noqa: E731
    body = _make_body(to_last(crop(prep.bond_on, prep.origin)), to_last(crop(prep.bits, prep.origin)),
                      to_last(prep.origin), cfg)
    out = _rollout(body, cfg, stats=stats)
    X = out["X"]  # [2, k, k, B]
    local = jnp.asarray(CENTRE) - prep.origin  # [B, 2]
    onehot = (jnp.arange(k)[:, None, None] == local[:, 0]) & (jnp.arange(k)[None, :, None] == local[:, 1])
    centre = jnp.sum(jnp.where(onehot, X, 0.0), axis=(1, 2)).T
    return centre, {key: v for key, v in out.items() if key not in ("X", "frames")}


def _result(prep: _Prepared, centre):
    fitness = centre[..., 0] - jnp.abs(centre[..., 1])
    return {"fitness": jnp.where(prep.valid, fitness, INVALID_FITNESS).astype(jnp.float32),
            "descriptors": prep.desc, "valid": prep.valid}


def evaluate_one(genome: Genome, cfg: WorldConfig) -> dict:
    """One genome -> {fitness f32, descriptors f32[2], valid bool}; simulated on the full 16 x 16 grid.

    Fitness = x displacement minus |y displacement| of node (6, 6) after cfg.steps steps; an invalid genome
    (no node (6, 6)) gets INVALID_FITNESS. vmap-able; `evaluate_batch` is the fast path for populations.
    """
    prep = _prepare(genome)
    body = _make_body(prep.bond_on, prep.bits, jnp.zeros(2, jnp.int32), cfg)
    X = _rollout(body, cfg)["X"]
    return _result(prep, X[:, CENTRE[0], CENTRE[1]])


@functools.partial(jax.jit, static_argnames=("cfg", "tiers", "chunk"))
def evaluate_batch(genomes: Genome, cfg: WorldConfig, tiers: tuple[int, ...] = TIERS, chunk: int = CHUNK) -> dict:
    """A batch of genomes (leading axis) -> evaluate_one's dict with a leading batch axis. THE hot path.

    Creatures are sorted by bounding-box side and cut into chunks of `chunk`; each chunk is simulated on the
    smallest grid in `tiers` that holds its largest creature (a `lax.switch` inside `lax.map`, so only that
    grid runs). Cropping is exact: the physics is translation invariant and a creature never reads a node
    outside its bounding box, so every tier returns the same fitness as the full grid (tested bit-for-bit).
    Under an outer `vmap` the switch becomes a select and every tier runs: vmap `evaluate_one` instead, or call
    this once per population.
    """
    tiers = tuple(sorted(set(tiers) | {G}))
    if any(t < 1 or t > G for t in tiers):
        raise ConfigError(f"evaluate_batch tiers must lie in [1, {G}], got {tiers}")
    prep = jax.vmap(_prepare)(genomes)
    B = prep.size.shape[0]
    C = max(1, min(chunk, B))
    n_chunks = -(-B // C)
    order = jnp.argsort(prep.size, stable=True)
    order = jnp.concatenate([order, jnp.full((n_chunks * C - B,), order[-1])])
    sorted_prep = jax.tree.map(lambda a: a[order].reshape((n_chunks, C) + a.shape[1:]), prep)
    need = jnp.max(sorted_prep.size, axis=1)
    # branch 0: nothing alive in the chunk (all invalid), nothing to simulate; branch i: grid tiers[i - 1]
    tier_idx = jnp.where(need > 0, 1 + jnp.sum(need[:, None] > jnp.asarray(tiers[:-1]), axis=1), 0)
    branches = [lambda p: jnp.zeros((C, 2), jnp.float32)]
    branches += [functools.partial(lambda p, k: _centre_final(p, cfg, k)[0], k=k) for k in tiers]
    centre = jax.lax.map(lambda a: jax.lax.switch(a[1], branches, a[0]), (sorted_prep, tier_idx))
    centre = jnp.zeros((B, 2), jnp.float32).at[order[:B]].set(centre.reshape(n_chunks * C, 2)[:B])
    return _result(prep, centre)


@functools.partial(jax.jit, static_argnames=("cfg", "record_every"))
def simulate(genome: Genome, cfg: WorldConfig, record_every: int = 0):
    """One genome on the full grid -> (final positions f32 [16, 16, 2], trajectory [T, 16, 16, 2] or None).

    Positions are (x, y) in world units with node (6, 6) starting at the origin and node (r, c) at
    ((c - 6) * spacing, (r - 6) * spacing); nodes outside the creature stay at rest. The trajectory holds the
    rest state and then every `record_every`-th step (T = steps // record_every + 1).
    """
    prep = _prepare(genome)
    body = _make_body(prep.bond_on, prep.bits, jnp.zeros(2, jnp.int32), cfg)
    out = _rollout(body, cfg, record_every=record_every)
    final = jnp.moveaxis(out["X"], 0, -1)
    return final, (None if out["frames"] is None else jnp.moveaxis(out["frames"], 1, -1))


def joint_overshoot(genome: Genome, traj: np.ndarray, limit: float) -> np.ndarray:
    """Degrees beyond the +-limit band around each joint's rest angle (90 for perpendicular bonds, 180 for
    collinear ones), per recorded step and pair of bonds meeting at a node, from positions alone (numpy)."""
    bond_on = np.asarray(phenotype(genome)[1])
    out = np.zeros((G, G, 4), bool)  # bond leaving each node towards +x, +y, -x, -y
    out[:, :, 0], out[:, :, 1] = bond_on[:, :, 0], bond_on[:, :, 1]
    out[:, 1:, 2], out[1:, :, 3] = bond_on[:, :-1, 0], bond_on[:-1, :, 1]
    step = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    over = []
    for a in range(4):
        for b in range(a + 1, 4):
            r, c = np.nonzero(out[:, :, a] & out[:, :, b])
            va = traj[:, r + step[a][0], c + step[a][1]] - traj[:, r, c]
            vb = traj[:, r + step[b][0], c + step[b][1]] - traj[:, r, c]
            cos = (va * vb).sum(-1) / np.linalg.norm(va, axis=-1) / np.linalg.norm(vb, axis=-1)
            angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
            rest = 180.0 if b - a == 2 else 90.0
            over.append(np.maximum(np.abs(angle - rest) - limit, 0.0).ravel())
    return np.concatenate(over)


@functools.partial(jax.jit, static_argnames=("cfg", "crop"))
def diagnostics(genomes: Genome, cfg: WorldConfig, crop: int = G) -> dict:
    """Stability statistics of a batch (leading axis), simulated on a `crop` grid (creatures must fit it,
    see `fits`): evaluate_one's dict plus the final position of node (6, 6) `centre` [B, 2], the kinetic energy
    0.5 sum |v|^2 after every step `kinetic_energy` [B, steps], and the max relative length error of plain bonds
    (`max_bond_error`) and of muscle bonds against their current target (`max_muscle_error`) over the run."""
    prep = jax.vmap(_prepare)(genomes)
    centre, stats = _centre_final(prep, cfg, crop, stats=True)
    return {**_result(prep, centre), **stats, "centre": centre, "fits": prep.size <= crop}
