"""Benchmark the Oceanworld physics: creature evaluations per second and the sub-step / accuracy trade-off.

    python benchmarks/bench_oceanworld.py [--quick] [--out benchmarks/results/oceanworld.json]

Three measurements, all of 500-step rollouts through ``envs.oceanworld.evaluate_batch`` (the hot path, default tiers):

1. Throughput. Evaluations per second of wall time and per CPU-second (process time over all threads, i.e.
   evaluations per second per busy core) for 5x5 start creatures and for large creatures (random genomes at
   density 0.9 whose phenotype spans the 16 x 16 grid, ~230 nodes), at batch sizes 64, 256, 1024. Compile time
   is measured on its own (trace, lower and compile ahead of time), and the compiled program is then timed
   after one warm-up call, so neither figure contains the other. The original Box2D release runs ~10
   evaluations/s per core for 5x5 creatures; ``ratio_vs_original`` is our per-core figure over that.
2. Settings against accuracy (sub-steps, solver iterations, and the rigid, undamped, equal-mass model the
   default replaced): for each setting, the 5x5 throughput (in one run, so ratios hold under any load) and, on a
   fixed mixed set (start creatures and random ones of density 0.7 and 0.95) over 2000 steps, the worst relative
   length error of plain bonds and of muscles, the largest kinetic energy of the last 500 steps over that of
   the first 500 (growth), and on four 5x5 creatures the share of joint-steps beyond the +-60 degree band.
3. The fitness distribution of random 5x5 start genomes and of valid random genomes (default densities), for
   the QD-score offset.

Timings share the machine with whatever else runs; the JSON records the load average next to them.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from athanor.core.rundir import git_sha, package_versions, write_json
from athanor.envs import oceanworld as W

ORIGINAL_PER_CORE = 10.0  # evaluations/s/core of the original Box2D release for 5x5 creatures


def populations(n: int, seed: int = 0) -> dict[str, W.Genome]:
    key_s, key_l = jax.random.split(jax.random.PRNGKey(seed))
    start = jax.vmap(W.start_genome)(jax.random.split(key_s, n))
    pool = jax.vmap(lambda k: W.random_genome(k, 0.9, 0.9))(jax.random.split(key_l, 4 * n))
    size = np.asarray(jax.vmap(lambda g: W._prepare(g).size)(pool))
    keep = np.nonzero(size == W.G)[0][:n]
    if keep.size < n:
        raise RuntimeError(f"only {keep.size} of {4 * n} dense random genomes span the grid; raise the pool")
    return {"start_5x5": start, "large": jax.tree.map(lambda a: a[keep], pool)}


def timed(genomes: W.Genome, cfg: W.WorldConfig, repeats: int = 3) -> tuple[float, float, float]:
    """(compile seconds, steady wall seconds per call, steady CPU seconds per call) of ``evaluate_batch``.

    The program is traced, lowered and compiled ahead of time (its own timer: never negative, and zero work of
    the call in it; zero when an earlier row already compiled the same shapes), run once to warm up, then timed
    over ``repeats`` calls, keeping the fastest wall and CPU time (the least disturbed by other work)."""
    t = time.perf_counter()
    compiled = W.evaluate_batch.lower(genomes, cfg).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(genomes))
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(genomes))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return compile_s, min(walls), min(cpus)


def throughput(batches: list[int], cfg: W.WorldConfig) -> list[dict]:
    rows = []
    pops = populations(max(batches))
    for name, pop in pops.items():
        for B in batches:
            g = jax.tree.map(lambda a, B=B: a[:B], pop)
            compile_s, wall, cpu = timed(g, cfg)
            row = {"population": name, "batch": B, "evals_per_s": round(B / wall, 1),
                   "evals_per_cpu_s": round(B / cpu, 1), "compile_s": round(compile_s, 2),
                   "load_avg": round(os.getloadavg()[0], 2)}
            if name == "start_5x5":
                row["ratio_vs_original"] = round(row["evals_per_cpu_s"] / ORIGINAL_PER_CORE, 1)
            rows.append(row)
            print(f"  {name:10s} B={B:5d}  {row['evals_per_s']:8.1f} eval/s  {row['evals_per_cpu_s']:8.1f} "
                  f"eval/cpu-s  compile {row['compile_s']:.1f}s  load {row['load_avg']}", flush=True)
    return rows


RIGID = {"muscle_compliance": 0.0, "bend_compliance": 0.0, "joint_damping": 0.0, "node_mass": 1.0, "bond_mass": 0.0}


def tradeoff(settings: list[tuple[str, dict]], n_mixed: int, steps: int) -> list[dict]:
    """Each (label, WorldConfig overrides): 5x5 throughput and accuracy over `steps`-step rollouts."""
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    mixed = jax.tree.map(lambda *a: jnp.concatenate(a), jax.vmap(W.start_genome)(jax.random.split(keys[0], n_mixed)),
                         jax.vmap(lambda k: W.random_genome(k, 0.7, 0.7))(jax.random.split(keys[1], n_mixed)),
                         jax.vmap(lambda k: W.random_genome(k, 0.95, 0.95))(jax.random.split(keys[2], n_mixed)))
    starts = jax.vmap(W.start_genome)(jax.random.split(jax.random.PRNGKey(2), 256))
    rows = []
    for label, overrides in settings:
        cfg = W.WorldConfig(**overrides)
        S, it = cfg.substeps, cfg.iterations
        _, wall, cpu = timed(starts, cfg)
        long = jax.tree.map(np.asarray, W.diagnostics(mixed, W.WorldConfig(**{**overrides, "steps": steps})))
        valid = long["valid"]
        ke = long["kinetic_energy"][valid]
        growth = ke[:, -500:].max(axis=1) / np.maximum(ke[:, :500].max(axis=1), 1e-3)
        over = np.concatenate([W.joint_overshoot(jax.tree.map(lambda a, i=i: a[i], starts),
                                               np.asarray(W.simulate(jax.tree.map(lambda a, i=i: a[i], starts), cfg,
                                                                     record_every=1)[1]), cfg.bend_limit_deg)
                               for i in range(4)])
        groups = {"start_5x5": slice(0, n_mixed), "random_0.7": slice(n_mixed, 2 * n_mixed),
                  "random_0.95": slice(2 * n_mixed, 3 * n_mixed)}
        row = {"setting": label, "overrides": overrides, "substeps": S, "iterations": it,
               "evals_per_s_5x5": round(256 / wall, 1),
               "evals_per_cpu_s_5x5": round(256 / cpu, 1),
               "all_finite": bool(all(np.isfinite(v).all() for k, v in long.items()
                                      if k not in ("valid", "fits"))),
               "ke_growth_max": round(float(growth.max()), 2),
               "joint_steps_beyond_band_1deg": round(float(np.mean(over > 1.0)), 4),
               "joint_steps_beyond_band_10deg": round(float(np.mean(over > 10.0)), 4),
               "joint_overshoot_p99_deg": round(float(np.percentile(over, 99)), 1)}
        for name, sl in groups.items():
            v = valid[sl]
            row[f"bond_error_max_median_{name}"] = round(float(np.median(long["max_bond_error"][sl][v])), 3)
            row[f"bond_error_max_worst_{name}"] = round(float(long["max_bond_error"][sl][v].max()), 3)
            row[f"muscle_error_max_median_{name}"] = round(float(np.median(long["max_muscle_error"][sl][v])), 3)
        rows.append(row)
        print(f"  {label}: {row['evals_per_cpu_s_5x5']:7.1f} eval/cpu-s (5x5), KE growth {row['ke_growth_max']}, "
              f"bond err (median of max) 5x5 {row['bond_error_max_median_start_5x5']} / dense "
              f"{row['bond_error_max_median_random_0.95']}, joints >10 deg beyond band "
              f"{row['joint_steps_beyond_band_10deg']:.3f}, finite {row['all_finite']}", flush=True)
    return rows


def fitness_range(n: int) -> dict:
    cfg = W.WorldConfig()
    out = {}
    pops = {"start_5x5": jax.vmap(W.start_genome)(jax.random.split(jax.random.PRNGKey(3), n)),
            "random_default": jax.vmap(W.random_genome)(jax.random.split(jax.random.PRNGKey(4), n))}
    for name, pop in pops.items():
        r = jax.tree.map(np.asarray, W.evaluate_batch(pop, cfg))
        f = r["fitness"][r["valid"]]
        q = np.percentile(f, [0, 1, 5, 25, 50, 75, 95, 99, 100])
        out[name] = {"n_valid": int(f.size), **{k: round(float(v), 2) for k, v in
                                                zip(("min", "p1", "p5", "p25", "median", "p75", "p95", "p99", "max"),
                                                    q, strict=True)}}
        print(f"  {name}: {out[name]}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller batches and sets (a few minutes)")
    ap.add_argument("--out", default="benchmarks/results/oceanworld.json")
    args = ap.parse_args()
    batches = [64, 256] if args.quick else [64, 256, 1024]
    settings = [("default", {}), ("S2", {"substeps": 2}), ("rigid, undamped, equal masses", RIGID)]
    if not args.quick:
        settings[2:2] = [("it2", {"iterations": 2}), ("S4", {"substeps": 4})]
    result = {"system": "oceanworld-world", "config": {k: getattr(W.WorldConfig(), k) for k in
                                                        W.WorldConfig.__dataclass_fields__},
              "tiers": list(W.TIERS), "chunk": W.CHUNK,
              "machine": {"platform": platform.platform(), "processor": platform.machine(),
                          "python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
              "versions": package_versions(("athanor", "jax", "jaxlib", "numpy")), "git_sha": git_sha(),
              "quick": args.quick}
    print("throughput (500-step rollouts, default config):", flush=True)
    result["throughput"] = throughput(batches, W.WorldConfig())
    print("settings (sub-steps, iterations, the rigid model) vs accuracy:", flush=True)
    result["tradeoff"] = tradeoff(settings, 8 if args.quick else 32, 1000 if args.quick else 2000)
    print("fitness of random genomes (500 steps):", flush=True)
    result["fitness_range"] = fitness_range(256 if args.quick else 1024)
    out = Path(args.out)
    write_json(out, result)
    print(out, file=sys.stderr)


if __name__ == "__main__":
    main()
