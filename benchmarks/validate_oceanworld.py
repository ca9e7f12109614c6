"""Validate Oceanworld's physics against a Box2D model of the original release: do both rank creatures alike?

    python benchmarks/validate_oceanworld.py [--run RUN_DIR] [--quick]
                                             [--out benchmarks/results/oceanworld-validation[-quick].json]

Needs Box2D: pip install -e '.[validate]'. The fitness (dx - |dy| of node (6, 6) after 500 steps) of the same
genomes is measured in our engine (``envs.oceanworld.evaluate_batch`` with the current ``WorldConfig()`` defaults)
and in the Box2D model of the original (``envs.oceanworld_box2d``, one genome per call, a pool of worker
processes), for three groups:

  elites    the filled cells of a finished ocean-mapelites run's archive (``--run``); without ``--run`` a
            ``quick`` run of seed 0 is made once (~10,500 creature evaluations and its report: ~4 minutes
            measured on 2 shared CPU cores) and cached under ~/.cache/athanor (or $XDG_CACHE_HOME/athanor),
            keyed by a hash of the physics and search sources, so a change to either makes a fresh run;
  starts    random start genomes (5x5 blocks, random muscle and drag bits);
  mutated   start genomes after one ``mutate`` (every bit resampled with p = 0.05).

Reported per group and pooled over the three: the Spearman rank correlation of the two fitnesses; for the 30
elites fittest in our engine ("top 30"): their Spearman, the number of exploits (top-30 elites whose Box2D fitness
is at or below the Box2D median of the start genomes: creatures that swim in our physics only) and the median
|dy| in both engines; and the medians of every group in both engines (do elites beat starts in Box2D too?).
Beside each Spearman: Box2D against itself with every creature shifted by (0.001, 0.001), which changes float32
rounding and nothing else: a first ceiling on agreement (a loose one: a finer time step unsettles Box2D's ranking
far more, see the yardsticks below).
Our engine's own convergence, on the same genomes: the Spearman correlation of its fitness at the default setting
with its fitness at twice the sub-steps and at twice the constraint iterations (per group, pooled and top 30).
Two yardsticks for those figures, on the same genomes and in the same table form: the original engine's own
convergence (Box2D at half the time step, with twice the steps and the heartbeat period in steps doubled, and at
twice the velocity and position iterations), and the conditioning of fitness itself (our engine with the muscle
gain, the drag or the time step raised by 1%: how far a creature's rank moves when the world itself changes by
1%). Both were added after the targets were missed, to show why; they change none. Added later still, for the
same reason: the original engine's conditioning (Box2D with the open muscle's extension, the drag or the time step
raised by 1%), and how two runs of one creature drift apart in our engine (node (6, 6) after every step at the
default, at twice the sub-steps and with the muscle gain raised by 1%): the median distance between the runs at
every heart cycle, the factor by which it grows per cycle from step 120 to step 420 (1.29 if it grows in proportion
to time, 2 if it doubles every cycle: chaos), and our convergence over the elites at or below their median growth
and above it. The drift is drawn in docs/results/oceanworld-sensitivity.png (``--figure``).
Targets, fixed before any measurement and printed beside the figures: pooled Spearman >= 0.8, top-30 Spearman
>= 0.6, at most 3 exploits among the top 30; convergence >= 0.9 over elites and over start genomes. The figures are
reported as measured; nothing is tuned to meet them.

``--quick`` takes the top 30 elites plus 30 spread evenly over the rest of the archive (by our fitness), and 60
genomes per other group (5 minutes measured on 2 cores once the run exists); the default takes every elite and 200
genomes per other group (9 minutes for 204 elites, measured on 2 idle cores). Invalid genomes (no node (6, 6),
possible after a mutation) are left out of every statistic. The JSON holds the git sha, versions, both engines'
configs, every figure and every genome's fitness.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from athanor import api
from athanor.core.artifact_io import write_png
from athanor.core.rundir import git_dirty, git_sha, now_iso, package_versions, read_json, write_json
from athanor.core.runs import read_meta
from athanor.envs import oceanworld as W
from athanor.envs import oceanworld_box2d as B

TOP = 30  # elites checked one by one
TARGETS = {"pooled_spearman_min": 0.8, "top_spearman_min": 0.6, "exploits_max": 3, "convergence_min": 0.9}
OFFSET = (1e-3, 1e-3)  # Box2D's own reproducibility: the same creatures shifted, which changes float32 rounding only
SYSTEM = "ocean-mapelites"
PERTURB = 0.01  # relative change of one physical constant in the conditioning check
GROWTH_WINDOW = (120, 420)  # steps over which a separation's growth is measured: 1.5 heart cycles in, 5 cycles long
SEPARATION_STEPS = (60, 120, 180, 240, 300, 360, 420, 480, 500)  # steps at which median separations are reported


def cache_dir() -> Path:
    """Where the default ocean-mapelites run lives, keyed by the sources that decide its elites."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "athanor" / "oceanworld-validation"
    from athanor.systems.oceanworld import qd

    digest = hashlib.sha256()
    for module in (W, qd):
        digest.update(Path(module.__file__).read_bytes())
    return root / f"{SYSTEM}-quick-s0-{digest.hexdigest()[:12]}"


def default_run() -> Path:
    """A completed quick ocean-mapelites run of seed 0: the cached one, or a new one."""
    out = cache_dir()
    for summary in sorted(out.glob(f"{SYSTEM}/*/summary.json")):
        if read_json(summary).get("status") == "completed":
            print(f"reusing the cached {SYSTEM} run {summary.parent.name}", flush=True)
            return summary.parent
    print(f"no cached {SYSTEM} run for these sources: running the quick preset once (a few minutes)", flush=True)
    result = api.start_run(SYSTEM, preset="quick", seed=0, out=out, progress=True)
    if result.status != "completed":
        raise SystemExit(f"the {SYSTEM} run stopped ({result.status}); run the script again to make a new one")
    return result.run_dir


def take(genomes: W.Genome, idx) -> W.Genome:
    return jax.tree.map(lambda a: np.asarray(a)[np.asarray(idx)], genomes)


def concat(*genomes: W.Genome) -> W.Genome:
    return jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *genomes)


def genome_groups(run_dir: Path, cfg: W.WorldConfig, quick: bool, seed: int) -> tuple[dict, dict]:
    """{group: genomes}, and facts about the run (system, preset, seed, archive size, stored vs re-evaluated)."""
    meta = read_meta(run_dir)
    run_cfg, state = api.load_run(run_dir)
    archive = state.archive
    stored = np.asarray(archive.fitness)
    filled = np.nonzero(np.isfinite(stored))[0]
    if filled.size < TOP:
        raise SystemExit(f"the run's archive holds {filled.size} elites, fewer than the {TOP} needed")
    elites = take(archive.genomes, filled)
    ours = np.asarray(W.evaluate_batch(elites, cfg)["fitness"])
    order = np.argsort(-ours, kind="stable")  # fittest first, in our engine now
    if quick:
        rest = order[TOP:]
        order = np.concatenate([order[:TOP], rest[np.linspace(0, rest.size - 1, min(TOP, rest.size)).astype(int)]])
    n = 60 if quick else 200
    k_start, k_parent, k_mutate = jax.random.split(jax.random.PRNGKey(seed), 3)
    starts = jax.vmap(W.start_genome)(jax.random.split(k_start, n))
    parents = jax.vmap(W.start_genome)(jax.random.split(k_parent, n))
    mutated = jax.vmap(W.mutate)(jax.random.split(k_mutate, n), parents)
    run = {"system": meta.get("system"), "preset": meta.get("preset"), "seed": meta.get("seed"),
           "dir_name": Path(run_dir).name, "git_sha": meta.get("git_sha"), "created": meta.get("created"),
           "sim_steps": getattr(run_cfg, "sim_steps", None), "archive_elites": int(filled.size),
           "stored_vs_now_max_abs_diff": float(np.max(np.abs(stored[filled] - ours)))}
    return {"elites": take(elites, order), "starts": starts, "mutated": mutated}, run


def creatures_of(genomes: W.Genome) -> list[B.Creature]:
    """Every genome's phenotype as plain arrays, for the Box2D workers."""
    alive, bond_on, valid = (np.asarray(a) for a in jax.jit(jax.vmap(W.phenotype))(genomes))
    bits = np.asarray(genomes.bonds, bool)
    return [B.Creature(alive[i], bond_on[i], bits[i], bool(valid[i])) for i in range(len(valid))]


def box2d_fitness(creatures: list[B.Creature], cfg: B.Box2DConfig,
                  processes: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(fitness [n], displacement [n, 2], wall seconds) of every creature in Box2D, largest creatures first."""
    order = np.argsort([-cr.alive.sum() for cr in creatures], kind="stable")  # big ones first balance the workers
    fitness, disp = np.zeros(len(creatures)), np.zeros((len(creatures), 2))
    t = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        work = pool.imap(functools.partial(B.rollout, cfg=cfg), [creatures[i] for i in order])
        for i, res in zip(order, tqdm(work, total=len(order), unit="creature", desc="Box2D"), strict=True):
            fitness[i], disp[i] = res.fitness, res.displacement
    return fitness, disp, time.perf_counter() - t


def centre_paths(genomes: W.Genome, cfg: W.WorldConfig, chunk: int = 16) -> np.ndarray:
    """Displacement of node (6, 6) from its start after every step in our engine, [n, steps + 1, 2]."""
    path = jax.jit(jax.vmap(lambda g: W.simulate(g, cfg, record_every=1)[1][:, W.CENTRE[0], W.CENTRE[1]]))
    n = len(np.asarray(genomes.nodes))
    out = np.concatenate([np.asarray(path(take(genomes, np.arange(i, min(n, i + chunk))))) for i in range(0, n, chunk)])
    return out - out[:, :1]


def growth_per_cycle(separation: np.ndarray, cycle: int, window: tuple[int, int] = GROWTH_WINDOW) -> np.ndarray:
    """Per creature ([n, T] distances between two runs' node (6, 6)), the factor by which the distance grows per
    heart cycle (``cycle`` steps) between the window's two steps: (s(t1) / s(t0)) ** (cycle / (t1 - t0)).
    A distance that grows in proportion to time gives (t1 / t0) ** (cycle / (t1 - t0)) (1.29 for 120 -> 420 in
    cycles of 60), one that doubles every cycle 2; NaN where the distance is still 0 at t0 (a creature the change
    does not touch, such as one without muscles under a change of muscle gain)."""
    t0, t1 = window
    s0, s1 = separation[:, t0], separation[:, t1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s0 > 0, (s1 / s0) ** (cycle / (t1 - t0)), np.nan)


def sensitivity(groups: list, separation: dict, growth: dict, ours: dict, finer: dict) -> dict:
    """How the two runs of each group drift apart (``separation`` {setting: {group: [n, T]}}, ``growth``
    {group: per-creature growth per cycle}), and our convergence (``ours`` against ``finer``, {group: fitness}) over
    the elites whose growth is at most their median ("calmer half") and above it."""
    pct = lambda x: [float(v) for v in np.nanpercentile(x, [10, 50, 90])]  # noqa: E731
    out = {"window": list(GROWTH_WINDOW), "steps": list(SEPARATION_STEPS),
           "growth_p10_median_p90": {g: pct(growth[g]) for g in groups},
           "untouched": {g: int(np.isnan(growth[g]).sum()) for g in groups},
           "median_separation": {k: {g: [float(np.median(sep[g][:, t])) for t in SEPARATION_STEPS] for g in groups}
                                 for k, sep in separation.items()}}
    e = growth["elites"]
    cut = float(np.nanmedian(e))
    calm, wild = e <= cut, e > cut
    change = np.abs(finer["elites"] - ours["elites"])
    out["elites_by_growth"] = {"median_growth": cut, "calmer_n": int(calm.sum()), "wilder_n": int(wild.sum()),
                               "calmer_convergence": rho(ours["elites"][calm], finer["elites"][calm]),
                               "wilder_convergence": rho(ours["elites"][wild], finer["elites"][wild]),
                               "calmer_median_abs_change": float(np.median(change[calm])),
                               "wilder_median_abs_change": float(np.median(change[wild])),
                               "growth_vs_abs_change_spearman": rho(e[np.isfinite(e)], change[np.isfinite(e)]),
                               "top_median_growth": float(np.nanmedian(e[:TOP])),
                               "rest_median_growth": float(np.nanmedian(e[TOP:])),
                               "top_fitness_p10_p90": [float(v) for v in np.percentile(ours["elites"][:TOP], [10, 90])],
                               "top_median_abs_change": float(np.median(change[:TOP]))}
    return out


def _label(setting: str) -> str:
    """A setting's key as words: 'muscle_gain_plus_1%' -> 'muscle gain +1%', 'substeps_x2' -> 'substeps x2'."""
    return setting.replace("_plus_", " +").replace("_", " ")


def sensitivity_figure(res: dict, cycle: int) -> np.ndarray:
    """Median separation of node (6, 6) between two runs against step, log scale, per group and change."""
    from matplotlib.figure import Figure

    from athanor.viz.figures import render

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot()
    steps = res["steps"]
    styles = {"elites": ("C3", "o"), "starts": ("C0", "s"), "mutated": ("C2", "^")}
    for (setting, rows), line in zip(res["median_separation"].items(), ("-", "--"), strict=False):
        for group, values in rows.items():
            colour, marker = styles[group]
            ax.plot(steps, values, line, color=colour, marker=marker, ms=3, label=f"{group}, {_label(setting)}")
    t = np.asarray(steps, float)
    ref = res["median_separation"][next(iter(res["median_separation"]))]["elites"][1]
    ax.plot(t, ref * 2.0 ** ((t - steps[1]) / cycle), ":", color="grey", label="doubling every heart cycle")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("median distance of node (6, 6) between runs")
    ax.set_title("Oceanworld: how far two runs of a creature drift apart", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return render(fig)


def rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def summary(ours: np.ndarray, box: np.ndarray, shifted: np.ndarray) -> dict:
    pct = lambda x: [float(v) for v in np.percentile(x, [10, 50, 90])]  # noqa: E731
    return {"n": int(len(ours)), "spearman": rho(ours, box), "box2d_self_spearman": rho(box, shifted),
            "ours_p10_median_p90": pct(ours), "box2d_p10_median_p90": pct(box)}


def convergence(groups: list, ours: dict, finer: dict) -> dict:
    """Spearman of a fitness ({group: fitness}) against the same engine's fitness at each other setting
    ({setting: {group: fitness}}): per group, pooled and over the top 30 elites (by our fitness at the default)."""
    out = {}
    for setting, fine in finer.items():
        row = {g: rho(ours[g], fine[g]) for g in groups}
        row["pooled"] = rho(np.concatenate([ours[g] for g in groups]), np.concatenate([fine[g] for g in groups]))
        row["top"] = rho(ours["elites"][:TOP], fine["elites"][:TOP])
        row["top_median"] = float(np.median(fine["elites"][:TOP]))
        out[setting] = row
    return out


def analyse(groups: list, ours: dict, box: dict, shifted: dict, disp: dict, ours_dy: np.ndarray,
            finer: dict, box_finer: dict, perturbed: dict, box_perturbed: dict) -> dict:
    """Every figure of the report from the per-group arrays (invalid genomes already removed); ``shifted`` is the
    Box2D fitness of the same creatures moved by OFFSET (rounding alone); ``finer`` our fitness at finer solver
    settings, ``box_finer`` Box2D's at finer settings, ``perturbed`` and ``box_perturbed`` each engine's with one
    physical constant changed by PERTURB (each {setting: {group: fitness}})."""
    out = {"groups": {g: summary(ours[g], box[g], shifted[g]) for g in groups}}
    out["pooled"] = summary(*(np.concatenate([a[g] for g in groups]) for a in (ours, box, shifted)))
    start_median = float(np.median(box["starts"]))
    top_ours, top_box = ours["elites"][:TOP], box["elites"][:TOP]
    exploits = top_box <= start_median
    out["top"] = {
        "k": TOP, "spearman": rho(top_ours, top_box), "box2d_self_spearman": rho(top_box, shifted["elites"][:TOP]),
        "exploits": int(exploits.sum()),
        "exploit_ranks": [int(i) for i in np.nonzero(exploits)[0]],
        "box2d_start_median": start_median,
        "ours_median": float(np.median(top_ours)), "box2d_median": float(np.median(top_box)),
        "ours_median_abs_dy": float(np.median(np.abs(ours_dy))),
        "box2d_median_abs_dy": float(np.median(np.abs(disp["elites"][:TOP, 1]))),
        "box2d_share_of_starts_below": float(np.median([(box["starts"] < v).mean() for v in top_box])),
    }
    med = {g: (float(np.median(ours[g])), float(np.median(box[g]))) for g in groups}
    out["medians"] = {"ours": {g: m[0] for g, m in med.items()}, "box2d": {g: m[1] for g, m in med.items()},
                      "elites_minus_starts_ours": med["elites"][0] - med["starts"][0],
                      "elites_minus_starts_box2d": med["elites"][1] - med["starts"][1]}
    out["convergence"] = convergence(groups, ours, finer)
    out["box2d_convergence"] = convergence(groups, box, box_finer)
    out["conditioning"] = convergence(groups, ours, perturbed)
    out["box2d_conditioning"] = convergence(groups, box, box_perturbed)
    worst = min(row[g] for row in out["convergence"].values() for g in ("elites", "starts"))
    out["targets"] = {**TARGETS, "pooled_spearman_met": out["pooled"]["spearman"] >= TARGETS["pooled_spearman_min"],
                      "top_spearman_met": out["top"]["spearman"] >= TARGETS["top_spearman_min"],
                      "exploits_met": out["top"]["exploits"] <= TARGETS["exploits_max"],
                      "convergence_met": worst >= TARGETS["convergence_min"]}
    return out


def report(res: dict) -> None:
    t = res["targets"]
    ok = lambda m: "met" if m else "NOT met"  # noqa: E731
    print(f"{'group':>8} {'n':>5} {'spearman':>9} {'box2d self':>11} {'ours p10/med/p90':>24} "
          f"{'box2d p10/med/p90':>24}")
    for name, s in {**res["groups"], "pooled": res["pooled"]}.items():
        fmt = lambda v: "/".join(f"{x:.1f}" for x in v)  # noqa: E731
        print(f"{name:>8} {s['n']:>5} {s['spearman']:>9.3f} {s['box2d_self_spearman']:>11.3f} "
              f"{fmt(s['ours_p10_median_p90']):>24} {fmt(s['box2d_p10_median_p90']):>24}")
    top = res["top"]
    print(f"pooled Spearman {res['pooled']['spearman']:.3f} (target >= {t['pooled_spearman_min']}: "
          f"{ok(t['pooled_spearman_met'])})")
    print(f"top-{top['k']} Spearman {top['spearman']:.3f} (target >= {t['top_spearman_min']}: "
          f"{ok(t['top_spearman_met'])}; Box2D against itself shifted: {top['box2d_self_spearman']:.3f})")
    print(f"top-{top['k']} exploits (Box2D fitness <= Box2D start median {top['box2d_start_median']:.1f}): "
          f"{top['exploits']} (target <= {t['exploits_max']}: {ok(t['exploits_met'])}); ranks {top['exploit_ranks']}")
    print(f"top-{top['k']} median |dy|: ours {top['ours_median_abs_dy']:.1f}, "
          f"Box2D {top['box2d_median_abs_dy']:.1f}; median share of Box2D start genomes each beats: "
          f"{top['box2d_share_of_starts_below']:.2f}")
    m = res["medians"]
    print(f"elites - starts median: ours {m['elites_minus_starts_ours']:.1f}, "
          f"Box2D {m['elites_minus_starts_box2d']:.1f}")
    print(f"our convergence, Spearman against a finer setting (target >= {t['convergence_min']} over elites and "
          f"starts: {ok(t['convergence_met'])}):")
    for setting, row in res["convergence"].items():
        cells = ", ".join(f"{g} {v:.3f}" for g, v in row.items() if g != "top_median")
        print(f"  {setting}: {cells}; top-{top['k']} median {top['ours_median']:.1f} -> {row['top_median']:.1f}")
    for title, key in (("the original engine's convergence, Box2D against itself at a finer setting",
                        "box2d_convergence"),
                       (f"conditioning, ours against ours with one constant changed by {PERTURB:.0%}", "conditioning"),
                       (f"conditioning of the original, Box2D against Box2D with one constant changed by {PERTURB:.0%}",
                        "box2d_conditioning")):
        print(f"{title}:")
        for setting, row in res[key].items():
            print(f"  {setting}: " + ", ".join(f"{g} {v:.3f}" for g, v in row.items() if g != "top_median"))
    sens = res["sensitivity"]
    t0, t1 = sens["window"]
    print(f"drift between two runs of a creature in our engine, growth of node (6, 6)'s distance per heart cycle, "
          f"steps {t0} -> {t1} (p10 / median / p90; 1.29 if it grows in proportion to time, 2 if it doubles):")
    for g, v in sens["growth_p10_median_p90"].items():
        print(f"  {g}: " + " / ".join(f"{x:.2f}" for x in v) + f" ({sens['untouched'][g]} untouched left out)")
    eb = sens["elites_by_growth"]
    print(f"  elites at or below their median growth {eb['median_growth']:.2f} (n {eb['calmer_n']}): convergence "
          f"{eb['calmer_convergence']:.3f}, median |change| at twice the sub-steps "
          f"{eb['calmer_median_abs_change']:.1f}; "
          f"above it (n {eb['wilder_n']}): {eb['wilder_convergence']:.3f}, {eb['wilder_median_abs_change']:.1f}; "
          f"Spearman of growth and |change| {eb['growth_vs_abs_change_spearman']:.3f}")
    lo, hi = eb["top_fitness_p10_p90"]
    print(f"  top {top['k']}: median growth {eb['top_median_growth']:.2f} (the rest {eb['rest_median_growth']:.2f}); "
          f"fitness p10-p90 {lo:.1f}-{hi:.1f} against a median |change| of {eb['top_median_abs_change']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Without --run, a quick ocean-mapelites run (seed 0) is made once and cached "
                                        "under ~/.cache/athanor: ~4 minutes on 2 CPU cores.")
    ap.add_argument("--run", type=Path, help="a finished ocean-mapelites run directory (its archive gives the elites)")
    ap.add_argument("--quick", action="store_true", help="60 elites and 60 genomes per other group (~2 minutes)")
    ap.add_argument("--out", type=Path, help="the JSON (default benchmarks/results/oceanworld-validation.json, "
                                             "with --quick oceanworld-validation-quick.json)")
    ap.add_argument("--figure", type=Path, help="the drift figure (default docs/results/oceanworld-sensitivity.png, "
                                                "with --quick oceanworld-sensitivity-quick.png)")
    ap.add_argument("--processes", type=int, default=2, help="Box2D worker processes (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the start and mutated genomes")
    args = ap.parse_args()
    B.require_box2d()
    t0 = time.perf_counter()
    load = {"before": round(os.getloadavg()[0], 2)}
    run_dir = args.run if args.run is not None else default_run()
    world_cfg, box_cfg = W.WorldConfig(), B.Box2DConfig()
    groups, run = genome_groups(run_dir, world_cfg, args.quick, args.seed)

    names = list(groups)
    sizes = [len(np.asarray(groups[g].nodes)) for g in names]
    cut = np.cumsum(sizes)[:-1]
    everything = concat(*(groups[g] for g in names))
    t = time.perf_counter()
    ours_all = np.asarray(W.evaluate_batch(everything, world_cfg)["fitness"])
    ours_s = time.perf_counter() - t
    finer_cfgs = {"substeps_x2": dataclasses.replace(world_cfg, substeps=2 * world_cfg.substeps),
                  "iterations_x2": dataclasses.replace(world_cfg, iterations=2 * world_cfg.iterations)}
    finer_all = {k: np.asarray(W.evaluate_batch(everything, c)["fitness"]) for k, c in finer_cfgs.items()}
    perturbed_cfgs = {f"{name}_plus_{PERTURB:.0%}": dataclasses.replace(world_cfg, **{name: (1 + PERTURB) * value})
                      for name, value in (("muscle_gain", world_cfg.muscle_gain), ("drag", world_cfg.drag),
                                          ("dt", world_cfg.dt))}
    perturbed_all = {k: np.asarray(W.evaluate_batch(everything, c)["fitness"]) for k, c in perturbed_cfgs.items()}
    top_diag = W.diagnostics(take(groups["elites"], np.arange(TOP)), world_cfg)
    ours_dy = np.asarray(top_diag["centre"])[:, 1]
    diag_diff = float(np.max(np.abs(np.asarray(top_diag["fitness"]) - ours_all[:TOP])))
    creatures = creatures_of(everything)
    box_all, disp_all, box_s = box2d_fitness(creatures, box_cfg, args.processes)
    shifted_all, _, shifted_s = box2d_fitness(creatures, dataclasses.replace(box_cfg, offset=OFFSET), args.processes)
    box_finer_cfgs = {"dt_half": dataclasses.replace(box_cfg, dt=box_cfg.dt / 2, steps=2 * box_cfg.steps,
                                                     beat_period=2 * box_cfg.beat_period),
                      "iterations_x2": dataclasses.replace(box_cfg, velocity_iterations=2 * box_cfg.velocity_iterations,
                                                           position_iterations=2 * box_cfg.position_iterations)}
    box_finer_all = {k: box2d_fitness(creatures, c, args.processes)[0] for k, c in box_finer_cfgs.items()}
    box_perturbed_cfgs = {f"{name}_plus_{PERTURB:.0%}": dataclasses.replace(box_cfg, **{name: (1 + PERTURB) * value})
                          for name, value in (("muscle_open", box_cfg.muscle_open), ("drag", box_cfg.drag),
                                              ("dt", box_cfg.dt))}
    box_perturbed_all = {k: box2d_fitness(creatures, c, args.processes)[0] for k, c in box_perturbed_cfgs.items()}
    # how two runs of each creature drift apart in our engine: node (6, 6) after every step, three settings
    path_keys = (f"muscle_gain_plus_{PERTURB:.0%}", "substeps_x2")
    path_cfgs = {"default": world_cfg, path_keys[0]: perturbed_cfgs[path_keys[0]],
                 path_keys[1]: finer_cfgs[path_keys[1]]}
    t = time.perf_counter()
    paths = {k: centre_paths(everything, c) for k, c in tqdm(path_cfgs.items(), desc="paths", unit="setting")}
    paths_s = time.perf_counter() - t
    separation_all = {k: np.linalg.norm(paths[k] - paths["default"], axis=-1) for k in path_keys}
    cycle = 2 * world_cfg.beat_period
    growth_all = growth_per_cycle(separation_all[path_keys[0]], cycle)

    valid_all = ours_all != W.INVALID_FITNESS
    ours, box, shifted, disp, valid = ({g: a for g, a in zip(names, np.split(x, cut), strict=True)}
                                       for x in (ours_all, box_all, shifted_all, disp_all, valid_all))
    split = lambda d: {k: dict(zip(names, np.split(x, cut), strict=True)) for k, x in d.items()}  # noqa: E731
    finer_split, box_finer_split, perturbed_split, box_perturbed_split, separation_split = (
        split(x) for x in (finer_all, box_finer_all, perturbed_all, box_perturbed_all, separation_all))
    growth = dict(zip(names, np.split(growth_all, cut), strict=True))
    keep = lambda d: {k: {g: x[g][valid[g]] for g in names} for k, x in d.items()}  # noqa: E731
    kept = [{g: a[g][valid[g]] for g in names} for a in (ours, box, shifted, disp)]
    res = analyse(names, *kept, ours_dy, keep(finer_split), keep(box_finer_split), keep(perturbed_split),
                  keep(box_perturbed_split))
    res["sensitivity"] = sensitivity(names, keep(separation_split), {g: growth[g][valid[g]] for g in names},
                                     kept[0], keep(finer_split)["substeps_x2"])
    load["after"] = round(os.getloadavg()[0], 2)
    report(res)

    nodes = np.array([int(cr.alive.sum()) for cr in creatures])
    per_genome = {g: {"ours": ours[g].tolist(), **{f"ours_{k}": fine[g].tolist() for k, fine in finer_split.items()},
                      **{f"ours_{k}": x[g].tolist() for k, x in perturbed_split.items()},
                      "box2d": box[g].tolist(), "box2d_shifted": shifted[g].tolist(),
                      **{f"box2d_{k}": x[g].tolist() for k, x in box_finer_split.items()},
                      **{f"box2d_{k}": x[g].tolist() for k, x in box_perturbed_split.items()},
                      "growth_per_cycle": [None if np.isnan(v) else float(v) for v in growth[g]],
                      "box2d_dx": disp[g][:, 0].tolist(),
                      "box2d_dy": disp[g][:, 1].tolist(), "nodes": n.tolist(), "valid": valid[g].tolist()}
                  for g, n in zip(names, np.split(nodes, cut), strict=True)}
    result = {"system": "oceanworld-validation", "created": now_iso(), "git_sha": git_sha(), "git_dirty": git_dirty(),
              "versions": package_versions(("athanor", "jax", "jaxlib", "numpy", "scipy", "box2d")),
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": len(os.sched_getaffinity(0)), "load_avg": load},
              "config": {"quick": args.quick, "seed": args.seed, "processes": args.processes, "top": TOP,
                         "sizes": dict(zip(names, sizes, strict=True)),
                         "invalid_left_out": {g: int((~valid[g]).sum()) for g in names}, "box2d_self_offset": OFFSET,
                         "world": dataclasses.asdict(world_cfg), "box2d": dataclasses.asdict(box_cfg),
                         "box2d_finer": {k: dataclasses.asdict(c) for k, c in box_finer_cfgs.items()},
                         "perturbed": {k: dataclasses.asdict(c) for k, c in perturbed_cfgs.items()},
                         "box2d_perturbed": {k: dataclasses.asdict(c) for k, c in box_perturbed_cfgs.items()}},
              "run": run, **res,
              "checks": {"top_diagnostics_vs_evaluate_batch_max_abs_diff": diag_diff},
              "timing": {"ours_evaluate_batch_s": ours_s, "box2d_s": box_s, "box2d_shifted_s": shifted_s,
                         "paths_s": paths_s,
                         "box2d_s_per_creature_per_process": box_s * args.processes / len(box_all),
                         "total_s": time.perf_counter() - t0},
              "genomes": per_genome}
    out = args.out or Path(f"benchmarks/results/oceanworld-validation{'-quick' if args.quick else ''}.json")
    write_json(out, result)
    figure = args.figure or Path(f"docs/results/oceanworld-sensitivity{'-quick' if args.quick else ''}.png")
    write_png(figure, sensitivity_figure(res["sensitivity"], cycle))
    print(f"{out}, {figure} ({result['timing']['total_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
