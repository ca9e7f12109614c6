"""Claims: a finding from the writing, checked against numbers measured over seeds.

A claim is one or more **checks**. A check is a quantity measured once per seed (a paired difference such as
``bins(gan-mbd) - bins(gan)``, a ratio, a rate) compared with a threshold fixed in the experiment's code before
any run; thresholds are never tuned to the outcome.

The verdict rule (the same for every claim; ``RULE`` in words):

- Each check's per-seed values give a mean and a **95% Student t interval** of the mean,
  ``mean +- t(0.975, n-1) * s / sqrt(n)`` (s the sample standard deviation, ddof=1). The t interval is used
  rather than a bootstrap because an experiment has 3-5 seeds, where a percentile bootstrap's intervals are far
  too narrow (with 3 values it can only return the range of the data).
- A check is ``reproduced`` when its whole interval lies on the claimed side of the threshold (for ``within``,
  inside the band), ``not_reproduced`` when its whole interval lies on the other side (outside the band), and
  ``inconclusive`` when the interval straddles the threshold. Equal per-seed values give a zero-width interval,
  so three seeds that agree decide a check.
- A claim is ``reproduced`` when every check is; ``not_reproduced`` when any check is; otherwise inconclusive.
- Inconclusive regardless of the numbers: at ``tiny`` scale (the runs are seconds long); with one seed (no
  interval: a finding decided on one seed is an anecdote); when a measurement is missing or not finite (a failed
  run); when the claim's own precondition fails (``valid=False``, e.g. every compared success rate is 0, or the
  compared runs spent different numbers of evaluations).

Every claim also records ``leans``: the verdict the means alone would give (what a single point estimate says),
shown beside an inconclusive verdict so a one-seed quick run still tells the reader which way it points.

A check may be marked ``once=True`` when its value is not a per-seed measurement but one computation that carries
its own error bars (the Monte Carlo check of the analytic KL, judged by a z-score): it is judged on its value.

claims.json keeps the fields it always had (id, statement, metric, threshold, measured, verdict) and adds
``seeds``, ``interval``, ``rule``, ``leans``, ``reason`` and ``checks`` (per check: name, op, threshold, per_seed,
mean, ci, verdict). ``athanor claims DIR --reanalyse`` re-judges stored runs under this rule.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from athanor.core.errors import AthanorError, ConfigError
from athanor.core.rundir import json_clean

__all__ = ["VERDICTS", "OPS", "INTERVAL", "RULE", "Check", "Claim", "claim", "t_interval", "judge_check", "load",
           "tally", "format_table"]

VERDICTS = ("reproduced", "not_reproduced", "inconclusive")
OPS = (">", ">=", "<", "<=", "within")
INTERVAL = "95% Student t interval of the mean over seeds"
RULE = ("reproduced when every check's 95% t interval over seeds lies on the claimed side of its threshold; "
        "not reproduced when any check's interval lies wholly on the other side; inconclusive when an interval "
        "straddles its threshold, with one seed, at tiny scale, or when a measurement is missing")
LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Check:
    """``values`` (one per seed) ``op`` ``threshold``: e.g. ``Check("bins(mbd) - bins(gan)", [4, 1, 5], ">", 0)``.

    ``threshold`` is a number, or a (lo, hi) pair for ``op="within"`` (lo <= x <= hi).
    """

    name: str
    values: Sequence[float]
    op: str
    threshold: float | tuple[float, float]
    once: bool = False

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"check '{self.name}': op must be one of {OPS}, got {self.op!r}")
        if (self.op == "within") != isinstance(self.threshold, (tuple, list)):
            raise ValueError(f"check '{self.name}': 'within' takes a (lo, hi) threshold, the others a number")

    def condition(self) -> str:
        if self.op == "within":
            lo, hi = self.threshold
            return f"in [{lo:g}, {hi:g}]"
        return f"{self.op} {self.threshold:g}"


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    metric: str
    threshold: Any
    measured: Any
    verdict: str
    seeds: int = 0
    interval: str = INTERVAL
    rule: str = RULE
    leans: str | None = None
    reason: str | None = None
    checks: tuple[dict, ...] = ()

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["checks"] = list(self.checks)
        return d


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The Student t interval of the mean of ``values`` (None for fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    from scipy import stats

    m, s = float(x.mean()), float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * s / math.sqrt(x.size)
    return m - half, m + half


def _side(lo: float, hi: float, op: str, thr) -> str:
    """Verdict of an interval [lo, hi] (a point when lo == hi) against ``op thr``."""
    if op == "within":
        a, b = thr
        if a <= lo and hi <= b:
            return "reproduced"
        return "not_reproduced" if hi < a or lo > b else "inconclusive"
    holds = {">": lambda x: x > thr, ">=": lambda x: x >= thr, "<": lambda x: x < thr, "<=": lambda x: x <= thr}[op]
    worst, best = (lo, hi) if op in (">", ">=") else (hi, lo)
    if holds(worst):
        return "reproduced"
    return "not_reproduced" if not holds(best) else "inconclusive"


def judge_check(check: Check) -> dict:
    """One check's record: per-seed values, mean, interval and verdict (module docstring's rule)."""
    vals = [float(v) if v is not None else math.nan for v in check.values]
    finite = bool(vals) and all(math.isfinite(v) for v in vals)
    mean = float(np.mean(vals)) if finite else None
    ci = t_interval(vals) if finite and not check.once else None
    if not finite:
        verdict, lean = "inconclusive", None
    else:
        lean = _side(mean, mean, check.op, check.threshold)
        if check.once:
            verdict = lean
        else:
            verdict = _side(*ci, check.op, check.threshold) if ci is not None else "inconclusive"
    thr = list(check.threshold) if check.op == "within" else check.threshold
    return json_clean({"name": check.name, "op": check.op, "threshold": thr,
                       "per_seed": [v if math.isfinite(v) else None for v in vals], "mean": mean,
                       "ci": list(ci) if ci is not None else None, "verdict": verdict, "lean": lean,
                       "once": check.once}, digits=6)


def _combine(verdicts: Sequence[str | None]) -> str | None:
    if any(v is None for v in verdicts):
        return None
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "not_reproduced" if "not_reproduced" in verdicts else "inconclusive"


def claim(id: str, statement: str, checks: Sequence[Check], scale: str, *, valid: bool = True,
          why_invalid: str = "", measured: Any = None) -> Claim:
    """Judge ``checks`` under the module's rule. ``measured`` (default: each check's per-seed values) is the
    context shown beside the verdict; ``valid=False`` makes the claim inconclusive with ``why_invalid``."""
    if not checks:
        raise ValueError(f"claim '{id}' has no checks")
    records = tuple(judge_check(c) for c in checks)
    seeds = max(len(c.values) for c in checks if not c.once) if any(not c.once for c in checks) else 1
    leans = _combine([r["lean"] for r in records])
    verdict = _combine([r["verdict"] for r in records]) or "inconclusive"
    reason = None
    if scale == "tiny":
        verdict, reason = "inconclusive", "tiny scale: the runs are seconds long"
    elif not valid:
        verdict, reason = "inconclusive", why_invalid or "the claim's precondition does not hold"
    elif any(r["mean"] is None for r in records):
        verdict, reason = "inconclusive", "a measurement is missing or not finite (a failed run?)"
    elif seeds < 2 and not all(c.once for c in checks):
        verdict, reason = "inconclusive", "one seed: no interval"
    elif verdict == "inconclusive":
        reason = "an interval straddles its threshold"
    if measured is None:
        measured = {c.name: (list(c.values) if len(c.values) != 1 else c.values[0]) for c in checks}
    return Claim(id, statement, "; ".join(c.name for c in checks), "; ".join(c.condition() for c in checks),
                 json_clean(measured, digits=6), verdict, seeds=seeds, leans=leans, reason=reason, checks=records)


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
        raise AthanorError(f"{path} is not valid JSON ({e}); rebuild it with `athanor claims DIR --reanalyse`") \
            from None
    if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
        raise AthanorError(f"{path} is not a list of claims; rebuild it with `athanor claims DIR --reanalyse`")
    return items


def tally(items: list[dict]) -> dict[str, int]:
    return {v: sum(1 for c in items if c.get("verdict") == v) for v in VERDICTS}


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return format(x, ".4g")
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return "—" if x is None else str(x)


def format_table(items: list[dict]) -> str:
    """The claims as text: one line per claim, one indented line per check (per-seed values, mean, interval)."""
    lines = []
    for c in items:
        verdict = c.get("verdict", "?")
        if verdict == "inconclusive" and c.get("leans"):
            verdict += f" (leans {c['leans'].replace('_', ' ')})"
        lines.append(f"{verdict:<38} {c.get('id', '?')}  [{c.get('seeds', '?')} seed(s)]"
                     + (f"  {c['reason']}" if c.get("reason") else ""))
        for k in c.get("checks") or []:
            thr = k["threshold"]
            cond = f"in {_fmt(thr)}" if k["op"] == "within" else f"{k['op']} {_fmt(thr)}"
            ci = f"95% CI {_fmt(k['ci'])}" if k.get("ci") else "no interval"
            lines.append(f"    {k['verdict']:<15} {k['name']} {cond}: per seed {_fmt(k['per_seed'])}, "
                         f"mean {_fmt(k['mean'])}, {ci}")
        if not c.get("checks"):
            lines.append(f"    measured {json.dumps(c.get('measured'))}, threshold {json.dumps(c.get('threshold'))}")
    t = tally(items)
    lines.append(f"{t['reproduced']} reproduced, {t['not_reproduced']} not reproduced, "
                 f"{t['inconclusive']} inconclusive")
    if any(c.get("checks") for c in items):
        lines.append(f"rule: {RULE}")
    return "\n".join(lines)
