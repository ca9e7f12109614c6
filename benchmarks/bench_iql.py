"""Benchmark the IQL agents: updates/s at batch 256 with (256, 256) MLPs against the PyTorch baseline.

    python benchmarks/bench_iql.py [--systems iql iql-ddpg ...] [--preset quick] [--calls 10]
                                   [--out benchmarks/results/iql.json]

Runs ``athanor bench`` for each IQL system (one subprocess each: the first ``step`` call is the compile time,
then ``calls`` timed calls of ``inner_steps`` updates) and, in the same process, the eager PyTorch implementation
of the same update and head (``athanor.systems.offline_rl.torch_baseline``); ``ratio`` is JAX over PyTorch.
Writes the list of results (DESIGN §4 shape) to ``--out`` and prints a table. ``projected_full_s`` is the
source's 1M updates at the measured rate (the issue's target: under an hour on 2 CPU cores).

Both sides need the CPU to themselves: PyTorch's default thread pool collapses under contention while JAX slows by
its fair share, so a busy machine inflates ``ratio``. ``loadavg`` records the 1-minute load before each system.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from athanor.core.bench import bench, format_table

SYSTEMS = ("iql", "iql-awr-discrete", "iql-ddpg", "iql-ddpg-bc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/iql.json")
    args = ap.parse_args()
    results = []
    for name in args.systems:
        load = os.getloadavg()[0]
        (r,) = bench([name], preset=args.preset, calls=args.calls)
        r["loadavg_before"] = round(load, 2)
        results.append(r)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    for r in results:
        base = r["baseline"] or {}
        print(f"{r['system']:<18} jax {r['throughput']['per_s']:>7.1f} upd/s   torch eager {base.get('per_s', 0):>7.1f}"
              f"   ratio {r['ratio']}   1M updates: {r['projected_full_s'] / 60:.1f} min")
    print(out)


if __name__ == "__main__":
    main()
