"""Multicell World as a system: run the world, take a census of its organisms, measure open-endedness.

Source: "Open-Endedness 3: Multicell World". The world itself (chemistry, cells, organisms, decision-tree
genomes, killers; every rule and why) is ``envs/multicell.py``; this module runs it and watches it.

One ``step`` is ``inner_steps`` ticks of the world in a ``lax.scan``, then a census: for every organism slot its
genome type, parent type, founding tick, cell count, the reactions its living cells run (a bitmask), its
complexity, and the energy it released and the supplied chemicals it consumed since founding; for the grid, every
space's reaction (the frames of the video) and the mean amount of each chemical. ``steps`` counts ticks. The census
lives in the state (fixed-size arrays), so checkpoints and resume carry it and ``evaluate`` needs nothing else.

Measures (``evaluate``; organisms are told apart by (slot, founding tick); "waste reactions" are those with no
supplied chemical (01, 02) among their inputs; "late" means censuses in the second half of the run):
- early_bottom_green: over the censuses in the first 10% of the run, the share of cells in the bottom quarter of
  rows that run the first reaction (green); early_bottom_share: the share of all cells in the bottom half.
- efficiency_green, efficiency_mixed: energy released per unit of supplied chemical consumed since founding,
  summed over the late organisms (each at its last census) whose genome makes only green cells, and over those
  whose genome makes green and at least one waste reaction (killers aside in both); efficiency_ratio = mixed /
  green. Classes go by the genome (the reactions on its orbit), not by the cells alive at one census, which may
  lack a kind the organism ran earlier. A green-only organism yields exactly 1 (2 energy per 2 supplied
  molecules); green + brown living on its own waste yields 2, and more when it also eats others' waste.
- multi_share_late: mean over late censuses of the share of cells in organisms whose cells run two or more
  different reactions (killers not counted); multi_type_span: the most censuses any one genome type spent as such
  an organism, over the number of censuses.
- killer_present_late: share of late censuses with at least one killer cell; killer_share_late: mean share of
  cells that are killers; killer_type_span: the most censuses any one genome type had killer cells, over the
  number of censuses.
- MODES (``measures.modes`` over genome types with a persistence lag of ``persist`` censuses): change and novelty
  summed over the run, the final and maximum complexity, mean ecology (bits).
- Bedau-Packard (``measures.evolutionary_activity``): genome types' cumulative abundance against the neutral
  shadow run built from the same births and deaths with random inheritance; activity_ratio = types above the
  shadow's 95th-percentile activity, real over shadow.
- conservation: the largest relative residual of sum chem = initial + supplied + produced - consumed - decayed.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.envs import multicell as mc
from athanor.systems.multicell import measures

THROUGHPUT_UNIT = "cell updates"
_R = mc.Rules()  # the world's defaults, written once in envs/multicell.py


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(100_000, lo=1)  # ticks; not stated in the post (its appendix run is a long video)
    inner_steps: int = param(500, lo=1)  # ticks per jitted call; a census after each (201 in a full run)
    # the world (defaults: envs.multicell.Rules; the post states none of these numbers, each is a choice)
    height: int = param(_R.height, lo=4)  # post: a grid "in the tens of cells"; hundreds work (BENCHMARKS.md)
    width: int = param(_R.width, lo=4)
    slots: int = param(_R.slots, lo=2)  # organism table size M (bounds the organisms alive at once)
    founders: int = param(_R.founders, lo=1)  # one-cell organisms at tick 0 of random non-killer reactions
    reactions: str = param(_R.reactions)  # the reaction table (envs/multicell.py docstring); post: 01+02 first
    potentials: str = param(_R.potentials)  # chemical potentials: a reaction's energy is their drop
    supply: float = param(_R.supply, lo=0.0)  # 01 and 02 per supply event in the bottom row; post: "periodically"
    supply_every: int = param(_R.supply_every, lo=1)  # ticks between supply events
    supply_scale: float = param(_R.supply_scale, lo=1e-3)  # supply e-folding height / world height (more below)
    diffusion: float = param(_R.diffusion, lo=0.0, hi=0.24)  # exchange rate between neighbours (0 = off)
    decay: float = param(_R.decay, lo=0.0, hi=1.0)  # loss per tick: a sink, or the unfed top fills up forever
    rate: float = param(_R.rate, lo=0.0)  # most reactions a cell runs per tick
    upkeep: float = param(_R.upkeep, lo=0.0)  # per cell per tick: with `supply`, green alone lives low down
    killer_cost: float = param(_R.killer_cost, lo=0.0)  # extra per killer per tick; post: killers cost energy
    kill: float = param(_R.kill, lo=0.0, hi=1.0)  # chance a killer destroys a foreign neighbour per tick
    death: float = param(_R.death, lo=0.0, hi=1.0)  # random death per cell per tick: turnover frees space
    birth_energy: float = param(_R.birth_energy, lo=0.0)  # post: a cell "with enough energy" makes a new cell
    birth_cost: float = param(_R.birth_cost, lo=0.0)  # the parent pays this ...
    child_energy: float = param(_R.child_energy, lo=0.0)  # ... the child gets this; the rest is lost
    new_organism: float = param(_R.new_organism, lo=0.0, hi=1.0)  # chance a child founds an organism anyway
    max_cells: int = param(_R.max_cells, lo=1)  # an organism this large reproduces instead of growing
    mutate: float = param(_R.mutate, lo=0.0, hi=1.0)  # chance a founder's genome mutates (else its parent's type)
    mutations: int = param(_R.mutations, lo=1)  # edits per mutated genome
    # watching it
    persist: int = param(5, lo=1)  # MODES persistence lag, in censuses
    frame_scale: int = param(4, lo=1)  # pixels per space in the video


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 400, "inner_steps": 50, "height": 16, "width": 16, "slots": 128, "founders": 24,
             "persist": 2, "frame_scale": 6},
    "quick": {"steps": 20_000, "inner_steps": 200, "height": 48, "width": 48, "slots": 1024, "founders": 72},
    "full": {},
}


def rules(cfg: Config) -> mc.Rules:
    """The world's constants from the config (the fields of ``envs.multicell.Rules`` by name)."""
    return mc.Rules(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(mc.Rules)})


class Census(struct.PyTreeNode):
    tick: jax.Array  # (C,) int32
    alive: jax.Array  # (C, M) bool
    otype: jax.Array  # (C, M) uint32
    parent_type: jax.Array  # (C, M) uint32
    born: jax.Array  # (C, M) int32
    cells: jax.Array  # (C, M) int32
    kinds: jax.Array  # (C, M) int32 bitmask of the reactions its cells run (bit R: killer)
    genome_kinds: jax.Array  # (C, M) int32 bitmask of the reactions its genome makes (on the orbit of pheromone 0)
    complexity: jax.Array  # (C, M) int32
    gain: jax.Array  # (C, M) float32
    supply_used: jax.Array  # (C, M) float32
    frame: jax.Array  # (C, H, W) int8: reaction per space, -1 empty
    chem: jax.Array  # (C, 8) float32 mean amounts


class State(struct.PyTreeNode):
    world: mc.World
    census: Census
    count: jax.Array  # censuses recorded
    chem0: jax.Array  # (8,) totals at tick 0 (conservation accounting)


def _check(cfg: Config) -> None:
    from athanor.core.errors import ConfigError

    if cfg.steps % cfg.inner_steps:
        raise ConfigError(f"steps={cfg.steps} must be a multiple of inner_steps={cfg.inner_steps} (one census per "
                          "step call)")
    try:
        chem = rules(cfg).chemistry
    except ValueError as e:
        raise ConfigError(f"reactions/potentials: {e}") from None
    if len(chem.text) > len(mc.REACTION_COLOURS) + len(mc.EXTRA_COLOURS):
        raise ConfigError(f"at most {len(mc.REACTION_COLOURS) + len(mc.EXTRA_COLOURS)} reactions are supported")
    if cfg.founders > min(cfg.slots, cfg.height * cfg.width):
        raise ConfigError(f"founders={cfg.founders} exceeds slots={cfg.slots} or the {cfg.height}x{cfg.width} grid")


def load_data(cfg: Config, seed: int):
    _check(cfg)
    return None


def _record(census: Census, world: mc.World, r: mc.Rules, i) -> Census:
    cells, kinds, genome_kinds, complexity = mc.organism_table(world, r)
    frame = jnp.where(world.org >= 0, world.rx, -1).astype(jnp.int8)
    row = Census(tick=world.tick, alive=world.alive, otype=world.otype, parent_type=world.parent_type,
                 born=world.born, cells=cells, kinds=kinds, genome_kinds=genome_kinds, complexity=complexity,
                 gain=world.gain, supply_used=world.supply_used, frame=frame, chem=world.chem.mean(axis=(0, 1)))
    return jax.tree.map(lambda buf, v: buf.at[i].set(v), census, row)


def init(cfg: Config, seed: int, data) -> State:
    _check(cfg)
    r = rules(cfg)
    world = mc.init(r, jaxtools.key(seed))
    n = cfg.steps // cfg.inner_steps + 1
    m, h, w = cfg.slots, cfg.height, cfg.width

    def z(shape, dtype):
        return jnp.zeros(shape, dtype)

    census = Census(tick=z(n, jnp.int32), alive=z((n, m), bool), otype=z((n, m), jnp.uint32),
                    parent_type=z((n, m), jnp.uint32), born=z((n, m), jnp.int32), cells=z((n, m), jnp.int32),
                    kinds=z((n, m), jnp.int32), genome_kinds=z((n, m), jnp.int32), complexity=z((n, m), jnp.int32),
                    gain=z((n, m), jnp.float32),
                    supply_used=z((n, m), jnp.float32), frame=jnp.full((n, h, w), -1, jnp.int8),
                    chem=z((n, mc.N_CHEM), jnp.float32))
    census = _record(census, world, r, 0)
    return State(world=world, census=census, count=jnp.int32(1), chem0=world.chem.sum(axis=(0, 1)))


@functools.partial(jax.jit, static_argnames=("r", "ticks"))
def _advance(state: State, r: mc.Rules, ticks: int) -> State:
    world = mc.run(state.world, r, ticks)
    census = _record(state.census, world, r, state.count)
    return state.replace(world=world, census=census, count=state.count + 1)


def conservation_residual(state: State) -> float:
    """max over chemicals of |sum chem - (initial + net supplied, produced, consumed and decayed)|, over the
    largest total (the net change accumulated tick by tick: ``envs/multicell.py``, Conservation)."""
    w = state.world
    expected = state.chem0 + w.balance
    total = w.chem.sum(axis=(0, 1))
    scale = jnp.maximum(jnp.abs(total).max(), 1.0)
    return float(jnp.abs(total - expected).max() / scale)


def _summary(state: State, n_r: int) -> dict[str, float]:
    """What ``step`` logs, read from the census row just recorded (no second pass over the organisms)."""
    i = int(state.count) - 1
    c = state.census
    cells, alive, frame = np.asarray(c.cells[i]), np.asarray(c.alive[i]), np.asarray(c.frame[i])
    n = max(int(cells.sum()), 1)
    reactions = _bits(np.asarray(c.kinds[i]), n_r)[:, :n_r].sum(axis=-1)
    occupied = np.asarray(state.world.org) >= 0
    return {"cells": float(cells.sum()), "organisms": float(alive.sum()),
            "multi_share": float(cells[reactions >= 2].sum() / n), "killer_share": float((frame == n_r).sum() / n),
            "mean_energy": float(np.asarray(state.world.energy)[occupied].sum() / n),
            "types": float(len(np.unique(np.asarray(c.otype[i])[alive])))}


def step(state: State, data, cfg: Config):
    r = rules(cfg)
    state = _advance(state, r, cfg.inner_steps)
    info = _summary(state, r.n_reactions)
    info["conservation_residual"] = conservation_residual(state)
    return state, info


# --- measurement (host side, from the census) ----------------------------------------------------------------


def census_arrays(state: State) -> dict[str, np.ndarray]:
    """The recorded censuses as NumPy arrays (only the rows written so far)."""
    n = int(state.count)
    return {f.name: np.asarray(getattr(state.census, f.name))[:n] for f in dataclasses.fields(Census)}


def _bits(kinds: np.ndarray, n_r: int) -> np.ndarray:
    """(..., R + 1) bool: which reactions (then killer) an organism's cells run."""
    return ((kinds[..., None] >> np.arange(n_r + 1)) & 1).astype(bool)


def _span(types, alive, flag) -> float:
    """The most censuses any one genome type spent with ``flag`` set, over the number of censuses."""
    t_idx, m_idx = np.nonzero(alive & flag)
    if len(t_idx) == 0:
        return 0.0
    pairs = np.unique(np.stack([types[t_idx, m_idx].astype(np.int64), t_idx]), axis=1)
    return float(np.bincount(np.unique(pairs[0], return_inverse=True)[1]).max() / types.shape[0])


def measure(c: dict[str, np.ndarray], cfg: Config, seed: int) -> dict[str, float]:
    """Every measure of the module docstring from census arrays ``c`` (see ``census_arrays``)."""
    chemistry = rules(cfg).chemistry
    n_r = len(chemistry.text)
    waste = np.array([a[1] == 0 and a[2] == 0 for a in chemistry.inputs] + [False])
    tick, alive, frame = c["tick"], c["alive"], c["frame"]
    h = frame.shape[1]
    bits = _bits(c["kinds"], n_r)  # (C, M, R+1)
    n_react = bits[..., :n_r].sum(axis=-1)
    out: dict[str, float] = {}

    early = (tick > 0) & (tick <= max(0.1 * cfg.steps, tick[min(1, len(tick) - 1)]))
    occupied = frame >= 0
    bottom = np.zeros(h, bool)
    bottom[h - max(h // 4, 1):] = True
    in_bottom = occupied[early][:, bottom]
    green = (frame[early][:, bottom] == 0) & in_bottom
    out["early_bottom_green"] = float(green.sum() / max(in_bottom.sum(), 1)) if in_bottom.any() else float("nan")
    lower = np.arange(h) >= h // 2
    occ_early = occupied[early]
    out["early_bottom_share"] = (float(occ_early[:, lower].sum() / occ_early.sum()) if occ_early.any()
                                 else float("nan"))

    late = tick >= cfg.steps / 2
    # each late organism at its last late census: (slot, born) identifies it
    last: dict[tuple[int, int], int] = {}
    for t in np.nonzero(late)[0]:
        for m in np.nonzero(alive[t])[0]:
            last[(int(m), int(c["born"][t, m]))] = int(t)
    genome = _bits(c["genome_kinds"], n_r)[..., :n_r]  # (C, M, R): reactions the genome makes, killers aside
    sums = {"green": [0.0, 0.0], "mixed": [0.0, 0.0]}
    mixed_orgs = 0
    for (m, _), t in last.items():
        b = genome[t, m]
        if b[0] and not b[1:].any():
            cls = "green"
        elif b[0] and (b & waste[:n_r]).any():
            cls = "mixed"
            mixed_orgs += 1
        else:
            continue
        sums[cls][0] += float(c["gain"][t, m])
        sums[cls][1] += float(c["supply_used"][t, m])
    eff = {k: (g / s if s > 0 else float("nan")) for k, (g, s) in sums.items()}
    out["efficiency_green"], out["efficiency_mixed"] = eff["green"], eff["mixed"]
    out["efficiency_ratio"] = eff["mixed"] / eff["green"] if eff["green"] > 0 else float("nan")
    out["mixed_organisms"] = float(mixed_orgs)

    cells = c["cells"]
    total = np.maximum(cells.sum(axis=1), 1)
    multi = alive & (n_react >= 2)
    killer = alive & bits[..., n_r] & (cells > 0)
    killer_cells = (frame == n_r).sum(axis=(1, 2))
    if late.any():
        out["multi_share_late"] = float(((cells * multi).sum(axis=1) / total)[late].mean())
        out["killer_present_late"] = float((killer_cells[late] > 0).mean())
        out["killer_share_late"] = float((killer_cells / total)[late].mean())
    else:
        out["multi_share_late"] = out["killer_present_late"] = out["killer_share_late"] = float("nan")
    out["multi_type_span"] = _span(c["otype"], alive, multi)
    out["killer_type_span"] = _span(c["otype"], alive, killer)

    types = c["otype"].astype(np.int64)
    modes = measures.modes(types, alive, c["complexity"], cfg.persist)
    if len(modes["change"]):
        out["modes_change"] = float(modes["change"].sum())
        out["modes_novelty"] = float(modes["novelty"].sum())
        out["modes_complexity_final"] = float(modes["complexity"][-1])
        out["modes_complexity_max"] = float(modes["complexity"].max())
        out["modes_ecology_mean"] = float(modes["ecology"].mean())
    ea = measures.evolutionary_activity(types, alive, c["born"], seed)
    for k in ("real_significant", "shadow_significant", "ratio", "real_types", "shadow_types", "threshold"):
        out[f"activity_{k}"] = float(ea[k])
    out["cells"] = float(cells[-1].sum())
    out["organisms"] = float(alive[-1].sum())
    out["types"] = float(len(np.unique(types[-1][alive[-1]])))
    out["max_complexity"] = float(c["complexity"][alive].max()) if alive.any() else 0.0
    return out


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    out = measure(census_arrays(state), cfg, seed)
    out["conservation_residual"] = conservation_residual(state)
    # a measure with nothing to measure (no mixed organism yet, say) is left out rather than logged as NaN
    return {k: v for k, v in out.items() if np.isfinite(v)}


# --- artifacts -----------------------------------------------------------------------------------------------


def world_video(frames: np.ndarray, r: mc.Rules, scale: int, chem=None) -> np.ndarray:
    """Census frames (T, H, W) coloured per reaction with the legend on the right and, given the census's mean
    chemical amounts ``chem`` (T, 8), a gauge of them on the left (the post's appendix video)."""
    from athanor.viz.figures import bar_panel, categorical_frames, swatches

    video = categorical_frames(frames, mc.colours(r.n_reactions), scale)
    height = video.shape[1]
    legend = swatches(mc.legend(r), height=height, width=300, title="reaction (colour)")
    parts = [video, np.broadcast_to(legend, (len(video),) + legend.shape)]
    if chem is not None:
        vmax = float(np.max(chem)) if np.size(chem) else 1.0
        labels = [f"{i:02d}" for i in range(mc.N_CHEM)]
        gauges = np.stack([bar_panel(row, labels, vmax=vmax, height=height, width=160,
                                     title="mean amount per space") for row in chem])
        parts.insert(0, gauges)
    return np.concatenate(parts, axis=2)


def draw(c: dict[str, np.ndarray], cfg: Config, seed: int) -> dict[str, Any]:
    """Figures, tables and the video from census arrays."""
    from athanor.core.artifacts import Heatmap
    from athanor.viz.figures import curves, stacked_area

    r = rules(cfg)
    n_r = r.n_reactions
    tick, alive, cells = c["tick"], c["alive"], c["cells"]
    video = world_video(c["frame"], r, cfg.frame_scale, c["chem"])
    out: dict[str, Any] = {"world": video, "world_final": video[-1]}

    records = [{"tick": int(t), "label": f"{i:02d}", "amount": float(v)}
               for ti, t in enumerate(tick) for i, v in enumerate(c["chem"][ti])]
    out["chemicals"] = curves(records, ["amount"], "mean amount per space of each chemical", x="tick",
                              series="label", log_loss=False)

    per_reaction = np.stack([(c["frame"] == k).sum(axis=(1, 2)) for k in range(n_r + 1)], axis=1)
    labels = [name for name, _ in mc.legend(r)]
    out["reactions"] = stacked_area(tick, per_reaction, labels, colours=mc.colours(n_r)[:n_r + 1],
                                    title="cells per reaction", xlabel="tick", ylabel="cells")

    types = c["otype"].astype(np.int64)
    type_labels, counts = measures.type_counts(types, alive, cells, top=8)
    out["species"] = stacked_area(tick, counts, type_labels, title="cells per genome type (top 8)", xlabel="tick",
                                  ylabel="cells")

    modes = measures.modes(types, alive, c["complexity"], cfg.persist, ticks=tick)
    if len(modes["change"]):
        recs = [{"tick": int(t), **{k: float(modes[k][i]) for k in ("change", "novelty", "complexity", "ecology")}}
                for i, t in enumerate(modes["ticks"])]
        out["modes"] = curves(recs, ["change", "novelty", "complexity", "ecology"],
                              f"MODES over genome types persisting {cfg.persist} censuses", x="tick")

    ea = measures.evolutionary_activity(types, alive, c["born"], seed)
    recs = [{"tick": int(t), "label": lab, "types above the shadow's 95th-percentile activity": float(v)}
            for lab, key in (("world", "real_cumulative"), ("neutral shadow", "shadow_cumulative"))
            for t, v in zip(tick, ea[key], strict=True)]
    recs += [{"tick": int(t), "label": lab, "mean activity of the types present": float(v)}
             for lab, key in (("world", "mean_activity_real"), ("neutral shadow", "mean_activity_shadow"))
             for t, v in zip(tick, ea[key], strict=True)]
    out["activity"] = curves(recs, ["types above the shadow's 95th-percentile activity",
                                    "mean activity of the types present"], "Bedau-Packard evolutionary activity",
                             x="tick", series="label", log_loss=False)

    table = measures.lineage_table(types, alive, c["parent_type"].astype(np.int64), cells, tick, top=10)
    if table:
        cols = ["first tick", "last tick", "peak cells", "censuses"]
        rows = [f"{t['type']} <- {t['parent'] or 'founder'}" for t in table]
        values = np.array([[t["first_tick"], t["last_tick"], t["peak_cells"], t["censuses_present"]]
                           for t in table], np.float64)
        out["lineage"] = Heatmap(values, rows, cols, title="most abundant genome types (type <- parent type)",
                                 fmt=".0f")
    return out


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    return draw(census_arrays(state), cfg, seed)


def items_per_update(cfg: Config) -> float:
    return float(cfg.height * cfg.width)  # one update is one tick of every space
