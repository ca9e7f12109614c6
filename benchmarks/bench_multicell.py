"""Benchmark Multicell World: cell updates per second of the world's tick at 64 x 64 and 256 x 256, one world and a
batch of worlds under ``vmap``.

    python benchmarks/bench_multicell.py [--repeats 5] [--ticks 200] [--threads N] [--quick]
                                         [--out benchmarks/results/multicell.json]

A cell update is one space of the grid advanced by one tick (supply, diffusion, reactions, upkeep, pooling,
death, killing, birth: ``envs.multicell.tick``), whether or not a cell lives there: the tick does the same dense
work on every space. Each configuration first runs ``warmup`` ticks so that the world is populated and its
organism table in use (the timed ticks then do the work of a living world), then its first timed call (which
compiles a ``lax.scan`` of ``ticks`` ticks) is recorded as ``first_call_s``, then ``repeats`` blocks of ``ticks``
ticks are timed; the headline is the fastest block (the least disturbed by other load), the median is kept too.
The organism table has H * W / 8 slots (2,048 at 64 x 64, as in the ``full`` preset; 8,192 at 256 x 256).
The issue's target: at least 10^7 cell updates per second at 256 x 256 on 2 CPU cores.

``--threads N`` restricts the process to N cores (CPU affinity, before JAX starts). The JSON records the load
average before and after, the machine, versions and git sha.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from _cores import set_threads

CONFIGS = ({"size": 64, "batch": 1}, {"size": 64, "batch": 8}, {"size": 256, "batch": 1})
QUICK = ({"size": 16, "batch": 1}, {"size": 16, "batch": 2})
TARGET = 1e7  # cell updates per second at 256 x 256


def measure(size: int, batch: int, ticks: int, repeats: int, warmup: int) -> dict:
    """Cell updates per second of ``batch`` worlds of ``size`` x ``size`` (see the module docstring)."""
    import jax

    from athanor.envs import multicell as mc

    rules = mc.Rules(height=size, width=size, slots=max(size * size // 8, 64), founders=max(size * size // 32, 8))
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    worlds = jax.vmap(lambda k: mc.init(rules, k))(keys)
    run = jax.jit(jax.vmap(lambda w: mc.run(w, rules, ticks)))
    t0 = time.perf_counter()
    worlds = jax.block_until_ready(run(worlds))
    first = time.perf_counter() - t0
    for _ in range(max(warmup // ticks - 1, 0)):
        worlds = run(worlds)
    worlds = jax.block_until_ready(worlds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        worlds = jax.block_until_ready(run(worlds))
        times.append(time.perf_counter() - t0)
    cells = size * size * batch * ticks
    alive = int((worlds.org >= 0).sum())
    return {"size": size, "batch": batch, "slots": rules.slots, "ticks_per_call": ticks,
            "cell_updates_per_s": round(cells / min(times), 1),
            "cell_updates_per_s_median": round(cells / statistics.median(times), 1),
            "ticks_per_s_per_world": round(ticks / min(times), 1), "first_call_s": round(first, 2),
            "living_cells_at_end": alive, "blocks_s": [round(t, 4) for t in times],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ticks", type=int, default=200, help="ticks per timed call")
    ap.add_argument("--warmup", type=int, default=2000, help="ticks before timing (a populated world)")
    ap.add_argument("--threads", type=int, default=0, help="cores to use (0 = all this process may use)")
    ap.add_argument("--quick", action="store_true", help="tiny worlds, for the test-suite")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    from athanor.core.rundir import git_sha, package_versions, write_json

    load_before = os.getloadavg()
    results = []
    for c in QUICK if args.quick else CONFIGS:
        print(f"{c['size']}x{c['size']} x {c['batch']} ...", file=sys.stderr, flush=True)
        results.append(measure(c["size"], c["batch"], args.ticks, args.repeats, args.warmup))
        print(f"  {results[-1]['cell_updates_per_s']:.3g} cell updates/s", file=sys.stderr, flush=True)
    big = [r for r in results if r["size"] == 256 and r["batch"] == 1]
    out = {"configs": results, "threads": threads, "repeats": args.repeats, "target_cell_updates_per_s": TARGET,
           "target_met_256": (big[0]["cell_updates_per_s"] >= TARGET) if big else None,
           "load_avg_before": [round(x, 2) for x in load_before],
           "load_avg_after": [round(x, 2) for x in os.getloadavg()],
           "machine": {"platform": platform.platform(), "processor": platform.machine(),
                       "python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
                       "cpus_total": os.cpu_count()},
           "versions": package_versions(("athanor", "jax", "jaxlib", "numpy")), "git_sha": git_sha(),
           "run_wall_s": round(time.perf_counter() - start, 1)}
    if args.out:
        write_json(args.out, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
