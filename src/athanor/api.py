"""The Python API: everything the `athanor` command does, callable from Python and tests.

This module is the one place that joins the layers: it looks systems and experiments up in their registries,
binds a system module to the contract (``systems/contract.py``), hands it to the framework-neutral run loop
(``core/runloop.py``), and builds reports (``report/html.py``). The core below it never imports a system, an
experiment or a report (ARCHITECTURE.md).

    start_run("vae", preset="tiny")             -> RunResult   one system through the run loop
    resume_run(run_dir)                         -> RunResult   continue from the newest valid checkpoint
    load_run(run_dir)                           -> (cfg, state)
    run_experiment("generative", scale="tiny")  -> Path        runs x seeds, analysis, claims, reports
    reanalyse(exp_dir)                          -> Path        judge stored runs again without training
    bench(["iql"], sets=["layer_norm=false"])   -> [dict]      throughput per system, one process each
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from athanor.core import config as C
from athanor.core import runloop
from athanor.core.errors import AthanorError, ConfigError
from athanor.core.experiment import SCALES, RunRecord
from athanor.core.rundir import now_iso, timestamp, unique_dir, write_json
from athanor.core.runs import read_meta
from athanor.core.seeds import check_seed
from athanor.experiments import get_experiment
from athanor.systems import SYSTEMS, get_system

__all__ = ["resolve_config", "start_run", "resume_run", "load_run", "run_experiment", "reanalyse", "bench",
           "bench_names"]


def resolve_config(system: str, preset: str | None = None, overrides: dict | None = None,
                   sets: Sequence[str] = ()) -> Any:
    """The resolved config of ``system``: defaults -> registry overrides -> preset -> overrides -> --set."""
    spec = get_system(system)
    module = spec.load()
    return C.resolve(module.Config, module.PRESETS, preset, experiment=overrides, sets=sets, base=spec.overrides)


def start_run(system: str, *, preset: str | None = None, overrides: dict | None = None, sets: Sequence[str] = (),
              seed: int = 0, out: Path | str = "runs", run_dir: Path | str | None = None,
              stop_after: int | None = None, progress: bool = True, label: str | None = None) -> runloop.RunResult:
    """Resolve the config, create the run directory, run to completion (or ``stop_after`` updates), report."""
    from athanor.report.html import run_report

    spec = get_system(system)
    bound = spec.bind()
    cfg = C.resolve(bound.Config, bound.PRESETS, preset, experiment=overrides, sets=sets, base=spec.overrides)
    seed = check_seed(seed)
    run_dir = runloop.create_run_dir(out, system, seed, run_dir)
    meta = {"family": spec.family, "label": label or system, "preset": preset,
            "overrides": {**(overrides or {}), **C.parse_sets(bound.Config, sets)}}
    result = runloop.start(bound, cfg, run_dir, seed, meta, stop_after=stop_after, progress=progress)
    if result.status == "completed":
        run_report(run_dir)
    return result


def resume_run(run_dir: Path | str, *, stop_after: int | None = None, progress: bool = True) -> runloop.RunResult:
    """Continue a run from its newest valid checkpoint (older ones are used if newer ones are corrupt)."""
    from athanor.report.html import run_report

    meta = read_meta(run_dir)
    result = runloop.resume(get_system(meta.get("system", "")).bind(), run_dir, stop_after=stop_after,
                            progress=progress)
    if result.status == "completed":
        run_report(run_dir)
    return result


def load_run(run_dir: Path | str, *, template: Any = None) -> tuple[Any, Any]:
    """(cfg, state) of a run from its newest valid checkpoint (see ``core.runs.load_run``)."""
    from athanor.core.runs import load_run as load

    return load(run_dir, get_system(read_meta(run_dir).get("system", "")).bind(), template=template)


def run_experiment(name: str, *, scale: str = "quick", seeds: int | None = None, out: Path | str = "runs",
                   progress: bool = True) -> Path:
    """Run every run of experiment ``name`` at ``scale`` for seeds 0..seeds-1, then analyse; returns its folder.

    ``seeds`` None takes the experiment's own count for the scale (its module's ``SEEDS[scale]``), else 1.
    """
    from athanor.report.html import gallery

    if scale not in SCALES:
        raise ConfigError(f"unknown scale '{scale}'; choose one of {', '.join(SCALES)}")
    module = get_experiment(name)
    if seeds is None:
        seeds = int(getattr(module, "SEEDS", {}).get(scale, 1))
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    specs = module.runs(scale)
    for spec in specs:
        get_system(spec.system)  # an unknown system fails here, before any run
    out = Path(out)
    try:
        exp_dir = unique_dir(out / name, timestamp())
    except OSError as e:
        raise ConfigError(f"cannot create the experiment directory under {out / name} ({e.strerror or e}); pass "
                          f"a writable folder with --out") from None
    t0 = time.perf_counter()
    records: list[RunRecord] = []
    notes: list[str] = []
    listing = []
    total = len(specs) * seeds
    for seed in range(seeds):
        for spec in specs:
            if progress:
                print(f"[{len(records) + 1}/{total}] {name}: {spec.label} (seed {seed}, {scale})", file=sys.stderr)
            run_dir = exp_dir / f"{spec.label}_s{seed}"
            try:
                result = start_run(spec.system, preset=scale, overrides=dict(spec.overrides), seed=seed,
                                   run_dir=run_dir, progress=progress, label=spec.label)
                final = result.final
            except AthanorError as e:
                final = {}
                notes.append(f"run {spec.label} seed {seed} failed: {e}")
                print(f"athanor: {notes[-1]}", file=sys.stderr)
            records.append(RunRecord(spec, seed, run_dir, final))
            listing.append({"system": spec.system, "label": spec.label, "seed": seed, "dir": run_dir.name})
    meta = {"experiment": name, "scale": scale, "seeds": seeds, "summary": module.SUMMARY, "created": now_iso(),
            "runs": listing, "status": "completed", "wall_s": round(time.perf_counter() - t0, 2), "notes": notes}
    _analyse_and_write(module, exp_dir, records, meta)
    gallery(out)
    return exp_dir


def _analyse_and_write(module: Any, exp_dir: Path, records: list[RunRecord], meta: dict) -> None:
    from athanor.core.artifact_io import write_artifacts
    from athanor.report.html import experiment_report

    analysis = module.analyse(records, meta["scale"])
    meta["notes"] = list(meta["notes"]) + list(analysis.notes)
    write_artifacts(exp_dir, analysis.artifacts)
    write_json(exp_dir / "claims.json", [c.to_json() for c in analysis.claims])
    write_json(exp_dir / "experiment.json", meta)
    experiment_report(exp_dir)


def reanalyse(exp_dir: Path | str) -> Path:
    """Judge an existing experiment's claims again from its stored run summaries, without training.

    For when the analysis code changed after the runs finished. Run results are read from each run's
    ``summary.json``; failed runs stay failed. The wall time and run notes of the original are kept; the
    analysis notes are replaced.
    """
    exp_dir = Path(exp_dir)
    try:
        meta = json.loads((exp_dir / "experiment.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{exp_dir} is not a readable experiment directory ({e})") from None
    module = get_experiment(meta["experiment"])
    specs = {s.label: s for s in module.runs(meta["scale"])}
    records = []
    for run in meta["runs"]:
        if run["label"] not in specs:
            raise ConfigError(f"run '{run['label']}' of {exp_dir} is not in the experiment's current run list; "
                              f"it was made by another version: rerun the experiment")
        run_dir = exp_dir / run["dir"]
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        final = (summary.get("final") or {}) if summary.get("status") == "completed" else {}
        records.append(RunRecord(specs[run["label"]], run["seed"], run_dir, final))
    meta["notes"] = [n for n in meta.get("notes", []) if n.startswith("run ")]
    meta["reanalysed"] = now_iso()
    _analyse_and_write(module, exp_dir, records, meta)
    return exp_dir


def bench_names(names: Sequence[str]) -> list[str]:
    """System names for ``names`` (all systems if empty); a family name stands for every system in it."""
    out: list[str] = []
    for n in names or list(SYSTEMS):
        family = [k for k, spec in SYSTEMS.items() if spec.family == n and k != n]
        out += family if family and n not in SYSTEMS else [get_system(n).name]
    return out


def bench(names: Sequence[str] = (), *, preset: str = "quick", calls: int = 5, sets: Sequence[str] = (),
          seed: int = 0, progress: bool = True) -> list[dict]:
    """Measure each system (or family) in a fresh process; the configs are checked here first, so a bad
    ``--set`` fails before anything is timed."""
    from athanor.core.bench import run_isolated

    systems = bench_names(names)
    for name in systems:
        if get_system(name).bind().step is None:
            raise ConfigError(f"system '{name}' runs its own loop (run(cfg, ctx)); athanor bench times the step "
                              f"of step-loop systems")
        resolve_config(name, preset, sets=sets)
    jobs = [{"system": n, "preset": preset, "sets": list(sets), "calls": int(calls), "seed": check_seed(seed)}
            for n in systems]
    return run_isolated(jobs, [sys.executable, "-m", "athanor.api", "bench-worker"], progress=progress)


def _bench_worker(job: dict) -> dict:
    from athanor.core.bench import measure

    spec = get_system(job["system"])
    bound = spec.bind()
    cfg = C.resolve(bound.Config, bound.PRESETS, job["preset"], sets=job["sets"], base=spec.overrides)
    full = C.resolve(bound.Config, bound.PRESETS, "full", base=spec.overrides)
    return measure(bound, cfg, full, preset=job["preset"], sets=job["sets"], seed=job["seed"], calls=job["calls"])


if __name__ == "__main__":
    if sys.argv[1:2] != ["bench-worker"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m athanor.api bench-worker JOB_JSON (used by `athanor bench`)")
    print(json.dumps(_bench_worker(json.loads(sys.argv[2]))))
