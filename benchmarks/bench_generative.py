"""Benchmark the generative family: updates/s, compile time, peak RSS and evaluation time per model.

    python benchmarks/bench_generative.py [--preset quick] [--calls 5] [--out benchmarks/results]

Writes ``<out>/generative-<git sha>.json`` (the shape of `athanor bench --json`, one entry per model) and prints the
table. ``projected_full_s`` is the `full` preset's step count divided by the measured rate; the whole
`generative` experiment at full scale is timed by running it (``athanor experiment generative --scale full``)
and its wall time read from ``experiment.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from athanor.api import bench
from athanor.core.bench import format_table
from athanor.core.rundir import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    results = bench(["generative"], preset=args.preset, calls=args.calls)
    sha = (results[0].get("git_sha") or "nogit")[:10]
    path = Path(args.out) / f"generative-{sha}.json"
    write_json(path, results)
    print(format_table(results))
    total = sum(r["projected_full_s"] for r in results)
    print(f"projected full training time, all models: {total / 60:.1f} min (evaluation excluded)")
    print(path)


if __name__ == "__main__":
    main()
