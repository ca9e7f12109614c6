"""`athanor bench`: steady-state updates/s, first-call compile time and peak memory per system.

Each system is measured in its own subprocess so peak RSS belongs to that system alone. The first ``step``
call (trace + compile + one call's work) is timed separately; then ``calls`` further calls are timed after a
``block_until_ready``. The result follows the JSON shape in DESIGN §4; ``projected_full_s`` extrapolates the
`full` preset's training time from the measured rate (evaluation excluded, measured separately as ``eval_s``).
A system module may export ``BASELINE`` (a callable returning a throughput dict measured in the same process)
to fill ``baseline`` and ``ratio``. A module whose natural unit is not one update may export ``THROUGHPUT_UNIT``
(e.g. "evaluations") and ``items_per_step(cfg)`` (how many of that unit one update performs, e.g. the
population size of a generation); ``steps_per_s`` always stays in updates.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from typing import Any

from athanor.core.errors import AthanorError


def _block(tree: Any) -> None:
    import jax

    jax.block_until_ready(tree)


def measure(system: str, preset: str = "quick", calls: int = 5, seed: int = 0) -> dict:
    import jax

    from athanor.core import config as C
    from athanor.core.rundir import git_sha
    from athanor.systems import get_system

    spec = get_system(system)
    module = spec.load()
    cfg = C.resolve(module.Config, module.PRESETS, preset, base=spec.overrides)
    full = C.resolve(module.Config, module.PRESETS, "full", base=spec.overrides)
    data = module.load_data(cfg)
    state = module.init(cfg, jax.random.PRNGKey(seed), data)
    _block(state)
    t = time.perf_counter()
    state, info = module.step(state, data, cfg)
    _block((state, info))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(calls):
        state, info = module.step(state, data, cfg)
    _block((state, info))
    per_s = calls * cfg.inner_steps / (time.perf_counter() - t)
    t = time.perf_counter()
    module.evaluate(state, data, cfg, jax.random.PRNGKey(seed + 1))
    eval_s = time.perf_counter() - t
    baseline = module.BASELINE(cfg) if hasattr(module, "BASELINE") else None
    unit = getattr(module, "THROUGHPUT_UNIT", "updates")
    items = float(module.items_per_step(cfg)) if hasattr(module, "items_per_step") else 1.0
    throughput = round(per_s * items, 2)
    return {
        "system": system, "preset": preset, "steps_per_s": round(per_s, 2), "compile_s": round(compile_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "throughput": {"unit": unit, "per_s": throughput},
        "baseline": baseline, "ratio": (round(throughput / baseline["per_s"], 3) if baseline else None),
        "eval_s": round(eval_s, 3), "eval_samples": getattr(cfg, "eval_samples", None),
        "full_steps": full.steps, "projected_full_s": round(full.steps / per_s, 1),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version(), "cpus": _cpus()},
        "versions": _versions(), "git_sha": git_sha(),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("athanor", "jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def bench(systems: list[str], preset: str = "quick", calls: int = 5, progress: bool = True) -> list[dict]:
    """Measure each system in a fresh subprocess; raise AthanorError naming the system that failed."""
    results = []
    for name in systems:
        if progress:
            print(f"bench: {name} ({preset}) ...", file=sys.stderr)
        proc = subprocess.run([sys.executable, "-m", "athanor.core.bench", name, preset, str(calls)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-5:]
            raise AthanorError(f"bench of '{name}' failed:\n" + "\n".join(tail))
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
    return "\n".join(lines)

if __name__ == "__main__":
    name, preset, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(measure(name, preset, calls)))
