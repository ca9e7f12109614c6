"""`athanor tour`: every experiment at one scale, under one progress display, into one gallery.

    run_tour("quick", out="runs")  -> TourResult   each registered experiment in turn, then runs/index.html

Each experiment goes through ``athanor.api.run_experiment(name, scale=..., out=..., progress=False, **kwargs)``
(extra keyword arguments, such as an executor's, are passed through unchanged), so a tour is exactly the
experiments one would run by hand. The runs' own progress bars are off; instead one bar counts every run of
every experiment, and a line is printed as each run finishes. The tour learns that a run finished from the
files the run loop writes (a new ``summary.json`` under the experiment's new folder), so it needs no hook into
the API and works however the runs are executed.

A failed experiment (any exception but Ctrl-C) is reported with its error and the tour goes on with the next
one. At the end the gallery is rebuilt and ``<out>/tour.json`` records the scale, every experiment's outcome,
folder and time, and the total wall time with the machine it was measured on; the gallery shows it.

Layering: ``cli -> tour -> api``; the tour reads run folders only through their JSON files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from athanor import __version__
from athanor.core.claims import tally
from athanor.core.errors import AthanorError
from athanor.core.rundir import git_sha, now_iso, write_json
from athanor.report.html import fmt_seconds as format_seconds

__all__ = ["TOUR_FILE", "ExperimentOutcome", "TourResult", "run_tour", "format_seconds"]

TOUR_FILE = "tour.json"
POLL_S = 0.5


@dataclasses.dataclass
class ExperimentOutcome:
    name: str
    status: str = "pending"  # completed | failed | interrupted | pending (not reached)
    dir: Path | None = None
    wall_s: float = 0.0
    runs_planned: int = 0
    runs_finished: int = 0  # runs whose summary.json appeared
    runs_failed: int = 0  # of those, the ones not completed
    claims: dict[str, int] | None = None
    error: str | None = None

    def to_json(self, out: Path) -> dict:
        rel = None
        if self.dir is not None:
            try:
                rel = self.dir.relative_to(out).as_posix()
            except ValueError:
                rel = self.dir.as_posix()
        return {"name": self.name, "status": self.status, "dir": rel, "wall_s": round(self.wall_s, 2),
                "runs": self.runs_planned, "runs_finished": self.runs_finished, "runs_failed": self.runs_failed,
                "claims": self.claims, "error": self.error}


@dataclasses.dataclass
class TourResult:
    scale: str
    out: Path
    experiments: list[ExperimentOutcome]
    wall_s: float
    status: str  # completed | failed (some experiment failed) | interrupted
    gallery: Path | None
    record: Path

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def summary(self) -> str:
        """The lines `athanor tour` ends with: outcome, total time, where the gallery and the record are."""
        done = [e for e in self.experiments if e.status == "completed"]
        failed = [e.name for e in self.experiments if e.status == "failed"]
        head = (f"tour: {len(self.experiments)} experiments at {self.scale} scale, {len(done)} completed"
                + (f", {len(failed)} failed ({', '.join(failed)})" if failed else "")
                + f"; total time {format_seconds(self.wall_s)}"
                + (f" ({self.wall_s:.0f} s)" if self.wall_s >= 60 else ""))
        lines = [head]
        if self.gallery is not None:
            lines.append(f"gallery: {self.gallery}")
        lines.append(f"record: {self.record}")
        return "\n".join(lines)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _tally(exp_dir: Path) -> dict[str, int] | None:
    claims = _read(exp_dir / "claims.json")
    if not isinstance(claims, list):
        return None
    items = [c for c in claims if isinstance(c, dict)]
    return {**tally(items), "total": len(items)}


def _error_text(err: Exception) -> str:
    """An AthanorError's own message (it names the fix); anything else with its type."""
    text = " ".join(str(err).split()) if isinstance(err, AthanorError) else f"{type(err).__name__}: {err}"
    return text if len(text) <= 500 else text[:497] + "..."


def _planned_runs(name: str, scale: str, seeds: int | None) -> int:
    """How many runs ``run_experiment`` will make: the experiment's runs times its seeds at this scale."""
    from athanor.experiments import get_experiment

    module = get_experiment(name)
    n_seeds = seeds if seeds is not None else int(getattr(module, "SEEDS", {}).get(scale, 1))
    return len(module.runs(scale)) * max(int(n_seeds), 1)


class _RunWatcher:
    """Sees runs finish: a ``summary.json`` that appears under a folder of ``parent`` made after ``start``.

    ``poll`` is called by a background thread every ``POLL_S`` seconds and once more, from the caller, when the
    experiment returns; each finished run is reported once to ``on_run(run_dir, summary)``.
    """

    def __init__(self, parent: Path, on_run: Callable[[Path, dict], None]):
        self.parent, self.on_run = parent, on_run
        self.before = set(self._children())
        self.seen: set[Path] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="athanor-tour-watch", daemon=True)

    def _children(self) -> list[Path]:
        try:
            return [p for p in self.parent.iterdir() if p.is_dir()]
        except OSError:
            return []

    def new_dirs(self) -> list[Path]:
        return sorted(p for p in self._children() if p not in self.before)

    def poll(self) -> None:
        with self.lock:
            for exp_dir in self.new_dirs():
                for summary_path in sorted(exp_dir.glob("*/summary.json")):
                    run_dir = summary_path.parent
                    if run_dir in self.seen:
                        continue
                    summary = _read(summary_path)
                    if isinstance(summary, dict) and isinstance(summary.get("status"), str):
                        self.seen.add(run_dir)
                        self.on_run(run_dir, summary)

    def _loop(self) -> None:
        while not self.stop.wait(POLL_S):
            self.poll()

    def __enter__(self) -> _RunWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.poll()


def _run_line(name: str, run_dir: Path, summary: dict) -> str:
    config = _read(run_dir / "config.json")
    config = config if isinstance(config, dict) else {}
    label = config.get("label") or run_dir.name.rsplit("_s", 1)[0]
    seed = config.get("seed", run_dir.name.rsplit("_s", 1)[-1])
    wall = summary.get("wall_s")
    took = format_seconds(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else "?"
    status = summary["status"]
    mark = "ok  " if status == "completed" else "FAIL"
    return f"{mark} {name}: {label} seed {seed} {status} in {took}"


def _experiment_line(e: ExperimentOutcome) -> str:
    took = format_seconds(e.wall_s)
    if e.status == "completed":
        t = e.claims
        claims = (f"; claims {t['reproduced']}/{t['total']} reproduced, {t['not_reproduced']} not reproduced, "
                  f"{t['inconclusive']} inconclusive") if t and t["total"] else ""
        failed = f", {e.runs_failed} failed" if e.runs_failed else ""
        return f"== {e.name}: completed in {took} ({e.runs_finished}/{e.runs_planned} runs{failed}){claims}"
    return f"== {e.name}: {e.status.upper()} after {took}: {e.error}"


def run_tour(scale: str = "quick", *, out: Path | str = "runs", names: Sequence[str] | None = None,
             seeds: int | None = None, progress: bool = True, stream: TextIO | None = None,
             **experiment_kwargs: Any) -> TourResult:
    """Run every experiment in ``names`` (default: every registered one) at ``scale`` into ``out``.

    ``experiment_kwargs`` go to ``athanor.api.run_experiment`` unchanged. With ``progress`` one bar counts every
    run and a line reports each finished run; each experiment's outcome is reported either way (on ``stream``,
    default stderr). Ctrl-C stops the tour (the record is still written) and propagates.
    """
    from tqdm.auto import tqdm

    from athanor import api
    from athanor.experiments import EXPERIMENTS
    from athanor.report.html import gallery

    stream = stream if stream is not None else sys.stderr
    out = Path(out)
    names = list(EXPERIMENTS) if names is None else list(names)
    outcomes = [ExperimentOutcome(n) for n in names]
    for e in outcomes:
        try:
            e.runs_planned = _planned_runs(e.name, scale, seeds)
        except Exception as err:  # noqa: BLE001 - reported as this experiment's failure when its turn comes
            e.status, e.error = "failed", _error_text(err)
    if seeds is not None:
        experiment_kwargs["seeds"] = seeds

    started, t0, status = now_iso(), time.perf_counter(), "interrupted"
    bar = tqdm(total=sum(e.runs_planned for e in outcomes), unit="run", desc=f"tour ({scale})", file=stream,
               disable=not progress, dynamic_ncols=True)

    def say(line: str) -> None:
        bar.write(line, file=stream)
        stream.flush()

    try:
        for e in outcomes:
            if e.status == "failed":  # could not even be planned
                say(_experiment_line(e))
                continue
            bar.set_postfix_str(e.name)

            def on_run(run_dir: Path, summary: dict, e: ExperimentOutcome = e) -> None:
                e.runs_finished += 1
                e.runs_failed += summary.get("status") != "completed"
                if progress:
                    say(_run_line(e.name, run_dir, summary))
                bar.update(1)

            watcher = _RunWatcher(out / e.name, on_run)
            t1 = time.perf_counter()
            try:
                with watcher:
                    e.dir = api.run_experiment(e.name, scale=scale, out=out, progress=False, **experiment_kwargs)
                e.status = "completed"
                e.claims = _tally(e.dir)
            except KeyboardInterrupt:
                e.status, e.error = "interrupted", "Ctrl-C"
                raise
            except Exception as err:  # noqa: BLE001 - one broken experiment must not end the tour
                e.status, e.error = "failed", _error_text(err)
                if not isinstance(err, AthanorError):  # unexpected: keep the traceback for whoever fixes it
                    say(traceback.format_exc().rstrip())
            finally:
                e.wall_s = time.perf_counter() - t1
                if e.dir is None:
                    new = watcher.new_dirs()
                    e.dir = new[-1] if new else None
                bar.update(max(e.runs_planned - e.runs_finished, 0))  # runs that never finished
            say(_experiment_line(e))
        status = "completed" if all(e.status == "completed" for e in outcomes) else "failed"
    finally:
        bar.close()
        wall_s = time.perf_counter() - t0
        record = _write_record(out, scale, status, started, wall_s, outcomes, experiment_kwargs)

    index = None
    try:
        index = gallery(out)
    except (AthanorError, OSError, ValueError) as err:
        say(f"the gallery could not be built: {err}")
        status = "failed"
    return TourResult(scale, out, outcomes, wall_s, status, index, record)


def _write_record(out: Path, scale: str, status: str, started: str, wall_s: float,
                  outcomes: list[ExperimentOutcome], options: dict) -> Path:
    """``<out>/tour.json``: the tour's outcome and total time, with the machine that measured it."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    record = {
        "scale": scale, "status": status, "started": started, "finished": now_iso(),
        "wall_s": round(wall_s, 2), "wall": format_seconds(wall_s),
        "experiments": [e.to_json(out) for e in outcomes],
        "options": {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
                    for k, v in options.items()},
        "version": __version__, "git_sha": git_sha(),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version(), "cpus": cpus},
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / TOUR_FILE
    write_json(path, record)
    return path
