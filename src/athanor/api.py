"""The Python API: everything the `athanor` command does, callable from Python and tests.

This module is the one place that joins the layers: it looks systems and experiments up in their registries,
binds a system module to the contract (``systems/contract.py``), hands it to the framework-neutral run loop
(``core/runloop.py``), and builds reports (``report/html.py``). The core below it never imports a system, an
experiment or a report (ARCHITECTURE.md).

    start_run("vae", preset="tiny")             -> RunResult   one system through the run loop
    resume_run(run_dir)                         -> RunResult   continue from the newest valid checkpoint
    load_run(run_dir)                           -> (cfg, state)
    run_experiment("generative", scale="tiny")  -> Path        runs x seeds, analysis, claims, reports
    run_sweep("vae", ["kl_weight=0.1,1"], seeds=2) -> Path     a config grid x seeds, results per grid point
    execute_run(task)                           -> dict        one run of either, from its directory (Ray task)
    reanalyse(exp_dir)                          -> Path        judge stored runs again without training
    archive(exp_dir, dest)                      -> dict        a copy without checkpoints, to share or resume
    bench(["iql"], sets=["layer_norm=false"])   -> [dict]      throughput per system, one process each
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from athanor.core import config as C
from athanor.core import runloop
from athanor.core.errors import AthanorError, ConfigError
from athanor.core.experiment import SCALES, RunRecord, RunSpec
from athanor.core.rundir import now_iso, timestamp, unique_dir, write_json
from athanor.core.runs import read_meta
from athanor.core.seeds import check_seed
from athanor.experiments import get_experiment
from athanor.systems import SYSTEMS, get_system

__all__ = ["resolve_config", "start_run", "resume_run", "load_run", "run_experiment", "run_sweep", "parse_grid",
           "archive", "sweep_table", "execute_run", "reanalyse", "bench", "bench_names"]


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


def execute_run(task: dict, progress: bool = False) -> dict:
    """Bring one run of an experiment or sweep to completion from wherever its directory stands.

    What every executor calls, a Ray task included: a plain top-level function, so Ray ships it by name and a
    worker needs nothing but ``athanor`` installed and the run directory's filesystem. ``task`` holds plain
    values: system, label, preset, overrides, sets, seed and run_dir (absolute). The directory decides:

    - ``summary.json`` says completed: nothing is run ("skipped");
    - a valid checkpoint: the run continues from it through ``resume_run`` ("resumed"), which is how a retry
      after a killed worker and ``--resume`` continue to the same metrics as an uninterrupted run;
    - anything else (a run killed before its first checkpoint, or whose checkpoints are all damaged): the folder
      is removed and the run starts again ("started").

    Returns {"final": metrics, "how": skipped | resumed | started, "steps_done": int}; a failed run raises its
    error (the executor reports and retries it).
    """
    from athanor.core.checkpoint import latest_valid

    run_dir = Path(task["run_dir"])
    summary = _summary(run_dir)
    if summary.get("status") == "completed":
        return {"final": summary.get("final") or {}, "how": "skipped", "steps_done": summary.get("steps_done")}
    if (run_dir / "config.json").is_file() and latest_valid(run_dir / "checkpoints")[0] is not None:
        result = resume_run(run_dir, progress=progress)
        how = "resumed"
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        result = start_run(task["system"], preset=task.get("preset"), overrides=task.get("overrides") or {},
                           sets=task.get("sets") or (), seed=task["seed"], run_dir=run_dir, progress=progress,
                           label=task.get("label"))
        how = "started"
    if result.status != "completed":
        raise AthanorError(f"run {run_dir} stopped after {result.steps_done} updates without completing")
    return {"final": result.final, "how": how, "steps_done": result.steps_done}


def _summary(run_dir: Path) -> dict:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _read_plan(path: Path, meta_file: str, what: str, command: str) -> tuple[Path, dict]:
    """(the directory, its JSON metadata) for ``--resume``; a ConfigError naming the fix if it is not one."""
    try:
        meta = json.loads((path / meta_file).read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("runs"), list):
            raise ValueError(f"{meta_file} has no run list")
    except (OSError, ValueError) as e:
        why = f"no readable {meta_file}: {e.strerror}" if isinstance(e, OSError) else f"{meta_file}: {e}"
        raise ConfigError(f"--resume {path} is not {what} ({why}); pass the folder that `{command}` printed") \
            from None
    return path.resolve(), meta


def _seed_count(seeds: int | None, default: int, before: int | None) -> int:
    if seeds is None:
        seeds = before if before is not None else default
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if before is not None and seeds < before:
        raise ConfigError(f"the resumed directory has {before} seeds already; --seeds can add seeds, not remove "
                          f"them (pass --seeds {before} or more, or leave it out)")
    return seeds


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")


def _run_all(tasks: list[dict], *, executor: str, address: str | None, workers: int | None,
             progress: bool, small: bool, single_thread: bool = False) -> tuple[list[dict], list[str], str]:
    """Run every task not already complete (``core.executor``) -> (one entry per task, notes, executor used).

    An entry: {"status": completed | failed, "how": skipped | resumed | started | None, "attempts", "final",
    "errors"}. Every failed attempt gives a note starting with "run " (``reanalyse`` keeps those)."""
    from athanor.core import executor as X

    entries: dict[str, dict] = {}
    jobs = []
    for task in tasks:
        summary = _summary(Path(task["run_dir"]))
        if summary.get("status") == "completed":
            entries[task["key"]] = {"status": "completed", "how": "skipped", "attempts": 0,
                                    "final": summary.get("final") or {}, "errors": []}
        else:
            jobs.append(X.Job(task["key"], task, task["title"]))
    mode = X.choose(executor, len(jobs), address, workers, small=small)
    if progress and len(tasks) > len(jobs):
        print(f"athanor: {len(tasks) - len(jobs)} of {len(tasks)} runs already complete; running "
              f"{len(jobs)}", file=sys.stderr)
    notes = []
    for out in X.execute(jobs, execute_run, executor=mode, address=address, workers=workers, progress=progress,
                         single_thread=single_thread):
        title = out.job.title
        if out.ok:
            entries[out.job.key] = {"status": "completed", "how": out.result["how"], "attempts": out.attempts,
                                    "final": out.result["final"], "errors": out.errors}
            if out.errors:
                again = "resumed from its checkpoint" if out.result["how"] == "resumed" else "started again"
                notes.append(f"run {title}: attempt 1 failed ({out.errors[0]}); attempt {out.attempts} {again} and "
                             f"completed")
        else:
            entries[out.job.key] = {"status": "failed", "how": None, "attempts": out.attempts, "final": {},
                                    "errors": out.errors}
            tried = f" (after {out.attempts} attempts; first: {out.errors[0]})" if out.attempts > 1 else ""
            notes.append(f"run {title} failed: {out.errors[-1]}{tried}")
    return [entries[t["key"]] for t in tasks], notes, mode


def run_experiment(name: str, *, scale: str | None = None, seeds: int | None = None, out: Path | str = "runs",
                   progress: bool = True, executor: str = "auto", address: str | None = None,
                   workers: int | None = None, resume: Path | str | None = None, single_thread: bool = False,
                   sets: Sequence[str] = ()) -> Path:
    """Run every run of experiment ``name`` at ``scale`` for seeds 0..seeds-1, then analyse; returns its folder.

    ``scale`` None is "quick" (or the resumed experiment's). ``seeds`` None takes the experiment's own count for
    the scale (its module's ``SEEDS[scale]``), else 1. The runs go through ``core.executor`` (``executor``:
    auto | local | ray; ``address``: a Ray cluster; ``workers``: how many runs at once under Ray;
    ``single_thread``: one thread per Ray task, see ``core.executor``).
    ``resume`` is an existing experiment folder: its completed runs are kept, the others continued or
    restarted (``execute_run``), and a larger ``seeds`` adds seeds. ``experiment.json`` is written with status
    "running" before the first run, so a killed experiment can be resumed; it is rewritten at the end.
    ``sets`` (``key=value`` as in ``athanor run --set``) apply on top of the experiment's own settings to every run
    whose system has the key (e.g. ``scorer=clip:PATH`` draws the `clipdraw` experiment with real CLIP); a key no
    run has is an error, every run's config is resolved before anything runs, and a resumed experiment keeps the
    sets it was started with.
    """
    from athanor.report.html import gallery

    module = get_experiment(name)
    _check_workers(workers)
    before = None
    if resume is not None:
        exp_dir, before = _read_plan(Path(resume), "experiment.json", "an experiment directory",
                                     "athanor experiment")
        if before.get("experiment") != name:
            raise ConfigError(f"{exp_dir} holds experiment '{before.get('experiment')}', not '{name}'; resume it "
                              f"with `athanor experiment {before.get('experiment')} --resume {exp_dir}`")
        if scale is not None and scale != before.get("scale"):
            raise ConfigError(f"{exp_dir} was run at scale '{before.get('scale')}'; drop --scale to resume it, "
                              f"or start a new experiment at '{scale}'")
        scale = before.get("scale")
        stored = list(before.get("sets") or [])
        if sets and list(sets) != stored:
            raise ConfigError(f"{exp_dir} was started with --set {' '.join(stored) or '(none)'}; a resumed "
                              "experiment keeps its settings, so drop --set to resume it")
        sets = stored
    scale = scale or "quick"
    if scale not in SCALES:
        raise ConfigError(f"unknown scale '{scale}'; choose one of {', '.join(SCALES)}")
    seeds = _seed_count(seeds, int(getattr(module, "SEEDS", {}).get(scale, 1)),
                        None if before is None else int(before.get("seeds", 1)))
    specs = module.runs(scale)
    extra = _experiment_sets(name, specs, sets)
    for spec in specs:  # an unknown system or a config that does not resolve fails here, before any run
        resolve_config(spec.system, scale, {**spec.overrides, **extra[spec.system]})
    if resume is None:
        out = Path(out)
        try:
            exp_dir = unique_dir(out / name, timestamp()).resolve()  # absolute: Ray workers may run elsewhere
        except OSError as e:
            raise ConfigError(f"cannot create the experiment directory under {out / name} ({e.strerror or e}); "
                              f"pass a writable folder with --out") from None
    t0 = time.perf_counter()
    plan = [(spec, seed) for seed in range(seeds) for spec in specs]
    tasks = [{"key": f"{spec.label}_s{seed}", "title": f"{name}: {spec.label} seed {seed}", "system": spec.system,
              "label": spec.label, "preset": scale, "overrides": {**spec.overrides, **extra[spec.system]}, "seed": seed,
              "run_dir": str(exp_dir / f"{spec.label}_s{seed}")} for spec, seed in plan]
    listing = [{"system": spec.system, "label": spec.label, "seed": seed, "dir": f"{spec.label}_s{seed}"}
               for spec, seed in plan]
    meta = {"experiment": name, "scale": scale, "seeds": seeds, "summary": module.SUMMARY,
            "key_figure": getattr(module, "KEY_FIGURE", None),
            "created": before.get("created", now_iso()) if before else now_iso(), "runs": listing, "sets": list(sets),
            "status": "running", "wall_s": 0.0, "notes": []}
    entries = _run_recorded(exp_dir / "experiment.json", meta, before, tasks, t0,
                            f"athanor experiment {name} --resume {exp_dir}", executor=executor, address=address,
                            workers=workers, progress=progress, small=scale == "tiny", single_thread=single_thread)
    records = [RunRecord(spec, seed, exp_dir / f"{spec.label}_s{seed}", entry["final"])
               for (spec, seed), entry in zip(plan, entries, strict=True)]
    _analyse_and_write(module, exp_dir, records, meta)
    if exp_dir.parent.name == name:  # the runs folder's layout, <root>/<name>/<stamp>: refresh its gallery
        gallery(exp_dir.parent.parent)  # (a resumed folder elsewhere has no runs root above it to scan)
    return exp_dir


def _split_values(text: str) -> list[str]:
    """``"1e-3,3e-4"`` -> ["1e-3", "3e-4"]; commas inside brackets stay (``[64,64],[128,128]`` is two tuples)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*parts, cur.strip()]


def _experiment_sets(name: str, specs: Sequence[RunSpec], sets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{system: its typed overrides} from ``sets``: each ``key=value`` goes to every system of the experiment whose
    Config has the key; a key that none has (or a malformed item) is a ConfigError naming the systems."""
    systems = sorted({spec.system for spec in specs})
    fields = {system: set(C.field_names(get_system(system).load().Config)) for system in systems}
    for item in sets:
        key = item.partition("=")[0].strip()
        if "=" not in item or not key:
            raise ConfigError(f"malformed --set '{item}': expected key=value, e.g. --set steps=1000")
        if not any(key in names for names in fields.values()):
            hint = C.nearest(key, sorted(set().union(*fields.values())))
            tail = f"; did you mean '{hint}'?" if hint else ""
            raise ConfigError(f"--set {item}: no run of experiment '{name}' has the config key '{key}' (its "
                              f"systems: {', '.join(systems)}){tail}")
    return {system: C.parse_sets(get_system(system).load().Config,
                                 [i for i in sets if i.partition("=")[0].strip() in fields[system]])
            for system in systems}


def parse_grid(system: str, items: Sequence[str], sets: Sequence[str] = ()) -> dict[str, list]:
    """``["lr=1e-3,3e-4", "kl_weight=0.1,1"]`` -> {key: [typed values]}, each value parsed as ``--set`` parses it
    (``core.config``), so an unknown key or a bad value is the same ConfigError, before anything runs."""
    module = get_system(system).load()
    grid: dict[str, list] = {}
    set_keys = {item.split("=", 1)[0].strip() for item in sets if "=" in item}
    for item in items:
        key, _, text = item.partition("=")
        key = key.strip()
        values = _split_values(text) if text.strip() else []
        if not key or not values or any(not v for v in values):
            raise ConfigError(f"malformed --grid '{item}': expected key=value1,value2,..., e.g. "
                              f"--grid lr=1e-3,3e-4")
        if key in grid:
            raise ConfigError(f"--grid names '{key}' twice; give all its values in one --grid {key}=v1,v2")
        if key in set_keys:
            raise ConfigError(f"'{key}' is both swept (--grid) and fixed (--set); drop one of them")
        parsed = [C.parse_sets(module.Config, [f"{key}={v}"])[key] for v in values]
        grid[key] = [list(v) if isinstance(v, tuple) else v for v in parsed]
    return grid


def _point_label(index: int, params: dict) -> str:
    slug = ",".join(f"{k}={v}" for k, v in params.items())
    slug = re.sub(r"[^A-Za-z0-9._=,+-]", "_", slug)[:60]
    return f"p{index}-{slug}" if slug else f"p{index}"


def run_sweep(system: str | None = None, grid: Sequence[str] = (), *, seeds: int | None = None,
              preset: str | None = None, sets: Sequence[str] = (), out: Path | str = "runs", progress: bool = True,
              executor: str = "auto", address: str | None = None, workers: int | None = None,
              resume: Path | str | None = None, single_thread: bool = False) -> Path:
    """Run ``system`` at every point of a config grid (the cartesian product of ``grid``'s ``key=v1,v2`` items)
    for seeds 0..seeds-1; returns the sweep's folder.

    Layout (like an experiment's, one run directory per grid point and seed)::

        <out>/sweep-<system>/<time>/
          sweep.json                  system, preset, sets, grid, points, runs (status, attempts), notes, wall time
          results.json, results.csv   per grid point: its params, completed seeds, mean and std of every final
                                      metric over the completed seeds
          p<i>-<key=value,...>_s<seed>/   a run directory (config.json, metrics.jsonl, summary.json, ...)

    Every point's config is resolved (defaults -> preset -> point -> --set) before anything runs, so a bad key or
    value is a ConfigError up front. ``resume`` continues an existing sweep folder with its saved grid (pass no
    system, grid, preset or sets): completed runs are kept, and a larger ``seeds`` adds seeds. Executors and
    retries as in ``run_experiment``.
    """
    _check_workers(workers)
    before = None
    if resume is not None:
        if system or grid or preset or sets:
            raise ConfigError("--resume continues a sweep with its saved grid and config; drop SYSTEM, --grid, "
                              "--preset and --set")
        sweep_dir, before = _read_plan(Path(resume), "sweep.json", "a sweep directory", "athanor sweep")
        system, preset, sets = before.get("system"), before.get("preset"), list(before.get("sets") or [])
        points = [dict(p["params"]) for p in before.get("points", [])]
        grid_meta = before.get("grid") or {}
        if not system or not points:
            raise ConfigError(f"{sweep_dir / 'sweep.json'} names no system or grid points; start a new sweep")
    elif not system:
        raise ConfigError("name a system to sweep (see `athanor list`) or pass --resume SWEEP_DIR")
    spec = get_system(system)
    if before is None:
        grid_meta = parse_grid(system, grid, sets)
        points = [dict(zip(grid_meta, combo, strict=True)) for combo in itertools.product(*grid_meta.values())]
    module = spec.load()
    for params in points:  # every point's config must resolve before any run starts
        C.resolve(module.Config, module.PRESETS, preset, experiment=params, sets=sets, base=spec.overrides)
    seeds = _seed_count(seeds, 1, None if before is None else int(before.get("seeds", 1)))
    if resume is None:
        out = Path(out)
        try:
            sweep_dir = unique_dir(out / f"sweep-{system}", timestamp()).resolve()
        except OSError as e:
            raise ConfigError(f"cannot create the sweep directory under {out} ({e.strerror or e}); pass a "
                              f"writable folder with --out") from None
    labels = [_point_label(i, params) for i, params in enumerate(points)]
    plan = [(i, seed) for seed in range(seeds) for i in range(len(points))]
    tasks = [{"key": f"{labels[i]}_s{seed}", "title": f"{system} {labels[i]} seed {seed}", "system": system,
              "label": labels[i], "preset": preset, "overrides": points[i], "sets": list(sets), "seed": seed,
              "run_dir": str(sweep_dir / f"{labels[i]}_s{seed}")} for i, seed in plan]
    listing = [{"point": labels[i], "seed": seed, "dir": f"{labels[i]}_s{seed}"} for i, seed in plan]
    meta = {"sweep": system, "system": system, "preset": preset, "sets": list(sets), "grid": grid_meta,
            "points": [{"label": lab, "params": p} for lab, p in zip(labels, points, strict=True)], "seeds": seeds,
            "created": before.get("created", now_iso()) if before else now_iso(), "runs": listing,
            "status": "running", "wall_s": 0.0, "notes": [], "results": ["results.json", "results.csv"]}
    entries = _run_recorded(sweep_dir / "sweep.json", meta, before, tasks, time.perf_counter(),
                            f"athanor sweep --resume {sweep_dir}", executor=executor, address=address,
                            workers=workers, progress=progress, small=preset == "tiny", single_thread=single_thread)
    _write_sweep_results(sweep_dir, meta, entries)
    write_json(sweep_dir / "sweep.json", meta)
    return sweep_dir


def _run_recorded(meta_path: Path, meta: dict, before: dict | None, tasks: list[dict], t0: float,
                  resume_command: str, **run_all) -> list[dict]:
    """Run ``tasks`` with ``meta`` (experiment.json or sweep.json) saved as "running" first and as "interrupted"
    on Ctrl-C (naming ``resume_command``), then fill in each listed run's outcome, the executor, the notes and the
    wall time (added to a resumed folder's earlier time). The caller writes the completed ``meta``."""
    if before:
        meta["resumed"] = [*before.get("resumed", []), now_iso()]
    write_json(meta_path, meta)
    try:
        entries, notes, mode = _run_all(tasks, **run_all)
    except KeyboardInterrupt:
        write_json(meta_path, {**meta, "status": "interrupted"})
        print(f"athanor: continue with: {resume_command}", file=sys.stderr)
        raise
    for item, entry in zip(meta["runs"], entries, strict=True):
        item.update(status=entry["status"], how=entry["how"], attempts=entry["attempts"])
    previous_wall = float(before.get("wall_s") or 0.0) if before else 0.0
    meta.update(status="completed", executor=mode, notes=notes,
                wall_s=round(previous_wall + time.perf_counter() - t0, 2))
    return entries


def _write_sweep_results(sweep_dir: Path, meta: dict, entries: list[dict]) -> list[dict]:
    """results.json and results.csv: per grid point, the mean and sample std (ddof=1, as the reports) over
    completed seeds of each metric."""
    import csv

    import numpy as np

    rows = []
    for point in meta["points"]:
        finals = [e["final"] for run, e in zip(meta["runs"], entries, strict=True)
                  if run["point"] == point["label"] and e["status"] == "completed"]
        names = sorted({k for f in finals for k in f})
        values = {k: [float(f[k]) for f in finals if f.get(k) is not None] for k in names}
        rows.append({"point": point["label"], "params": point["params"], "seeds": meta["seeds"],
                     "completed": len(finals),
                     "mean": {k: float(np.mean(v)) if v else None for k, v in values.items()},
                     "std": {k: float(np.std(v, ddof=1)) if len(v) > 1 else None for k, v in values.items()}})
    write_json(sweep_dir / "results.json", rows)
    keys = list(meta["grid"]) or sorted({k for r in rows for k in r["params"]})
    metrics = sorted({k for r in rows for k in r["mean"]})
    with open(sweep_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", *keys, "completed", "seeds", *metrics])
        for r in rows:
            w.writerow([r["point"], *[r["params"].get(k) for k in keys], r["completed"], r["seeds"],
                        *["" if r["mean"].get(m) is None else repr(r["mean"][m]) for m in metrics]])
    return rows


def sweep_table(sweep_dir: Path | str) -> str:
    """The sweep's results as text: a legend of grid points, then one row per metric (mean over completed
    seeds), one column per point."""
    sweep_dir = Path(sweep_dir)
    try:
        rows = json.loads((sweep_dir / "results.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"no readable results.json in {sweep_dir} ({e}); resume the sweep to finish it") from None
    lines = [f"{r['point']}: {r['completed']}/{r['seeds']} seeds completed" for r in rows]
    metrics = sorted({k for r in rows for k in r["mean"]})
    ids = [r["point"].split("-", 1)[0] for r in rows]
    width = max([len(m) for m in metrics] + [6])
    lines += ["", f"{'metric (mean)':<{width}}  " + "  ".join(f"{i:>10}" for i in ids)]
    for m in metrics:
        cells = [r["mean"].get(m) for r in rows]
        lines.append(f"{m:<{width}}  " + "  ".join(f"{'-' if v is None else format(v, '.4g'):>10}" for v in cells))
    return "\n".join(lines)


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


RECORD_SUFFIXES = (".json", ".jsonl")  # what `archive(records_only=True)` keeps: configs, summaries, metrics, tables


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def archive(exp_dir: Path | str, dest: Path | str, *, records_only: bool = False) -> dict:
    """Copy an experiment or sweep folder to ``dest`` without its checkpoints, to share it or resume it elsewhere.

    Completed runs are copied without ``checkpoints/`` (they are never read again: ``reanalyse``, ``athanor
    report`` and ``--resume`` use each run's ``summary.json``, ``metrics.jsonl`` and artifacts). Runs that did not
    complete are left out, so ``athanor experiment NAME --resume DEST`` (or ``athanor sweep --resume DEST``)
    runs them from the start and keeps the others. ``records_only`` keeps only JSON and JSONL files (configs,
    summaries, metrics, tables, claims): no figures, videos or reports, a few tens of kB per run.
    The copy is written beside ``dest`` and renamed into place, so a failure leaves no half-made archive; ``dest``
    must not exist. Returns {"dest", "runs", "kept", "left_out" (run dirs), "bytes_before", "bytes_after"}.
    """
    src = Path(exp_dir)
    meta_file = next((f for f in ("experiment.json", "sweep.json") if (src / f).is_file()), "experiment.json")
    src, meta = _read_plan(src, meta_file, "an experiment or sweep directory", "athanor experiment")
    dest = Path(dest)
    if dest.exists():
        raise ConfigError(f"{dest} already exists; pass a new path to archive into")
    run_dirs = {str(r.get("dir")) for r in meta["runs"]}
    kept = [d for d in sorted(run_dirs) if _summary(src / d).get("status") == "completed"]
    left_out = sorted(run_dirs - set(kept))

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        skip = set()
        for name in names:
            path = here / name
            if here == src and name in run_dirs and name not in kept:
                skip.add(name)  # an incomplete run: resuming the archive runs it again from the start
            elif name == "checkpoints" and path.is_dir() and here.parent == src and here.name in run_dirs:
                skip.add(name)
            elif records_only and path.is_file() and path.suffix not in RECORD_SUFFIXES:
                skip.add(name)
        return skip

    tmp = dest.with_name(f".{dest.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        shutil.copytree(src, tmp, ignore=ignore)
        if records_only:  # folders left empty (figures/, videos/) carry nothing
            for folder in sorted((p for p in tmp.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if not any(folder.iterdir()):
                    folder.rmdir()
        tmp.rename(dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"cannot archive {src} to {dest} ({e.strerror or e}); pass a writable path with room") \
            from None
    return {"dest": dest, "runs": len(run_dirs), "kept": len(kept), "left_out": left_out,
            "bytes_before": _tree_bytes(src), "bytes_after": _tree_bytes(dest)}


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
