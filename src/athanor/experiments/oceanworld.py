"""`oceanworld`: greedy search, novelty search and MAP-Elites over soft swimming creatures.

Source: "Quality Diversity: Evolving Ocean Creatures". Six runs of ``athanor.systems.oceanworld.qd``
with one preset per scale, so every run spends the same number of creature evaluations (``init_batch`` at
start, ``batch`` per generation, ``steps`` generations): random sampling, greedy hill climbing from two start
genomes (``start_seed`` 0 and 1: 5x5 blocks with different muscle/drag bits), novelty search (passive 32x32
archive), MAP-Elites seeded with random genomes, and MAP-Elites seeded by ``ns_generations`` of novelty search.

Claims (thresholds fixed here, before any run). Each check is a per-seed quantity judged by its 95% t interval
over seeds (``core/claims.py``: reproduced when the interval clears the threshold, inconclusive when it straddles
it; one seed is always inconclusive); differences are paired within a seed:
- greedy_local_optima: the two greedy runs end at different local optima. Measured per run: the final parent's
  grid cell and fitness, and ``stalled_fraction`` = generations since the parent last improved / generations.
  Checks: "different optimum" per seed, 1 if the parents lie in different cells of the 32x32 descriptor grid or
  their fitness differs by at least 10% of the larger |fitness|, else 0, must be >= 1 (so every seed must show it);
  and the smaller stalled_fraction of the two runs >= 0.2 (a run still climbing has not reached an optimum yet).
- novelty_spreads: novelty search's passive-archive coverage / random sampling's coverage >= 2 at equal
  evaluations.
- seeded_mapelites_better: coverage and QD-score of MAP-Elites seeded by novelty search minus those of MAP-Elites
  seeded randomly, both > 0, at equal evaluations.
- small_are_fastest: in the ns-mapelites archive, the share of the 10 fittest elites with node fraction < 0.5
  (under 50 nodes) >= 0.6, AND that share minus the share of all filled cells with node fraction < 0.5 > 0 (so it
  is not merely where the archive happens to be full).
A claim whose runs differ in evaluations is inconclusive.

Figures: archive heatmaps over time (the runs' stored snapshots), QD-score / coverage / max-fitness curves
against evaluations, the 3x3 grid of elite videos from the ns-mapelites archive (small / medium / large x
low / mid / high bond ratio, the cells nearest the post's targets), and the greedy runs' parent fitness curves
with videos of each start genome, its parent half-way and at the end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from athanor.core import config as C
from athanor.core.artifacts import Heatmap
from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, first_run, metric, paired, seeds_of

SUMMARY = "greedy search, novelty search and MAP-Elites (random vs novelty-seeded) on soft swimming creatures"
SOURCE = "Quality Diversity: Evolving Ocean Creatures"
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "archives_over_time"

RUNS = (
    ("ocean-random", "random", {}),
    ("ocean-greedy", "greedy-a", {"start_seed": 0}),
    ("ocean-greedy", "greedy-b", {"start_seed": 1}),
    ("ocean-novelty", "novelty", {}),
    ("ocean-mapelites", "mapelites", {}),
    ("ocean-ns-mapelites", "ns-mapelites", {}),
)
ARCHIVE_RUNS = ("random", "novelty", "mapelites", "ns-mapelites")
FITNESS_GAP = 0.10  # greedy: relative fitness difference that counts as a different optimum
STALL_MIN = 0.20  # greedy: share of the last generations without improvement that counts as stuck
SPREAD_RATIO = 2.0  # novelty coverage / random coverage
TOP_SMALL_MIN = 0.60  # share of the 10 fittest elites with node fraction < 0.5


def runs(scale: str) -> list[RunSpec]:
    return [RunSpec(system, label, overrides) for system, label, overrides in RUNS]


def _equal_evaluations(records, labels) -> bool:
    evals = [v for label in labels for v in metric(records, label, "evaluations")]
    return bool(evals) and all(math.isfinite(v) for v in evals) and len(set(evals)) == 1


def _greedy_optimum(f) -> float:
    """1 when the two greedy parents are different optima (other cell, or fitness gap >= FITNESS_GAP), else 0."""
    a, b = f["greedy-a"], f["greedy-b"]
    fa, fb = a["parent_fitness"], b["parent_fitness"]
    gap = abs(fa - fb) / max(abs(fa), abs(fb), 1e-12)
    return float(a["parent_cell"] != b["parent_cell"] or gap >= FITNESS_GAP)


def _greedy_context(f) -> dict:
    a, b = f.get("greedy-a", {}), f.get("greedy-b", {})
    return {"cell_a": a.get("parent_cell"), "cell_b": b.get("parent_cell"), "fitness_a": a.get("parent_fitness"),
            "fitness_b": b.get("parent_fitness"), "stalled_a": a.get("stalled_fraction"),
            "stalled_b": b.get("stalled_fraction")}


def _claims(records, scale):
    def check(name, fn, op, threshold):
        return Check(name, paired(records, fn), op, threshold)

    greedy = [check("different optimum (other cell or fitness gap >= 10%; 1 or 0)", _greedy_optimum, ">=", 1),
              check("min stalled_fraction(greedy-a, greedy-b)",
                    lambda f: min(f["greedy-a"]["stalled_fraction"], f["greedy-b"]["stalled_fraction"]), ">=",
                    STALL_MIN)]
    context = {seed: _greedy_context({r.spec.label: r.final for r in records if r.seed == seed})
               for seed in seeds_of(records)}
    out = [claim("greedy_local_optima",
                 "Greedy search from different start genomes ends at different local optima.",
                 greedy, scale,
                 measured={**{c.name: list(c.values) for c in greedy}, "per_seed": context})]
    fair = _equal_evaluations(records, ("random", "novelty"))
    out.append(claim("novelty_spreads",
                     "Novelty search spreads over descriptor space: its coverage is well above random sampling's "
                     "for equal evaluations.",
                     [check("passive_coverage(novelty) / coverage(random)",
                            lambda f: f["novelty"]["passive_coverage"] / f["random"]["coverage"], ">=", SPREAD_RATIO)],
                     scale, valid=fair, why_invalid="the runs spent different numbers of evaluations"))
    fair = _equal_evaluations(records, ("mapelites", "ns-mapelites"))
    out.append(claim("seeded_mapelites_better",
                     "MAP-Elites seeded from novelty search reaches higher coverage and QD-score than MAP-Elites "
                     "seeded randomly, for the same number of evaluations.",
                     [check("coverage(ns-mapelites) - coverage(mapelites)",
                            lambda f: f["ns-mapelites"]["coverage"] - f["mapelites"]["coverage"], ">", 0),
                      check("qd_score(ns-mapelites) - qd_score(mapelites)",
                            lambda f: f["ns-mapelites"]["qd_score"] - f["mapelites"]["qd_score"], ">", 0)],
                     scale, valid=fair, why_invalid="the runs spent different numbers of evaluations"))
    out.append(claim("small_are_fastest", "The fastest elites are among the small creatures.",
                     [check("top_small_fraction(ns-mapelites)", lambda f: f["ns-mapelites"]["top_small_fraction"],
                            ">=", TOP_SMALL_MIN),
                      check("top_small_fraction - filled_small_fraction (ns-mapelites)",
                            lambda f: f["ns-mapelites"]["top_small_fraction"]
                            - f["ns-mapelites"]["filled_small_fraction"], ">", 0)], scale))
    return out


# -------------------------------------------------------------------------------------------------- figures


def load_state(run_dir: Path) -> tuple[Any, Any] | None:
    """(cfg, state) from a run's newest valid checkpoint, or None if the run left none."""
    import jax

    from athanor.core.errors import AthanorError
    from athanor.core.runs import load_run, read_meta
    from athanor.systems import get_system

    try:
        meta = read_meta(run_dir)
        system = get_system(meta["system"]).bind()
        cfg = C.from_dict(system.Config, meta["config"])
        template = jax.eval_shape(lambda: system.init(cfg, 0, None))  # the state's shapes, without init's work
        return load_run(run_dir, system, template=template)
    except AthanorError:
        return None


def _train_curves(records, labels, x_key: str, keys: tuple[str, ...]) -> list[dict]:
    """Train records of the first seed of each label, as {x_key, "label", *keys} rows for ``viz.curves``."""
    from athanor.core.runs import read_metrics

    rows = []
    for label in labels:
        rec = first_run(records, label)
        for r in read_metrics(rec.run_dir) if rec is not None else []:
            if r.get("kind") == "train" and x_key in r:
                rows.append({x_key: r[x_key], "label": label, **{k: r[k] for k in keys if k in r}})
    return rows


def _artifacts(records) -> tuple[dict[str, Any], list[str]]:
    from athanor.systems.oceanworld import qd
    from athanor.viz.figures import curves
    from athanor.viz.video import tile_videos

    arts: dict[str, Any] = {}
    notes: list[str] = []
    keys = ("qd_score", "coverage", "max_fitness")
    arts["qd_curves"] = curves(_train_curves(records, [label for _, label, _ in RUNS], "evaluations", keys), keys,
                               x="evaluations", series="label")
    arts["greedy_fitness"] = curves(_train_curves(records, ("greedy-a", "greedy-b"), "step", ("parent_fitness",)),
                                    ["parent_fitness"], series="label", xlabel="generation")

    states = {}
    for _, label, _ in RUNS:
        rec = first_run(records, label)
        loaded = load_state(rec.run_dir) if rec is not None else None
        if loaded is not None:
            states[label] = loaded
    grids, titles, times = [], [], None
    for label in ARCHIVE_RUNS:
        if label in states:
            cfg, state = states[label]
            times = qd._snapshot_times(cfg)
            for t, h in zip(times, np.asarray(state.history), strict=True):
                grids.append(qd.grid_of(h))
                titles.append(f"{label}, gen {int(t)}")
    if grids:
        arts["archives_over_time"] = qd.archive_panels(grids, titles, ncols=len(times))
    if "ns-mapelites" in states:
        cfg, state = states["ns-mapelites"]
        arts.update(_elite_grid(cfg, state, notes))
    rows = []
    for label in ("greedy-a", "greedy-b"):
        if label in states:
            rows.append(_greedy_row(*states[label]))
    if rows:
        arts["greedy_runs"] = tile_videos([v for row in rows for v in row], ncols=3)
        notes.append("greedy_runs video: one row per start genome (greedy-a, greedy-b): the start genome, the "
                     "parent half-way through the run, and the final parent")
    return arts, notes


def _elite_grid(cfg, state, notes) -> dict[str, Any]:
    from athanor.systems.oceanworld import qd
    from athanor.viz.video import tile_videos

    fitness = np.asarray(state.archive.fitness)
    picks = qd.pick_elites(fitness)
    if any(i is None for _, i in picks):
        return {}
    values = np.array([fitness[i] for _, i in picks]).reshape(3, 3)
    desc = np.asarray(state.archive.descriptors)
    for name, i in picks:
        notes.append(f"elite {name}: node fraction {desc[i, 0]:.2f}, bond ratio {desc[i, 1]:.2f}, "
                     f"fitness {fitness[i]:.2f}")
    videos = [qd.render_creature(qd.genome_at(state.archive.genomes, i), cfg) for _, i in picks]
    table = Heatmap(values, rows=[f"{n} ({v:.0%} nodes)" for n, v in qd.ELITE_NODES],
                    cols=[f"{n} ({v:.0%} bonds)" for n, v in qd.ELITE_BONDS],
                    title="ns-mapelites elites nearest each target: fitness", fmt=".1f")
    return {"elite_grid": tile_videos(videos, ncols=3), "elite_grid_fitness": table}


def _greedy_row(cfg, state) -> list[np.ndarray]:
    import jax

    from athanor.envs import oceanworld as world
    from athanor.systems.oceanworld import qd

    start = world.start_genome(jax.random.PRNGKey(cfg.start_seed))
    half = cfg.snapshots // 2
    genomes = [start, qd.genome_at(state.parent_history, half), state.parent]
    return [qd.render_creature(g, cfg) for g in genomes]


def analyse(records, scale: str) -> Analysis:
    notes = []
    if scale == "tiny":
        notes.append("tiny scale: every verdict is inconclusive by construction")
    elif scale == "quick":
        notes.append("quick scale spends far fewer evaluations than full; verdicts count only at 'full'")
    arts, more = _artifacts(records)
    return Analysis(claims=_claims(records, scale), artifacts=arts, notes=notes + more)
