"""Claims: a finding from the writing, checked against measured numbers.

A claim is judged only at a scale where it can count: at ``tiny`` every verdict is ``inconclusive`` by
construction (the runs are seconds long), and a claim whose measurement is missing or NaN is inconclusive too.
Thresholds are fixed in the experiment's code before any run; they are never tuned to the outcome.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from athanor.core.errors import AthanorError, ConfigError
from athanor.core.rundir import json_clean

VERDICTS = ("reproduced", "not_reproduced", "inconclusive")


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    metric: str
    threshold: Any
    measured: Any
    verdict: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _has_nan(x: Any) -> bool:
    if isinstance(x, float):
        return not math.isfinite(x)
    if isinstance(x, dict):
        return any(_has_nan(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_has_nan(v) for v in x)
    return x is None


def judge(id: str, statement: str, metric: str, threshold: Any, measured: Any, holds: bool | None,
          scale: str) -> Claim:
    """Verdict from ``holds`` (computed by the caller from ``measured`` and ``threshold``).

    ``holds=None`` says the measurement cannot decide the claim (e.g. every compared success rate sits at 0, a
    floor where "equal" and "better" mean nothing); the verdict is then inconclusive, as at ``tiny`` scale.
    """
    if scale == "tiny" or holds is None or _has_nan(measured):
        verdict = "inconclusive"
    else:
        verdict = "reproduced" if holds else "not_reproduced"
    return Claim(id, statement, metric, threshold, json_clean(measured, digits=6), verdict)


def load(path: Path) -> list[dict]:
    """Read claims.json from an experiment directory (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "claims.json"
    if not path.is_file():
        raise ConfigError(f"no claims.json at {path}; claims belong to experiment directories "
                          f"(made by `athanor experiment NAME`)")
    try:
        items = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise AthanorError(f"{path} is not valid JSON ({e}); re-run `athanor experiment` to rebuild it") from None
    return items


def tally(items: list[dict]) -> dict[str, int]:
    return {v: sum(1 for c in items if c.get("verdict") == v) for v in VERDICTS}


def format_table(items: list[dict]) -> str:
    rows = [("verdict", "id", "measured", "threshold")]
    for c in items:
        rows.append((c["verdict"], c["id"], json.dumps(c["measured"]), json.dumps(c["threshold"])))
    widths = [min(60, max(len(r[i]) for r in rows)) for i in range(4)]
    lines = ["  ".join(str(cell)[:w].ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    t = tally(items)
    lines.append(f"{t['reproduced']} reproduced, {t['not_reproduced']} not reproduced, "
                 f"{t['inconclusive']} inconclusive")
    return "\n".join(lines)
