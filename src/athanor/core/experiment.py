"""Experiments: several runs (systems x seeds), a comparison, and the claims they check.

An experiment module (``athanor/experiments/<name>.py``) exports::

    SUMMARY: str
    runs(scale) -> list[RunSpec]                  which systems, with which overrides
    analyse(records, scale) -> Analysis           claims, comparison artifacts, notes

Every run goes through the one run loop (``core.runloop``) into ``<exp_dir>/<label>_s<seed>/``. A run that
fails (for example a non-finite loss) is recorded in the notes; claims that need it come out inconclusive.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from athanor.core.claims import Claim
from athanor.core.errors import AthanorError, ConfigError
from athanor.core.rundir import now_iso, timestamp, unique_dir, write_json

SCALES = ("tiny", "quick", "full")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    system: str
    label: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RunRecord:
    spec: RunSpec
    seed: int
    run_dir: Path
    final: dict[str, float]  # empty when the run failed


@dataclasses.dataclass
class Analysis:
    claims: list[Claim]
    artifacts: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


def metric(records: Sequence[RunRecord], label: str, key: str) -> list[float]:
    """The final value of ``key`` for every seed of ``label`` (NaN where missing or failed)."""
    return [float(r.final[key]) if r.final.get(key) is not None else math.nan
            for r in records if r.spec.label == label]


def mean(records: Sequence[RunRecord], label: str, key: str) -> float:
    vals = metric(records, label, key)
    return float(np.mean(vals)) if vals else math.nan


def run_experiment(name: str, *, scale: str = "quick", seeds: int | None = None, out: Path | str = "runs",
                   progress: bool = True) -> Path:
    """Run every run of experiment ``name`` at ``scale`` for seeds 0..seeds-1, then analyse; returns its folder.

    ``seeds`` None takes the experiment's own count for the scale (its module's ``SEEDS[scale]``), else 1.
    """
    from athanor.core.runloop import start_run
    from athanor.experiments import get_experiment
    from athanor.report.html import gallery

    if scale not in SCALES:
        raise ConfigError(f"unknown scale '{scale}'; choose one of {', '.join(SCALES)}")
    module = get_experiment(name)
    if seeds is None:
        seeds = int(getattr(module, "SEEDS", {}).get(scale, 1))
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    specs = module.runs(scale)
    out = Path(out)
    exp_dir = unique_dir(out / name, timestamp())
    t0 = time.perf_counter()
    records: list[RunRecord] = []
    notes: list[str] = []
    listing = []
    total = len(specs) * seeds
    for seed in range(seeds):
        for spec in specs:
            k = len(records) + 1
            if progress:
                print(f"[{k}/{total}] {name}: {spec.label} (seed {seed}, {scale})", file=sys.stderr)
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
            listing.append({"system": spec.system, "label": spec.label, "seed": seed,
                            "dir": run_dir.name})
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
    import json

    from athanor.experiments import get_experiment

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
