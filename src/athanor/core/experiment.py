"""The vocabulary of experiments: which runs, what they produced, and what the analysis concludes.

An experiment module (``athanor/experiments/<name>.py``, registered in ``experiments/__init__.py``) exports::

    SUMMARY: str                                   one line for `athanor list`
    SOURCE: str                                    the title of the writing it reproduces
    runs(scale) -> list[RunSpec]                   which systems, with which overrides
    analyse(records, scale) -> Analysis            claims, comparison artifacts, notes
    SEEDS: {scale: int}                            the seed count each scale is meant for (``full`` at least 3)
    KEY_FIGURE: str                                the artifact the gallery shows for the experiment

``athanor.api.run_experiment`` runs every RunSpec for every seed through the one run loop into
``<exp_dir>/<label>_s<seed>/`` and hands the records to ``analyse``. A run that fails (for example a non-finite
loss) is recorded in the notes with an empty ``final``; claims that need it come out inconclusive.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from athanor.core.claims import Claim

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
    """The final value of ``key`` for every seed of ``label``, in seed order (NaN where missing or failed)."""
    return [float(r.final[key]) if r.final.get(key) is not None else math.nan
            for r in sorted(records, key=lambda r: r.seed) if r.spec.label == label]


def seeds_of(records: Sequence[RunRecord]) -> list[int]:
    """Every seed any run of the experiment used, ascending."""
    return sorted({r.seed for r in records})


def paired(records: Sequence[RunRecord], fn: Callable[[Mapping[str, dict]], float]) -> list[float]:
    """``fn(finals)`` for every seed, ``finals`` mapping each label to that seed's final metrics ({} for a failed
    run): the per-seed value of a claim's check, e.g. ``lambda f: f["gan-mbd"]["bins"] - f["gan"]["bins"]``.
    A seed whose value cannot be computed (a missing metric, a failed run, a division by zero) gives NaN, which
    makes the check inconclusive rather than silently dropping the seed."""
    out = []
    for seed in seeds_of(records):
        finals = {r.spec.label: r.final for r in records if r.seed == seed}
        try:
            value = float(fn(finals))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            value = math.nan
        out.append(value)
    return out


def mean(records: Sequence[RunRecord], label: str, key: str) -> float:
    vals = metric(records, label, key)
    return float(np.mean(vals)) if vals else math.nan


def completed_runs(records: Sequence[RunRecord], label: str) -> list[RunRecord]:
    """The completed runs of ``label``, lowest seed first."""
    return sorted((r for r in records if r.spec.label == label and r.final), key=lambda r: r.seed)


def first_run(records: Sequence[RunRecord], label: str) -> RunRecord | None:
    """The completed run of ``label`` with the lowest seed (the one an experiment shows pictures of), or None."""
    done = completed_runs(records, label)
    return done[0] if done else None


def curves_over_seeds(records: Sequence[RunRecord], kinds: Mapping[str, str],
                      labels: Sequence[str] | None = None) -> list[dict]:
    """Logged metrics averaged over seeds, for ``viz.figures.curves(..., series="label")``: ``kinds`` maps each
    metric to the kind of metrics.jsonl row that carries it ("eval" or "train"); one row {"step", "label", metric:
    mean} per label, step and metric (``labels``: only these runs)."""
    from athanor.core.runs import read_metrics

    sums: dict[tuple[str, int, str], list[float]] = {}
    for r in records:
        if labels is not None and r.spec.label not in labels:
            continue
        for row in read_metrics(r.run_dir):
            for key, kind in kinds.items():
                if row.get("kind") == kind and isinstance(row.get(key), (int, float)):
                    sums.setdefault((r.spec.label, int(row["step"]), key), []).append(float(row[key]))
    return [{"step": step, "label": label, key: float(np.mean(v))} for (label, step, key), v in sorted(sums.items())]


def run_figures(records: Sequence[RunRecord], wanted: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Artifacts of the experiment's runs, to show with it: ``{name: (run label, the run's artifact name)}`` ->
    ``{name: table | image | video}`` read from the lowest-seed completed run of each label that has it (a run
    copied by ``athanor archive --records-only`` has no images or videos, so a later seed's are shown; missing
    ones left out)."""
    from athanor.core.runs import read_image, read_table, read_video

    out: dict[str, Any] = {}
    for name, (label, artifact) in wanted.items():
        for rec in completed_runs(records, label):
            art = next((a for read in (read_table, read_image, read_video)
                        if (a := read(rec.run_dir, artifact)) is not None), None)
            if art is not None:
                out[name] = art
                break
    return out
