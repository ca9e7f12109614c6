"""Search over Oceanworld creatures: random sampling, greedy hill climbing, novelty search, MAP-Elites, and
MAP-Elites seeded by novelty search (source: "Quality Diversity: Evolving Ocean Creatures").

Every algorithm spends the same budget: ``init_batch`` evaluations when it starts, then ``batch`` evaluations per
generation, so runs with equal ``steps`` are compared at equal evaluations (``state.evaluations`` counts them).
A creature's descriptor is d = (min(nodes / 100, 1), bonds / nodes - 1) and its fitness f is the x displacement
minus |y drift| of node (6, 6) (``world.evaluate_batch``).

- random: each generation evaluates ``batch`` fresh ``world.random_genome`` samples, the post's "genomes sampled
  from a random distribution" (its red points); mutated start genomes would be a local search, not a baseline.
- greedy: one parent, the start genome of key ``start_seed`` (a 5x5 block with random muscle/drag bits); each
  generation mutates it into ``batch`` children and the best child replaces it only if strictly fitter
  (a (1, batch) hill climber; the post's one-child loop is batch = 1). At init the batch is the parent itself
  plus ``init_batch - 1`` children.
- novelty: a population of ``pop`` genomes. Each generation mutates ``batch`` parents drawn uniformly from the
  valid members, and scores every valid member of the union U = population + offspring by its novelty
      rho(x) = (1 / k) sum_{j=1..k} ||d(x) - d(n_j(x))||_2,   n_j(x) the j-th nearest other member of U,
  then keeps the ``pop`` most novel (ties: lower index first); invalid creatures (no node (6, 6)) score -inf and
  are never kept while a valid one is left out. The post keeps 1000 with k = 10 (the defaults); the original
  release keeps 512 with k = 20 (``--set pop=512 --set k=20``). The post sums over the k neighbours; the mean
  ranks identically. The initial population is the ``pop`` most novel of ``init_batch`` random genomes.
- mapelites: a 32 x 32 grid archive filled by ``init_batch`` random genomes; each generation picks ``batch``
  elites uniformly from the filled cells, mutates them, evaluates and inserts the children.
- ns_mapelites: novelty search for ``ns_generations`` generations, then MAP-Elites (the post's appendix) under
  ``lax.cond`` on the generation counter. The MAP-Elites archive it starts from is the passive archive of the
  novelty phase (every creature evaluated so far, best per cell), which holds an elite in every cell the novelty
  population ever visited and costs no re-evaluation; the total budget equals mapelites'.

Every evaluated creature of every algorithm is inserted into one archive: MAP-Elites' own, or a passive result
archive for random, greedy and novelty, so their coverage is measured on the same grid.

Grid archive (pyribs ``GridArchive`` / QDax ``MapElitesRepertoire`` conventions). Cells: 32 bins of node fraction
over [0, 1] times 32 bins of bond ratio over [-0.1, 1]; descriptors outside are clipped into the border cells
(creatures under 10 nodes can have bond ratios down to -1 and land in the lowest bond-ratio row, and a bond ratio
above 1 - 2 / sqrt(nodes) is geometrically impossible, so a full archive is unreachable). Cell c of descriptor d is
    i = clip(floor((d - low) / (high - low) * 32), 0, 31),   c = 32 * i_nodes + i_bonds.
A batch is inserted by (1) the per-cell best of the batch, a segment max with ties going to the lowest batch
index, then (2) replacing an elite only where that candidate is strictly fitter. Invalid or non-finite
creatures are never inserted. Metrics:
    qd_score = sum over filled cells of max(f - qd_offset, 0),  coverage = filled / 1024,  max_fitness = max f.
``qd_offset`` = -100 lies below every valid creature measured while sizing it (the lowest fitness among 512
random genomes and 512 mutated start genomes was -93 in the earlier rigid physics and -66 in today's; elites, the
best of their cells, sit far higher), and the clip at zero keeps QD-score monotone under insertion even for a
creature below it. An empty archive reports max_fitness = qd_offset (never seen after init; it keeps logged
values finite).

Budget. The post mutates all 1000 genomes per generation and gives no generation count. Here ``batch`` is the
same for every algorithm and the presets are sized by measured throughput: small creatures evaluate several
times faster than large ones (world.evaluate_batch simulates each chunk on the smallest grid that holds it), and
novelty search and MAP-Elites move to large creatures, so ``full`` spends 1024 + 128 x 256 = 33,792 evaluations
per run, with a population of 1000 and k = 10 as in the post. ns_mapelites spends the first quarter of the
generations on novelty search (a choice: the post does not say how long it ran), leaving most of the budget to
MAP-Elites.

Why the archive is written here instead of using pyribs: a whole generation (mutate, simulate, insert) then
stays inside one jitted ``lax.scan`` as in QDax, with no host round-trip per generation; pyribs archives are
NumPy and would force a device-to-host copy of every batch.

Logging: ``step`` runs ``inner_steps`` generations; its ``info`` holds the values after the LAST generation of
the scan (scan outputs[-1]), not means over the scan, because QD-score and coverage are states, not rates, so
metrics.jsonl has the curves at every step() call. ``loss`` is -max_fitness (the run loop requires a loss).
The state keeps ``snapshots + 1`` copies of the archive's fitness grid (after init and at evenly spaced
generations) and of the greedy parent, for the heatmaps and trajectories over time.

Devices (not in the source): ``devices`` = N > 1 splits every population evaluation (the ``init_batch`` genomes
at init, the ``batch`` children of each generation) over N devices; the archive, the novelty population and every
selection stay replicated. Each device runs ``world.evaluate_batch`` on its own slice
(``core.jaxtools.sharded_map``, a ``shard_map``): the size-sorted chunks and their grid tiers are chosen per
slice, which cannot change a fitness because every tier gives the full grid's result. ``batch`` and
``init_batch`` must be multiples of N. 1 (the default) is the single-device path, bit-identical to the search
without the option.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax

from athanor.core import jaxtools
from athanor.core.artifacts import Heatmap
from athanor.core.config import TrainConfig, param
from athanor.envs import oceanworld as world
from athanor.viz.creatures import creature_frames
from athanor.viz.figures import grid_panels
from athanor.viz.video import tile_videos

THROUGHPUT_UNIT = "evaluations"
ALGORITHMS = ("random", "greedy", "novelty", "mapelites", "ns_mapelites")
NOVELTY_ALGORITHMS = ("novelty", "ns_mapelites")
GRID = 32  # post: "Maintain a 32 x 32 matrix of genomes"
CELLS = GRID * GRID
DESC_LOW = (0.0, -0.1)  # node fraction, bond ratio
DESC_HIGH = (1.0, 1.0)
DESC_NAMES = ("node fraction", "bond ratio")
TOP_K = 10  # elites counted by top_small_fraction
# The post's 3 x 3 tour of the archive: (10%, 50%, 100%) nodes x (10%, 50%, 100%) bond ratio.
ELITE_NODES = (("small", 0.1), ("medium", 0.5), ("large", 1.0))
ELITE_BONDS = (("low", 0.1), ("mid", 0.5), ("high", 1.0))


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    algorithm: str = param("mapelites", choices=ALGORITHMS)  # registry entry picks the search
    steps: int = param(200, lo=1)  # generations (the post gives no count)
    inner_steps: int = param(10, lo=1)  # generations fused per jitted call (speed only)
    batch: int = param(1000, lo=1)  # post: mutate each of the 1000 genomes once per generation
    init_batch: int = param(1000, lo=1)  # evaluations at init (random genomes; the greedy parent + mutants)
    pop: int = param(1000, lo=1)  # post: "Maintain a population of 1000 genomes" (release: 512)
    k: int = param(10, lo=1)  # post: distance to the 10 closest neighbours (release: 20)
    ns_generations: int = param(50, lo=0)  # appendix: novelty search first (length unstated; a quarter here)
    mutation_p: float = param(0.05, lo=0.0, hi=1.0)  # release: each node/bond bit resampled with p = 0.05
    start_seed: int = param(0, lo=0)  # greedy: key of the start genome ("Initial genome #1 / #2")
    sim_steps: int = param(500, lo=1)  # release: fitness after 500 physics steps
    qd_offset: float = param(-100.0)  # QD-score floor, below the fitness of nearly every valid creature
    size_tiers: bool = param(True)  # world.evaluate_batch: simulate on the smallest grid that fits (speed only)
    snapshots: int = param(4, lo=1)  # archive copies kept over time (plus the one after init)
    video_frames: int = param(100, lo=2)  # frames per rendered creature video
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each population split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 4, "inner_steps": 2, "batch": 16, "init_batch": 16, "pop": 12, "k": 3,
             "ns_generations": 2, "sim_steps": 40, "snapshots": 2, "video_frames": 8, "size_tiers": False},
    "quick": {"steps": 80, "inner_steps": 8, "eval_every": 40, "batch": 128, "init_batch": 256, "pop": 256,
              "ns_generations": 20},
    # sized for the whole experiment (6 runs) on 2 CPU cores; see the module docstring
    "full": {"steps": 128, "inner_steps": 8, "eval_every": 32, "ckpt_every": 32, "batch": 256, "init_batch": 1024,
             "ns_generations": 32},
}


def items_per_update(cfg: Config) -> int:
    """Creature evaluations per update (one generation)."""
    return cfg.batch


class Ops(NamedTuple):
    """The world as the search sees it; tests substitute a cheap evaluator with the same signatures."""

    random: Callable  # key -> genome
    start: Callable  # key -> genome
    mutate: Callable  # (key, genome) -> genome
    evaluate: Callable  # batched genomes -> {"fitness": (B,), "descriptors": (B, 2), "valid": (B,)}


class Archive(struct.PyTreeNode):
    fitness: jax.Array  # (C,) float32, -inf where empty
    descriptors: jax.Array  # (C, 2)
    genomes: Any  # genome pytree, leaves (C, ...)


class Population(struct.PyTreeNode):
    genomes: Any  # leaves (P, ...); P = 0 for algorithms without novelty search
    descriptors: jax.Array  # (P, 2)
    fitness: jax.Array  # (P,)
    valid: jax.Array  # (P,) bool
    novelty: jax.Array  # (P,) -inf where invalid


class State(struct.PyTreeNode):
    archive: Archive
    population: Population
    parent: Any  # greedy parent genome (unused elsewhere)
    parent_fitness: jax.Array  # ()
    parent_descriptors: jax.Array  # (2,)
    last_improvement: jax.Array  # () int32, generation at which the parent last changed
    history: jax.Array  # (snapshots + 1, C) archive fitness after init and at each snapshot generation
    parent_history: Any  # greedy parent at the same times, leaves (snapshots + 1, ...)
    generation: jax.Array  # () int32
    evaluations: jax.Array  # () int32
    key: jax.Array  # raw uint32 key


# ----------------------------------------------------------------------------------------------- archive


def cell_index(descriptors: jax.Array) -> jax.Array:
    """(B, 2) descriptors -> (B,) int32 flat cell index 32 * i_nodes + i_bonds (clipped into the grid)."""
    low, high = jnp.asarray(DESC_LOW), jnp.asarray(DESC_HIGH)
    ij = jnp.floor((descriptors - low) / (high - low) * GRID).astype(jnp.int32)
    ij = jnp.clip(ij, 0, GRID - 1)
    return ij[:, 0] * GRID + ij[:, 1]


def empty_archive(genome_template: Any) -> Archive:
    genomes = jax.tree.map(lambda x: jnp.zeros((CELLS, *x.shape), x.dtype), genome_template)
    return Archive(jnp.full((CELLS,), -jnp.inf, jnp.float32), jnp.zeros((CELLS, 2), jnp.float32), genomes)


def archive_insert(archive: Archive, genomes: Any, fitness: jax.Array, descriptors: jax.Array,
                   valid: jax.Array) -> Archive:
    """Insert a batch: per-cell best candidate (lowest index on ties), kept only if strictly fitter."""
    n = fitness.shape[0]
    ok = valid & jnp.isfinite(fitness) & jnp.all(jnp.isfinite(descriptors), axis=-1)
    cell = jnp.where(ok, cell_index(descriptors), CELLS)  # CELLS = dropped by the segment ops and scatters
    fit = jnp.where(ok, fitness, -jnp.inf).astype(jnp.float32)
    best = jax.ops.segment_max(fit, cell, num_segments=CELLS)  # (C,)
    safe = jnp.minimum(cell, CELLS - 1)
    idx = jnp.arange(n)
    first = jax.ops.segment_min(jnp.where(ok & (fit == best[safe]), idx, n), cell, num_segments=CELLS)
    wins = ok & (first[safe] == idx) & (fit > archive.fitness[safe])
    target = jnp.where(wins, cell, CELLS)
    return Archive(
        fitness=archive.fitness.at[target].set(fit, mode="drop"),
        descriptors=archive.descriptors.at[target].set(descriptors.astype(jnp.float32), mode="drop"),
        genomes=jax.tree.map(lambda a, g: a.at[target].set(g, mode="drop"), archive.genomes, genomes),
    )


def archive_metrics(fitness: jax.Array, offset: float) -> dict[str, jax.Array]:
    """qd_score, coverage and max_fitness of an archive's (C,) fitness array (-inf = empty)."""
    filled = jnp.isfinite(fitness)
    return {
        "qd_score": jnp.sum(jnp.where(filled, jnp.maximum(fitness - offset, 0.0), 0.0)),
        "coverage": jnp.mean(filled.astype(jnp.float32)),
        "max_fitness": jnp.where(jnp.any(filled), jnp.max(fitness), jnp.float32(offset)),
    }


# ----------------------------------------------------------------------------------------------- novelty


def novelty_scores(descriptors: jax.Array, valid: jax.Array, k: int) -> jax.Array:
    """Mean distance to the k nearest other valid points (fewer if fewer exist); -inf for invalid points."""
    n = descriptors.shape[0]
    diff = descriptors[:, None, :] - descriptors[None, :, :]
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))  # (N, N)
    dist = jnp.where(valid[None, :] & ~jnp.eye(n, dtype=bool), dist, jnp.inf)
    near = -lax.top_k(-dist, min(k, n))[0]  # (N, k) ascending
    have = jnp.isfinite(near)
    score = jnp.sum(jnp.where(have, near, 0.0), axis=1) / jnp.maximum(jnp.sum(have, axis=1), 1)
    return jnp.where(valid, score, -jnp.inf)


def select_population(pop: Population, genomes: Any, fitness: jax.Array, descriptors: jax.Array,
                      valid: jax.Array, k: int) -> Population:
    """Keep the ``P`` most novel of population + offspring; ties go to the lower index (old members first)."""
    desc = jnp.concatenate([pop.descriptors, descriptors.astype(jnp.float32)])
    ok = jnp.concatenate([pop.valid, valid & jnp.isfinite(fitness) & jnp.all(jnp.isfinite(descriptors), -1)])
    fit = jnp.concatenate([pop.fitness, fitness.astype(jnp.float32)])
    union = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), pop.genomes, genomes)
    score = novelty_scores(jnp.where(ok[:, None], desc, 0.0), ok, k)
    keep = lax.top_k(score, pop.fitness.shape[0])[1]
    return Population(jax.tree.map(lambda a: a[keep], union), desc[keep], fit[keep], ok[keep], score[keep])


# ---------------------------------------------------------------------------------------------- generations


def _evaluate(ops: Ops, genomes: Any):
    out = ops.evaluate(genomes)
    return out["fitness"].astype(jnp.float32), out["descriptors"].astype(jnp.float32), out["valid"]


def _mutate_from(ops: Ops, key: jax.Array, parents: Any) -> Any:
    n = jax.tree.leaves(parents)[0].shape[0]
    return jax.vmap(ops.mutate)(jax.random.split(key, n), parents)


def _pick(key: jax.Array, mask: jax.Array, n: int) -> jax.Array:
    """n indices drawn uniformly (with replacement) from where mask holds; uniform over all if none does."""
    p = jnp.where(jnp.any(mask), mask / jnp.maximum(jnp.sum(mask), 1), 1.0 / mask.shape[0])
    return jax.random.choice(key, mask.shape[0], (n,), p=p)


def _random_gen(state: State, key: jax.Array, cfg: Config, ops: Ops) -> State:
    genomes = jax.vmap(ops.random)(jax.random.split(key, cfg.batch))
    f, d, v = _evaluate(ops, genomes)
    return state.replace(archive=archive_insert(state.archive, genomes, f, d, v))


def _greedy_gen(state: State, key: jax.Array, cfg: Config, ops: Ops) -> State:
    parents = jax.tree.map(lambda x: jnp.broadcast_to(x, (cfg.batch, *x.shape)), state.parent)
    children = _mutate_from(ops, key, parents)
    f, d, v = _evaluate(ops, children)
    score = jnp.where(v & jnp.isfinite(f), f, -jnp.inf)
    b = jnp.argmax(score)
    better = score[b] > state.parent_fitness
    choose = functools.partial(jnp.where, better)
    return state.replace(
        archive=archive_insert(state.archive, children, f, d, v),
        parent=jax.tree.map(lambda c, p: choose(c[b], p), children, state.parent),
        parent_fitness=choose(score[b], state.parent_fitness),
        parent_descriptors=choose(d[b], state.parent_descriptors),
        last_improvement=choose(state.generation + 1, state.last_improvement),
    )


def _novelty_gen(state: State, key: jax.Array, cfg: Config, ops: Ops) -> State:
    k_pick, k_mut = jax.random.split(key)
    pop = state.population
    parents = jax.tree.map(lambda x: x[_pick(k_pick, pop.valid, cfg.batch)], pop.genomes)
    children = _mutate_from(ops, k_mut, parents)
    f, d, v = _evaluate(ops, children)
    return state.replace(archive=archive_insert(state.archive, children, f, d, v),
                         population=select_population(pop, children, f, d, v, cfg.k))


def _mapelites_gen(state: State, key: jax.Array, cfg: Config, ops: Ops) -> State:
    k_pick, k_mut = jax.random.split(key)
    filled = jnp.isfinite(state.archive.fitness)
    parents = jax.tree.map(lambda x: x[_pick(k_pick, filled, cfg.batch)], state.archive.genomes)
    children = _mutate_from(ops, k_mut, parents)
    f, d, v = _evaluate(ops, children)
    return state.replace(archive=archive_insert(state.archive, children, f, d, v))


def _snapshot_times(cfg: Config) -> np.ndarray:
    """Generation after which each history slot is taken: 0 (after init), then steps * j / snapshots."""
    return np.array([0] + [cfg.steps * j // cfg.snapshots for j in range(1, cfg.snapshots + 1)])


def _record(state: State, cfg: Config) -> State:
    hit = jnp.asarray(_snapshot_times(cfg)) == state.generation  # (S + 1,)
    history = jnp.where(hit[:, None], state.archive.fitness[None], state.history)
    parents = jax.tree.map(
        lambda h, p: jnp.where(hit.reshape((-1,) + (1,) * p.ndim), p[None], h), state.parent_history, state.parent)
    return state.replace(history=history, parent_history=parents)


def _generation(state: State, cfg: Config, ops: Ops) -> State:
    key, k_gen = jax.random.split(state.key)
    step_fn = {"random": _random_gen, "greedy": _greedy_gen, "novelty": _novelty_gen,
               "mapelites": _mapelites_gen}.get(cfg.algorithm)
    if step_fn is not None:
        state = step_fn(state, k_gen, cfg, ops)
    else:  # ns_mapelites
        state = lax.cond(state.generation < cfg.ns_generations,
                         lambda s: _novelty_gen(s, k_gen, cfg, ops), lambda s: _mapelites_gen(s, k_gen, cfg, ops),
                         state)
    state = state.replace(key=key, generation=state.generation + 1, evaluations=state.evaluations + cfg.batch)
    return _record(state, cfg)


def _info(state: State, cfg: Config) -> dict[str, jax.Array]:
    info = archive_metrics(state.archive.fitness, cfg.qd_offset)
    info["evaluations"] = state.evaluations.astype(jnp.float32)
    info["loss"] = -info["max_fitness"]
    if cfg.algorithm == "greedy":
        info["parent_fitness"] = state.parent_fitness
    if cfg.algorithm in NOVELTY_ALGORITHMS:
        pop = state.population
        info["mean_novelty"] = jnp.sum(jnp.where(pop.valid, pop.novelty, 0.0)) / jnp.maximum(pop.valid.sum(), 1)
        cells = jnp.where(pop.valid, cell_index(pop.descriptors), CELLS)
        info["population_coverage"] = jnp.zeros(CELLS, bool).at[cells].set(True, mode="drop").mean()
    return info


@functools.partial(jax.jit, static_argnames=("cfg", "ops"))
def run_generations(state: State, cfg: Config, ops: Ops) -> tuple[State, dict[str, jax.Array]]:
    """``cfg.inner_steps`` generations in one scan; info = metrics after the last generation."""

    def body(s, _):
        s = _generation(s, cfg, ops)
        return s, _info(s, cfg)

    state, trace = lax.scan(body, state, None, length=cfg.inner_steps)
    return state, jax.tree.map(lambda x: x[-1], trace)


@functools.partial(jax.jit, static_argnames=("cfg", "ops"))
def init_with(cfg: Config, key: jax.Array, ops: Ops) -> State:
    """Initial state for any evaluator ``ops``: ``cfg.init_batch`` evaluations, already in the archive."""
    k_init, k_state = jax.random.split(key)
    template = jax.eval_shape(ops.random, k_init)
    zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), template)
    n_pop = cfg.pop if cfg.algorithm in NOVELTY_ALGORITHMS else 0
    stack = cfg.snapshots + 1
    state = State(
        archive=empty_archive(template),
        population=Population(jax.tree.map(lambda x: jnp.zeros((n_pop, *x.shape), x.dtype), template),
                              jnp.zeros((n_pop, 2)), jnp.full((n_pop,), -jnp.inf), jnp.zeros((n_pop,), bool),
                              jnp.full((n_pop,), -jnp.inf)),
        parent=zeros, parent_fitness=jnp.float32(-jnp.inf), parent_descriptors=jnp.zeros(2),
        last_improvement=jnp.int32(0), history=jnp.full((stack, CELLS), -jnp.inf, jnp.float32),
        parent_history=jax.tree.map(lambda x: jnp.zeros((stack, *x.shape), x.dtype), template),
        generation=jnp.int32(0), evaluations=jnp.int32(cfg.init_batch), key=k_state,
    )
    if cfg.algorithm == "greedy":
        parent = ops.start(jax.random.PRNGKey(cfg.start_seed))
        mutants = _mutate_from(ops, k_init, jax.tree.map(
            lambda x: jnp.broadcast_to(x, (cfg.init_batch - 1, *x.shape)), parent))
        genomes = jax.tree.map(lambda p, m: jnp.concatenate([p[None], m]), parent, mutants)
        f, d, v = _evaluate(ops, genomes)
        score = jnp.where(v & jnp.isfinite(f), f, -jnp.inf)
        b = jnp.argmax(score)  # the parent (index 0) stays unless a mutant is strictly fitter
        state = state.replace(parent=jax.tree.map(lambda g: g[b], genomes), parent_fitness=score[b],
                              parent_descriptors=d[b])
    else:
        genomes = jax.vmap(ops.random)(jax.random.split(k_init, cfg.init_batch))
        f, d, v = _evaluate(ops, genomes)
        if cfg.algorithm in NOVELTY_ALGORITHMS:
            state = state.replace(population=select_population(state.population, genomes, f, d, v, cfg.k))
    state = state.replace(archive=archive_insert(state.archive, genomes, f, d, v))
    return _record(state, cfg)


# --------------------------------------------------------------------------------------- system contract


def world_config(cfg: Config) -> world.WorldConfig:
    return world.WorldConfig(steps=cfg.sim_steps)


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks the population sizes divide."""
    return jaxtools.mesh_for(cfg.devices, batch=cfg.batch, init_batch=cfg.init_batch)


@functools.cache
def world_ops(cfg: Config) -> Ops:
    """The real world behind ``Ops``; cached so jit sees the same static object for the same config. With
    ``devices`` > 1 its evaluation splits the population over the devices."""
    wcfg = world_config(cfg)
    tiers = world.TIERS if cfg.size_tiers else (world.G,)
    evaluate = jaxtools.sharded_map(lambda genomes: world.evaluate_batch(genomes, wcfg, tiers=tiers), _mesh(cfg))
    return Ops(random=world.random_genome, start=world.start_genome,
               mutate=lambda key, g: world.mutate(key, g, p=cfg.mutation_p), evaluate=evaluate)


def load_data(cfg: Config, seed: int) -> None:
    return None


def init(cfg: Config, seed: int, data) -> State:
    return jaxtools.replicate(init_with(cfg, jaxtools.key(seed), world_ops(cfg)), _mesh(cfg))


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    return run_generations(state, cfg, world_ops(cfg))


def grid_of(fitness: np.ndarray) -> np.ndarray:
    """(C,) archive fitness -> (32 node-fraction bins, 32 bond-ratio bins), NaN where empty."""
    f = np.asarray(fitness, np.float64).reshape(GRID, GRID)
    return np.where(np.isfinite(f), f, np.nan)


def bin_edges(axis: int) -> np.ndarray:
    return np.linspace(DESC_LOW[axis], DESC_HIGH[axis], GRID + 1)


def size_statistics(fitness: np.ndarray, top: int = TOP_K) -> dict[str, float]:
    """Share of the ``top`` fittest elites, and of all elites, whose node fraction is below 0.5 (rows < 16)."""
    grid = grid_of(fitness)
    rows, cols = np.nonzero(np.isfinite(grid))
    if rows.size == 0:
        return {"top_small_fraction": math.nan, "filled_small_fraction": math.nan}
    order = np.lexsort((rows * GRID + cols, -grid[rows, cols]))[:top]  # fittest first, ties by cell index
    return {"top_small_fraction": float(np.mean(rows[order] < GRID // 2)),
            "filled_small_fraction": float(np.mean(rows < GRID // 2))}


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    fitness = np.asarray(state.archive.fitness)
    out = {k: float(v) for k, v in archive_metrics(jnp.asarray(fitness), cfg.qd_offset).items()}
    out["evaluations"] = float(state.evaluations)
    out["generation"] = float(state.generation)
    out.update(size_statistics(fitness))
    filled = np.isfinite(fitness)
    out["mean_fitness"] = float(fitness[filled].mean()) if filled.any() else math.nan
    if cfg.algorithm == "greedy":
        d = np.asarray(state.parent_descriptors, np.float64)
        gens = int(state.generation)
        out.update(parent_fitness=float(state.parent_fitness), parent_node_fraction=float(d[0]),
                   parent_bond_ratio=float(d[1]), parent_cell=float(cell_index(jnp.asarray(d[None]))[0]),
                   stalled_generations=float(gens - int(state.last_improvement)),
                   stalled_fraction=float((gens - int(state.last_improvement)) / max(gens, 1)))
    if cfg.algorithm in NOVELTY_ALGORITHMS:
        info = _info(state, cfg)
        out["passive_coverage"] = out["coverage"]
        out["mean_novelty"] = float(info["mean_novelty"])
        out["population_coverage"] = float(info["population_coverage"])
    return out


# ------------------------------------------------------------------------------------------------ artifacts


def archive_panels(grids: list[np.ndarray], titles: list[str], ncols: int | None = None) -> np.ndarray:
    """Archives (``grid_of`` each) side by side on one colour scale: x = node fraction, y = bond ratio, grey =
    empty -> uint8 (H, W, 3)."""
    return grid_panels(grids, titles, extent=(DESC_LOW[0], DESC_HIGH[0], DESC_LOW[1], DESC_HIGH[1]),
                       xlabel=DESC_NAMES[0], ylabel=DESC_NAMES[1], label="fitness", ncols=ncols)


def archive_heatmap(fitness: np.ndarray, title: str) -> Heatmap:
    """The archive as a table: rows = bond ratio (high at the top), columns = node fraction."""
    nodes, bonds = bin_edges(0)[:-1], bin_edges(1)[:-1]
    return Heatmap(grid_of(fitness).T[::-1], rows=[f"{b:.2f}" for b in bonds[::-1]],
                   cols=[f"{n:.2f}" for n in nodes], title=title, fmt=".0f")


def pick_elites(fitness: np.ndarray) -> list[tuple[str, int | None]]:
    """The filled cell nearest (in cell units) to each of the post's 3 x 3 targets, row-major; None if empty."""
    filled = np.flatnonzero(np.isfinite(np.asarray(fitness)))
    out = []
    for size, nf in ELITE_NODES:
        for ratio, br in ELITE_BONDS:
            if filled.size == 0:
                out.append((f"{size}/{ratio}", None))
                continue
            target = np.array(cell_index(jnp.asarray([[nf, br]], jnp.float32)))[0]
            ti, tj = divmod(int(target), GRID)
            fi, fj = np.divmod(filled, GRID)
            out.append((f"{size}/{ratio}", int(filled[np.argmin((fi - ti) ** 2 + (fj - tj) ** 2)])))
    return out


def render_creature(genome: Any, cfg: Config) -> np.ndarray:
    """(T, H, W, 3) uint8 video of one creature's rollout."""
    wcfg = world_config(cfg)
    _, traj = world.simulate(genome, wcfg, record_every=max(1, cfg.sim_steps // cfg.video_frames))
    alive, bond_on, _ = world.phenotype(genome)
    return creature_frames(np.asarray(traj), np.asarray(alive), np.asarray(bond_on), np.asarray(genome.bonds),
                           centre=world.CENTRE, spacing=wcfg.spacing)


def genome_at(genomes: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], genomes)


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    fitness = np.asarray(state.archive.fitness)
    history = np.asarray(state.history)
    times = _snapshot_times(cfg)
    arts: dict[str, Any] = {
        "archive": archive_heatmap(
            fitness, f"{cfg.algorithm}: elite fitness per cell (rows: bond ratio, columns: node fraction)"),
        "archive_over_time": archive_panels([grid_of(h) for h in history],
                                            [f"generation {int(t)}" for t in times]),
    }
    elites = [i for _, i in pick_elites(fitness) if i is not None]
    if elites:
        arts["elites"] = tile_videos([render_creature(genome_at(state.archive.genomes, i), cfg) for i in elites],
                                     ncols=3)
    if cfg.algorithm == "greedy":
        arts["best"] = render_creature(state.parent, cfg)
        arts["greedy_trajectory"] = tile_videos(
            [render_creature(genome_at(state.parent_history, j), cfg) for j in range(len(times))], ncols=len(times))
    elif np.isfinite(fitness).any():
        arts["best"] = render_creature(genome_at(state.archive.genomes, int(np.argmax(fitness))), cfg)
    return arts
