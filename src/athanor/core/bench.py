"""`athanor bench`: steady-state updates/s, first-call compile time and peak memory per system.

Each system is measured in its own subprocess (``run_isolated``) so peak RSS belongs to that system alone. A
measurement starts the way a run does: ``load_data(cfg, seed)`` and ``init(cfg, seed, data)`` with the same
integer seed and the same resolved config (preset and ``--set`` overrides). The first ``step`` call (trace +
compile + one call's work) is timed as ``compile_s``; then ``calls`` further calls are timed after the system's
``block`` hook has waited for every pending result. ``steps_per_s`` is in updates; ``throughput`` is in the
system's natural unit (``THROUGHPUT_UNIT``, ``items_per_update`` of it per update: creature evaluations for a
generation of a quality-diversity search). A system's ``bench_baseline(cfg)`` (another implementation of the same
update, timed in the same process) fills ``baseline`` and ``ratio`` = our throughput over the baseline's.
``projected_full_s`` extrapolates the `full` preset's training time from the measured rate (evaluation
excluded, measured separately as ``eval_s``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

from athanor.core.errors import AthanorError

__all__ = ["measure", "run_isolated", "format_table"]


def measure(system: Any, cfg: Any, full: Any, *, preset: str, sets: list[str], seed: int = 0,
            calls: int = 5) -> dict:
    """Time ``system`` (a bound system) at config ``cfg``; ``full`` is its `full` config, for the projection."""
    from athanor.core.rundir import git_dirty, git_sha, package_versions
    from athanor.core.runloop import eval_seed

    data = system.load_data(cfg, seed)
    state = system.init(cfg, seed, data)
    system.block(state)
    t = time.perf_counter()
    state, info = system.step(state, data, cfg)
    system.block((state, info))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(calls):
        state, info = system.step(state, data, cfg)
    system.block((state, info))
    per_s = calls * cfg.inner_steps / (time.perf_counter() - t)
    t = time.perf_counter()
    system.evaluate(state, data, cfg, eval_seed(seed, (calls + 1) * cfg.inner_steps))
    eval_s = time.perf_counter() - t
    baseline = system.bench_baseline(cfg) if system.bench_baseline is not None else None
    throughput = round(per_s * float(system.items_per_update(cfg)), 2)
    return {
        "system": system.name, "preset": preset, "sets": list(sets), "steps_per_s": round(per_s, 2),
        "compile_s": round(compile_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "throughput": {"unit": system.THROUGHPUT_UNIT, "per_s": throughput},
        "baseline": baseline, "ratio": (round(throughput / baseline["per_s"], 3) if baseline else None),
        "eval_s": round(eval_s, 3), "eval_samples": getattr(cfg, "eval_samples", None),
        "full_steps": full.steps, "projected_full_s": round(full.steps / per_s, 1),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version(), "cpus": _cpus()},
        "runtime": system.runtime_info(), "git_sha": git_sha(), "git_dirty": git_dirty(),
        "versions": package_versions(("athanor", "jax", "jaxlib", "flax", "optax", "numpy", "torch")),
    }


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_isolated(jobs: list[dict], worker: list[str], progress: bool = True) -> list[dict]:
    """Run ``worker + [json.dumps(job)]`` in a fresh process per job; each prints its result as the last line of
    stdout. An AthanorError names the job that failed and the tail of its error output."""
    results = []
    for job in jobs:
        if progress:
            extra = f" {' '.join(job.get('sets', []))}" if job.get("sets") else ""
            print(f"bench: {job['system']} ({job['preset']}{extra}) ...", file=sys.stderr)
        proc = subprocess.run([*worker, json.dumps(job)], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-5:]
            raise AthanorError(f"bench of '{job['system']}' failed:\n" + "\n".join(tail))
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def format_table(results: list[dict]) -> str:
    head = f"{'system':<20}{'preset':<8}{'updates/s':>11}{'throughput':>24}{'compile s':>11}{'peak MB':>9}" \
           f"{'eval s':>8}{'full train (proj.)':>20}"
    lines = [head]
    for r in results:
        proj = r.get("projected_full_s")
        tp = r.get("throughput") or {}
        tp_txt = f"{tp.get('per_s', float('nan')):.1f} {tp.get('unit', '')}/s"
        if r.get("ratio") is not None:
            tp_txt += f" ({r['ratio']:.1f}x)"
        lines.append(f"{r['system']:<20}{r['preset']:<8}{r['steps_per_s']:>11.1f}{tp_txt:>24}{r['compile_s']:>11.2f}"
                     f"{r['peak_rss_mb']:>9.0f}{r.get('eval_s', float('nan')):>8.2f}"
                     f"{(f'{proj / 60:.1f} min' if proj is not None else '-'):>20}")
        if r.get("sets"):
            lines.append(f"{'':<20}--set {' --set '.join(r['sets'])}")
    return "\n".join(lines)
