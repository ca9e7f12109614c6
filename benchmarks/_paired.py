"""Interleaved timing of two implementations of one update, and the run facts every benchmark records (imported
by the benchmark scripts; not a benchmark itself)."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable


def time_blocks(timers: dict[str, Callable[[], None]], repeats: int, updates: int,
                digits: int = 8) -> dict[str, dict]:
    """Each timer runs one block of ``updates`` updates. The first call of each is timed alone (for JAX: trace and
    compile plus the block's work); then ``repeats`` rounds call every timer once in turn, so a change in the
    machine's load hits all alike. Per implementation: the fastest block's seconds per update (the headline), the
    median, and the first call's seconds."""
    first, times = {}, {name: [] for name in timers}
    for name, fn in timers.items():
        t = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t
    for r in range(repeats):
        for name, fn in timers.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        print(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1] / updates * 1e3:.2f} ms/update" for k, v in
                                                        times.items()), file=sys.stderr, flush=True)
    out = {}
    for name in timers:
        per = sorted(t / updates for t in times[name])
        out[name] = {"s_per_update": round(per[0], digits), "s_per_update_median": round(per[len(per) // 2], digits),
                     "first_call_s": round(first[name], 2)}
    return out


def run_facts(load_before: tuple[float, ...], packages: tuple[str, ...]) -> dict:
    """Peak RSS, git sha, package versions, machine, cores and the load average before and after."""
    from athanor.core.rundir import git_sha, package_versions

    return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "git_sha": git_sha(),
            "versions": package_versions(packages), "machine": platform.machine(),
            "cores": len(os.sched_getaffinity(0)), "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()]}


def cli(description: str, run: Callable[[dict, int, int], dict], quick: dict, full: dict,
        argv: list[str] | None = None) -> dict:
    """The command line of a paired benchmark: ``--repeats``, ``--threads`` (set before JAX starts), ``--quick``
    (the small sizes, a smoke test) and ``--out`` (the JSON written there too); prints the JSON and returns it."""
    import argparse
    import json
    from pathlib import Path

    from _cores import set_threads

    from athanor.core.rundir import write_json

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="cores to use (default: all this process may use)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    started = time.perf_counter()
    result = run(quick if args.quick else full, args.repeats, threads)
    result["run_wall_s"] = round(time.perf_counter() - started, 1)
    if args.out:
        write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return result
