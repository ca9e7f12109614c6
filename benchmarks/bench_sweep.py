"""Sweep throughput: the same small sweep in-process, as Ray tasks on 1 and 2 workers, and Ray's start-up cost.

    python benchmarks/bench_sweep.py [--system vae] [--preset tiny] [--grid kl_weight=0.01,0.03,0.1] [--seeds 2]
                                     [--long-steps 1000] [--out benchmarks/results/sweep.json]

Every configuration runs in a fresh Python process, one after another in this one invocation, so each pays its
own imports and JIT compilation as a user's command would (no persistent compilation cache: the variable is
removed from the children's environment):

- ``in-process``: ``athanor sweep --executor local``, the runs one after another;
- ``ray-1`` / ``ray-2``: ``--executor ray --workers 1|2``, one task per core, in Ray's default task environment;
- ``ray-2-single``: ``--workers 2 --single-thread``, each task with one thread (``core.executor.SINGLE_THREAD_ENV``:
  XLA's Eigen pool off, OpenMP and BLAS pools of one), to measure whether single-threaded tasks are worth it;
- ``ray-startup``: ``ray.init`` (as the executor calls it) to the result of a first, empty task.

Each configuration runs twice: as the preset has it (``tiny``: seconds per run, mostly imports and compilation)
and with ``--set steps=<--long-steps>`` (the updates dominate, as in real sweeps). Wall time is from the call to
``run_sweep`` to its return (Ray's start-up included), and runs per hour is runs over that. Writes the JSON to
``--out`` and prints a table. On a shared machine the numbers move with its load, which is recorded (1-minute load
average before each configuration).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {"in-process": {"executor": "local"}, "ray-1": {"executor": "ray", "workers": 1},
         "ray-2": {"executor": "ray", "workers": 2},
         "ray-2-single": {"executor": "ray", "workers": 2, "single_thread": True}}


def _worker(mode: str, job: dict) -> dict:
    """One configuration, in this (fresh) process."""
    from athanor.core import executor as X

    if mode == "ray-startup":
        import ray

        t0 = time.perf_counter()
        X.start_ray(workers=2)
        ray.get(ray.remote(lambda: None).options(num_cpus=1).remote())
        startup = time.perf_counter() - t0
        ray.shutdown()
        return {"mode": mode, "startup_s": round(startup, 2)}
    from athanor.api import run_sweep

    t0 = time.perf_counter()
    sweep_dir = run_sweep(job["system"], job["grid"], seeds=job["seeds"], preset=job["preset"], out=job["out"],
                          sets=job["sets"], progress=False, **MODES[mode])
    wall = time.perf_counter() - t0
    meta = json.loads((sweep_dir / "sweep.json").read_text())
    per_run = [json.loads((sweep_dir / r["dir"] / "summary.json").read_text())["wall_s"] for r in meta["runs"]]
    ok = sum(r["status"] == "completed" for r in meta["runs"])
    return {"mode": mode, "executor": meta["executor"], "runs": len(meta["runs"]), "completed": ok,
            "wall_s": round(wall, 2), "runs_per_hour": round(len(meta["runs"]) / wall * 3600, 1),
            "mean_run_wall_s": round(sum(per_run) / len(per_run), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", default="vae")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--grid", action="append", default=None, metavar="KEY=V1,V2")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--long-steps", type=int, default=1000, help="steps of the second, longer set of runs (0: skip)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for the first set of runs")
    ap.add_argument("--modes", default=",".join([*MODES, "ray-startup"]))
    ap.add_argument("--out", default="benchmarks/results/sweep.json")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    grid = args.grid or ["kl_weight=0.01,0.03,0.1"]
    if args.worker:
        print(json.dumps(_worker(args.worker, json.loads(os.environ["BENCH_SWEEP_JOB"]))))
        return
    from athanor.core.rundir import git_sha, package_versions, write_json

    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        regimes = [list(args.sets)] + ([[f"steps={args.long_steps}"]] if args.long_steps else [])
        plan = [(mode, sets) for sets in regimes for mode in args.modes.split(",")
                if sets == regimes[0] or mode != "ray-startup"]
        for i, (mode, sets) in enumerate(plan):
            job = {"system": args.system, "grid": grid, "seeds": args.seeds, "preset": args.preset, "sets": sets,
                   "out": str(Path(tmp) / f"{i}-{mode}")}
            load = os.getloadavg()[0]
            p = subprocess.run([sys.executable, __file__, "--worker", mode], capture_output=True, text=True,
                               env={**env, "BENCH_SWEEP_JOB": json.dumps(job)})
            if p.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{p.stderr[-3000:]}")
            row = {**json.loads(p.stdout.strip().splitlines()[-1]), "sets": sets, "load_before": round(load, 2)}
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    report = {"command": "python benchmarks/bench_sweep.py " + " ".join(sys.argv[1:]), "system": args.system,
              "preset": args.preset, "grid": grid, "seeds": args.seeds, "cpus": os.cpu_count(),
              "git_sha": git_sha(), "versions": package_versions(["jax", "ray"]), "results": results}
    out = Path(args.out)
    write_json(out, report)
    print(f"{'mode':<16} {'runs':<16} {'n':>3} {'wall s':>8} {'runs/h':>8} {'run s':>6} {'load':>5}")
    for r in results:
        what = ",".join(r["sets"]) or args.preset
        if "startup_s" in r:
            print(f"{r['mode']:<16} {'':<16} {'':>3} {r['startup_s']:>8.1f} {'':>8} {'':>6} {r['load_before']:>5.1f}")
        else:
            print(f"{r['mode']:<16} {what:<16} {r['runs']:>3} {r['wall_s']:>8.1f} {r['runs_per_hour']:>8.0f} "
                  f"{r['mean_run_wall_s']:>6.1f} {r['load_before']:>5.1f}")
    print(out)


if __name__ == "__main__":
    main()
