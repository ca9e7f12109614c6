"""Static HTML reports built from run and experiment directories alone.

Three pages, each a Jinja2 template in ``report/templates`` rendered with ``autoescape=True``:

- :func:`run_report` ``<run>/report.html``: status, config, final metrics, metric curves (drawn here into
  ``figures/curves.png`` from ``metrics.jsonl``: train and eval records, one panel per metric logged at
  two or more steps; metrics logged once, such as a single final evaluation, stay in the table), every
  figure, every table (a heatmap's picture plus its numbers; a text table as an HTML table), every video.
- :func:`experiment_report` ``<experiment>/report.html``: the claims table first (verdicts coloured; per
  check the per-seed values, mean, interval, condition and check verdict; the interval kind and the verdict
  rule once under the table; beside an inconclusive verdict the way its point estimate leans, and why it is
  inconclusive; claims.json files written before checks show metric, threshold and measured value; numbers to
  4 significant digits), then final metrics per system label as mean +- std over seeds (sample std, ddof=1; a
  single seed shows no spread), experiment-level figures and tables, and one section per run linking its own
  report (built here too) and showing its pictures.
- :func:`gallery` ``<runs_root>/index.html``: one table of every claim of the newest folder of each experiment
  at each scale (experiment, scale, seeds, verdict, the point estimate's lean), a card per such experiment (its
  key figure: experiment.json's ``key_figure``, else its first figure; its verdict tally; links to its report
  and claims.json), a card per stand-alone run, older folders of the same experiment and scale in a list, and
  the last ``athanor tour`` (``tour.json``: total time, failures). Reports that do not exist yet are built.

Design choices: pages are self-contained apart from relative links to files next to them (no scripts,
no remote assets, CSS inline in ``base.html``; a Content-Security-Policy forbids scripts outright), so a run
folder can be copied or zipped and still reads. Small PNGs (pictures of pixels: samples, mazes) are enlarged
without smoothing; plots are scaled smoothly. Every piece of text that comes from a directory (config
values, names, messages, claim statements, file names) reaches the page only through Jinja's autoescaping;
links are relative paths with every segment percent-quoted, so a crafted name cannot become a
``javascript:`` URL. ``tests/report/test_browser.py`` opens the pages in Chromium and checks all of this. A damaged or
missing optional file (summary, claims, a table) shows up as a note on the page instead of stopping the
report; a missing ``config.json`` or ``experiment.json`` is a :class:`DataError` naming the fix.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import numpy as np

from athanor import __version__
from athanor.core.artifact_io import atomic_write_text, write_png
from athanor.core.artifacts import TextTable, table_from_json
from athanor.core.errors import AthanorError, DataError
from athanor.core.runs import read_metrics

__all__ = ["run_report", "experiment_report", "gallery", "fmt_value", "fmt_seconds"]

META_KEYS = ("step", "kind", "wall_s")
CURVES = "curves"
VERDICT_CLASS = {"reproduced": "good", "not_reproduced": "bad", "inconclusive": "neutral"}
STATUS_CLASS = {"completed": "good", "failed": "bad", "interrupted": "warn"}
PIXEL_PICTURE = 160  # px: a smaller PNG is a picture of pixels (samples, a maze), enlarged on every page
SKIP_DIRS = frozenset({"checkpoints", "figures", "tables", "videos"})

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# ---------------------------------------------------------------------------------------------- helpers

def fmt_value(x: Any) -> str:
    """Display form of a number, string or nested dict/list: numbers to 4 significant digits."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return format(float(x), ".4g")
    if isinstance(x, Mapping):
        return ", ".join(f"{k}: {fmt_value(v)}" for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt_value(v) for v in x) + "]"
    return str(x)


def _fmt_config(x: Any) -> str:
    """Config values are shown as written (full precision), containers as JSON."""
    if isinstance(x, (dict, list)):
        return json.dumps(x)
    if x is None:
        return "None"
    return str(x)


def fmt_seconds(seconds: Any) -> str:
    """A duration as people read it: "12.3 s", "12 min 34 s", "3 h 01 min" ("—" when not a number)."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Naive stamps are taken as UTC so that they sort against aware ones.
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _sha(config: dict) -> str | None:
    """The run's commit, marked when the run's code had uncommitted changes."""
    sha = config.get("git_sha")
    return f"{sha} (with uncommitted changes)" if sha and config.get("git_dirty") else sha


def _fmt_time(value: Any) -> str:
    t = _parse_time(value)
    if t is None:
        return str(value) if value else "—"
    return t.strftime("%Y-%m-%d %H:%M %Z").strip()


def _href(target: Path, start: Path) -> str:
    """A relative, percent-quoted link from folder ``start`` to ``target``."""
    rel = Path(os.path.relpath(target, start)).as_posix()
    return "/".join(quote(part, safe="") for part in rel.split("/"))


def _is_pixel_picture(path: Path | None) -> bool:
    """A PNG small enough (under ``PIXEL_PICTURE`` px on its longer side) to be a picture of pixels, such as a
    grid of samples or a maze, rather than a plot: it is enlarged without smoothing."""
    if path is None:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return False
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return False
    width, height = struct.unpack(">II", head[16:24])
    return max(width, height) < PIXEL_PICTURE


def _load_json(path: Path) -> tuple[Any, str | None]:
    """(data, None) on success, (None, None) if absent, (None, message) if unreadable."""
    if not path.exists():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"{path.name} could not be read ({e}); the file is damaged: re-run to regenerate it"


def _require_json(path: Path, what: str, fix: str) -> dict:
    data, err = _load_json(path)
    if err is not None:
        raise DataError(err)
    if data is None:
        raise DataError(f"{path.parent} is not {what}: {path.name} is missing; {fix}")
    if not isinstance(data, dict):
        raise DataError(f"{path} should hold a JSON object, found {type(data).__name__}; {fix}")
    return data


def _render(template: str, out: Path, **context: Any) -> Path:
    html = _ENV.get_template(template).render(version=__version__, **context)
    return atomic_write_text(out, html)


def _status(summary: Any) -> str:
    if isinstance(summary, dict) and isinstance(summary.get("status"), str):
        return summary["status"]
    return "unknown"


# ----------------------------------------------------------------------------------- directory contents

def _table_view(path: Path, png: Path | None, page_dir: Path) -> dict:
    """A Heatmap's picture and numbers, or a TextTable's cells (``text``: columns and rows, no picture)."""
    view = {"name": path.stem, "png": _href(png, page_dir) if png else None, "pix": _is_pixel_picture(png),
            "title": "", "cols": [],
            "rows": [], "text": None, "error": None}
    data, err = _load_json(path)
    try:
        if err is not None:
            raise ValueError(err)
        table = table_from_json(data)
    except (ValueError, KeyError, TypeError) as e:
        view["error"] = f"table {path.name} could not be read: {e}"
        return view
    view["title"] = table.title
    if isinstance(table, TextTable):
        view.update(png=None, pix=False, text={"columns": list(table.columns), "rows": [list(r) for r in table.rows]})
        return view
    view["cols"] = [str(c) for c in table.cols]
    for label, row in zip(table.rows, table.values, strict=True):
        cells = []
        for v in row:
            if not math.isfinite(v):
                cells.append("")
                continue
            try:
                cells.append(format(float(v), table.fmt))
            except (ValueError, TypeError):
                cells.append(format(float(v), ".4g"))
        view["rows"].append((str(label), cells))
    return view


def _media(base: Path, page_dir: Path, *, skip_curves: bool) -> dict:
    """Figures, tables and videos under ``base`` with links relative to ``page_dir``."""
    fig_dir, tab_dir, vid_dir = base / "figures", base / "tables", base / "videos"
    tables = sorted(tab_dir.glob("*.json")) if tab_dir.is_dir() else []
    table_stems = {p.stem for p in tables}
    pngs = sorted([*fig_dir.glob("*.png"), *fig_dir.glob("*.svg")]) if fig_dir.is_dir() else []
    figures = [{"name": p.stem, "href": _href(p, page_dir), "pix": _is_pixel_picture(p)} for p in pngs
               if p.stem not in table_stems and not (skip_curves and p.stem == CURVES)]
    table_views = [_table_view(t, fig_dir / f"{t.stem}.png" if (fig_dir / f"{t.stem}.png").exists() else None,
                               page_dir) for t in tables]
    videos = []
    if vid_dir.is_dir():
        stems = sorted({p.stem for p in vid_dir.iterdir() if p.suffix in (".mp4", ".gif")})
        for stem in stems:
            mp4 = vid_dir / f"{stem}.mp4"
            path, kind = (mp4, "video") if mp4.exists() else (vid_dir / f"{stem}.gif", "gif")
            videos.append({"name": stem, "href": _href(path, page_dir), "kind": kind})
    return {"figures": figures, "tables": table_views, "videos": videos}


def _metric_keys(records: Iterable[Mapping]) -> tuple[list[str], list[str]]:
    """(metrics logged at two or more steps, metrics logged once), "loss" first, else in log order.

    A metric with one value (typically the final evaluation) is a dot, not a curve; it is left to the
    final-metrics table so that the figure stays readable.
    """
    counts: dict[str, int] = {}
    for rec in records:
        for k, v in rec.items():
            finite = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if finite and k not in META_KEYS:
                counts[k] = counts.get(k, 0) + 1
    keys = sorted(counts, key=lambda k: k != "loss")  # stable: keeps log order otherwise
    return [k for k in keys if counts[k] > 1], [k for k in keys if counts[k] == 1]


def _final_metrics(summary: Any, records: list[dict]) -> dict:
    """summary.json's ``final``; without one, the last eval record (else the last train record)."""
    if isinstance(summary, dict) and isinstance(summary.get("final"), dict) and summary["final"]:
        return summary["final"]
    for kind in ("eval", "train"):
        last = [r for r in records if r.get("kind", "train") == kind]
        if last:
            return {k: v for k, v in last[-1].items() if k not in META_KEYS}
    return {}


def _find_experiment(run_dir: Path) -> Path | None:
    for parent in list(run_dir.resolve().parents)[:3]:
        if (parent / "experiment.json").exists():
            return parent
    return None


# ------------------------------------------------------------------------------------------- run report

def run_report(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/report.html`` (and ``figures/curves.png``) from the run directory's files."""
    run_dir = Path(run_dir)
    config = _require_json(run_dir / "config.json", "a run directory",
                           "pass a folder written by `athanor run` (runs/<system>/<timestamp>_s<seed>)")
    summary, summary_err = _load_json(run_dir / "summary.json")
    records = read_metrics(run_dir)
    notes = [summary_err] if summary_err else []
    if summary is None and not summary_err:
        notes.append("summary.json is missing: the run is still going or stopped before it finished; "
                     "numbers below come from metrics.jsonl")

    curves_href = None
    keys, single = _metric_keys(records)
    if not keys:
        keys, single = single, []
    if keys:
        from athanor.viz.figures import curves

        png = write_png(run_dir / "figures" / f"{CURVES}.png",
                        curves(records, keys, title=str(config.get("system", ""))))
        curves_href = _href(png, run_dir)

    status = _status(summary)
    summary = summary if isinstance(summary, dict) else {}
    # "runtime": the system's framework, version and devices ("jax" in run directories made before it existed)
    runtime = next((config[k] for k in ("runtime", "jax") if isinstance(config.get(k), dict)), {})
    meta = [
        ("system", config.get("system")), ("family", config.get("family")), ("seed", config.get("seed")),
        *([("label", config["label"])] if config.get("label") not in (None, config.get("system")) else []),
        ("preset", config.get("preset")), ("created", _fmt_time(config.get("created"))),
        ("athanor version", config.get("version")), ("git sha", _sha(config)),
        ("runtime", ", ".join(f"{k} {fmt_value(v)}" for k, v in runtime.items()) or None),
    ]
    cfg = config.get("config") if isinstance(config.get("config"), dict) else {}
    overrides = config.get("overrides") if isinstance(config.get("overrides"), dict) else {}
    final = _final_metrics(summary, records)
    exp_dir = _find_experiment(run_dir)
    return _render(
        "run.html", run_dir / "report.html",
        title=f"{config.get('system', run_dir.parent.name)} · {run_dir.name}",
        system=str(config.get("system", "?")), run_name=run_dir.name,
        status=status, status_class=STATUS_CLASS.get(status, "neutral"),
        steps=f"{fmt_value(summary.get('steps_done'))} / {fmt_value(summary.get('steps'))}",
        wall=fmt_seconds(summary.get("wall_s")), message=summary.get("message"),
        meta=[(k, fmt_value(v)) for k, v in meta],
        config_rows=[(k, _fmt_config(v), k in overrides) for k, v in cfg.items()],
        final_rows=[(k, fmt_value(v)) for k, v in final.items()],
        curves=curves_href, n_single=len(single), notes=notes,
        experiment_href=_href(exp_dir / "report.html", run_dir) if exp_dir else None,
        **_media(run_dir, run_dir, skip_curves=True),
    )


# ------------------------------------------------------------------------------------ experiment report

def _mean_std(values: list[float]) -> str:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return "—"
    mean = float(np.mean(finite))
    text = format(mean, ".4g")
    if len(finite) > 1:
        text += " ± " + format(float(np.std(finite, ddof=1)), ".4g")
    if len(finite) < len(values):
        text += f" ({len(finite)}/{len(values)} finite)"
    return text


def _fmt_condition(op: Any, threshold: Any) -> str:
    """``> 0``, ``<= 0.05``, ``in [0.5, 2]``: a check's condition as the table shows it."""
    if op == "within" and isinstance(threshold, (list, tuple)) and len(threshold) == 2:
        return f"in [{fmt_value(threshold[0])}, {fmt_value(threshold[1])}]"
    if op is None:
        return fmt_value(threshold)
    return f"{fmt_value(op)} {fmt_value(threshold)}"


def _fmt_interval(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return f"[{fmt_value(ci[0])}, {fmt_value(ci[1])}]"
    return fmt_value(ci)


def _verdict_view(value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    text = str(value)
    return text, VERDICT_CLASS.get(text, "neutral")


def _check_rows(checks: Any) -> list[dict]:
    """The per-check rows of a claim (claims.json written since verdicts were judged over seeds)."""
    rows = []
    for ch in checks if isinstance(checks, list) else []:
        ch = ch if isinstance(ch, dict) else {"name": fmt_value(ch)}
        per_seed = ch.get("per_seed")
        once = bool(ch.get("once"))
        if once:  # one computation with its own error bars (a Monte Carlo estimate): judged on its value
            interval = "one value, judged as it is"
        elif ch.get("ci") is None and isinstance(per_seed, list) and len(per_seed) < 2:
            interval = "— (one seed)"
        else:
            interval = _fmt_interval(ch.get("ci"))
        rows.append({
            "name": fmt_value(ch.get("name")),
            "per_seed": ", ".join(fmt_value(v) for v in per_seed) if isinstance(per_seed, list) else
            fmt_value(per_seed),
            "mean": fmt_value(ch.get("mean")), "interval": interval,
            "condition": _fmt_condition(ch.get("op"), ch.get("threshold")),
            "verdict": _verdict_view(ch.get("verdict", "inconclusive")),
        })
    return rows


def _claim_rows(claims: Any) -> tuple[list[dict], dict[str, int]]:
    """One view per claims.json entry and the verdict tally.

    Entries written before verdicts were judged over seeds have no ``checks`` (nor ``seeds``, ``leans``,
    ``reason``, ``rule``, ``interval``); they show their metric, threshold and measured value instead.
    """
    rows, tally = [], {"reproduced": 0, "not_reproduced": 0, "inconclusive": 0, "total": 0}
    for c in claims if isinstance(claims, list) else []:
        c = c if isinstance(c, dict) else {"statement": fmt_value(c)}
        verdict = str(c.get("verdict", "inconclusive"))
        tally["total"] += 1
        if verdict in tally:
            tally[verdict] += 1
        leans = c.get("leans") if c.get("leans") in VERDICT_CLASS else None
        seeds = c.get("seeds")
        rows.append({"id": fmt_value(c.get("id")), "statement": fmt_value(c.get("statement")),
                     "metric": fmt_value(c.get("metric")), "threshold": fmt_value(c.get("threshold")),
                     "measured": fmt_value(c.get("measured")), "verdict": verdict,
                     "verdict_class": VERDICT_CLASS.get(verdict, "neutral"),
                     "leans": _verdict_view(leans) if verdict == "inconclusive" else None,
                     "leans_any": _verdict_view(leans),
                     "reason": fmt_value(c["reason"]) if c.get("reason") is not None else None,
                     "seeds": seeds if isinstance(seeds, int) and not isinstance(seeds, bool) else None,
                     "rule": c.get("rule") if isinstance(c.get("rule"), str) else None,
                     "interval": c.get("interval") if isinstance(c.get("interval"), str) else None,
                     "checks": _check_rows(c.get("checks"))})
    return rows, tally


def _distinct(rows: list[dict], key: str) -> list[str]:
    """The distinct values of ``key`` over the claims, in order: the rule and interval kind are shown once."""
    return list(dict.fromkeys(r[key] for r in rows if r[key]))


def experiment_report(exp_dir: str | os.PathLike, *, build_runs: bool = True) -> Path:
    """Write ``exp_dir/report.html``; with ``build_runs`` every run's own report is (re)built first."""
    exp_dir = Path(exp_dir)
    exp = _require_json(exp_dir / "experiment.json", "an experiment directory",
                        "pass a folder written by `athanor experiment` (runs/<experiment>/<timestamp>)")
    claims, claims_err = _load_json(exp_dir / "claims.json")
    notes = [claims_err] if claims_err else []
    claim_rows, tally = _claim_rows(claims)

    runs_view, by_label = [], {}
    for entry in exp.get("runs", []) if isinstance(exp.get("runs"), list) else []:
        entry = entry if isinstance(entry, dict) else {}
        label = str(entry.get("label", entry.get("system", "?")))
        run_dir = exp_dir / str(entry.get("dir", ""))
        view = {"label": label, "seed": fmt_value(entry.get("seed")),
                "system": fmt_value(entry.get("system")), "dir": str(entry.get("dir", "")), "report": None,
                "status": "missing", "status_class": "bad", "error": None, "curves": None, "figures": [],
                "tables": [], "videos": []}
        finals = by_label.setdefault(label, [])
        if entry.get("dir") and (run_dir / "config.json").exists():
            summary, _ = _load_json(run_dir / "summary.json")
            view["status"] = _status(summary)
            view["status_class"] = STATUS_CLASS.get(view["status"], "neutral")
            finals.append(_final_metrics(summary, read_metrics(run_dir)))
            if build_runs:
                try:
                    run_report(run_dir)
                except (AthanorError, OSError, ValueError) as e:
                    view["error"] = f"run report could not be built: {e}"
            if (run_dir / "report.html").exists():
                view["report"] = _href(run_dir / "report.html", exp_dir)
            if (run_dir / "figures" / f"{CURVES}.png").exists():
                view["curves"] = _href(run_dir / "figures" / f"{CURVES}.png", exp_dir)
            view.update(_media(run_dir, exp_dir, skip_curves=True))
        else:
            finals.append(None)
            view["error"] = f"run directory {entry.get('dir')!r} is missing or has no config.json"
        runs_view.append(view)

    labels = list(by_label)
    metric_names = sorted({k for finals in by_label.values() for f in finals for k in f or {}})
    comparison = {
        "labels": labels,
        "n": [f"{sum(f is not None for f in by_label[lb])}" for lb in labels],
        "rows": [(m, [_mean_std([f.get(m, math.nan) for f in by_label[lb] if f is not None])
                      for lb in labels]) for m in metric_names],
    }
    status = str(exp.get("status", "unknown"))
    media = _media(exp_dir, exp_dir, skip_curves=False)
    key = exp.get("key_figure")  # the experiment's key figure leads its figures (the gallery shows it too)
    media["figures"].sort(key=lambda f: f["name"] != key)
    media["videos"].sort(key=lambda v: v["name"] != key)
    return _render(
        "experiment.html", exp_dir / "report.html",
        title=f"{exp.get('experiment', exp_dir.parent.name)} · {exp_dir.name}",
        experiment=fmt_value(exp.get("experiment", exp_dir.parent.name)), exp_name=exp_dir.name,
        scale=fmt_value(exp.get("scale")), seeds=fmt_value(exp.get("seeds")),
        wall=fmt_seconds(exp.get("wall_s")), created=_fmt_time(exp.get("created")),
        status=status, status_class=STATUS_CLASS.get(status, "neutral"),
        summary=exp.get("summary"), exp_notes=[fmt_value(n) for n in exp.get("notes", []) or []],
        claims=claim_rows, tally=tally, claims_missing=claims is None and not claims_err,
        claim_rules=_distinct(claim_rows, "rule"), claim_intervals=_distinct(claim_rows, "interval"),
        claims_href=_href(exp_dir / "claims.json", exp_dir) if (exp_dir / "claims.json").exists() else None,
        comparison=comparison, runs=runs_view, notes=notes, **media,
    )


# ---------------------------------------------------------------------------------------------- gallery

def _scan(root: Path) -> tuple[list[Path], list[Path]]:
    """Experiment dirs (holding experiment.json) and stand-alone run dirs (config.json, not inside one)."""
    experiments, runs = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "experiment.json" in filenames:
            experiments.append(here)
            dirnames.clear()
        elif "config.json" in filenames and here != root:
            runs.append(here)
            dirnames.clear()
        else:
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
    return experiments, runs


def _thumbnail(dirs: Iterable[Path]) -> Path | None:
    """The first picture that is not a metric plot, else the first metric plot."""
    fallback = None
    for d in dirs:
        for p in sorted((d / "figures").glob("*.png")) if (d / "figures").is_dir() else []:
            if p.stem != CURVES:
                return p
            fallback = fallback or p
    return fallback


def _safe_stem(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and not name.startswith(".") and "/" not in name \
        and "\\" not in name and name not in (".", "..")


def _key_figure(name: Any, dirs: list[Path]) -> tuple[Path, str] | None:
    """(file, "img" | "video") of the artifact an experiment names as its key figure (experiment.json's
    ``key_figure``, from the module's ``KEY_FIGURE``), looked for in the experiment folder, then its runs."""
    if not _safe_stem(name):
        return None
    for d in dirs:
        for path, kind in ((d / "figures" / f"{name}.png", "img"), (d / "videos" / f"{name}.mp4", "video"),
                           (d / "videos" / f"{name}.gif", "img")):
            if path.is_file():
                return path, kind
    return None


def _entry_time(created: Any, path: Path) -> dt.datetime:
    t = _parse_time(created)
    return t if t is not None else dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)


def _gallery_entry(path: Path, root: Path, kind: str, build_missing: bool) -> tuple[dt.datetime, dict]:
    meta_file = "experiment.json" if kind == "experiment" else "config.json"
    meta, err = _load_json(path / meta_file)
    meta = meta if isinstance(meta, dict) else {}
    entry = {"kind": kind, "path": path.relative_to(root).as_posix(), "report": None, "thumb": None,
             "thumb_kind": "img", "thumb_name": None, "thumb_pix": False, "tally": None, "error": err, "claims": [],
             "claims_href": None, "seeds": None}
    key = None
    if kind == "experiment":
        claims, claims_err = _load_json(path / "claims.json")
        rows, tally = _claim_rows(claims)
        entry.update(name=fmt_value(meta.get("experiment", path.parent.name)),
                     scale=fmt_value(meta.get("scale")), status=str(meta.get("status", "unknown")),
                     seeds=fmt_value(meta.get("seeds")), tally=tally if tally["total"] else None, claims=rows,
                     wall=fmt_seconds(meta.get("wall_s")))
        if (path / "claims.json").is_file():
            entry["claims_href"] = _href(path / "claims.json", root)
        if claims_err and not err:
            entry["error"] = claims_err
        run_dirs = [path / str(r.get("dir", "")) for r in meta.get("runs", []) or [] if isinstance(r, dict)]
        dirs = [path, *[d for d in run_dirs if d != path]]
        key = _key_figure(meta.get("key_figure"), dirs)
        thumb = _thumbnail(dirs)
        build = experiment_report
    else:
        summary, _ = _load_json(path / "summary.json")
        entry.update(name=fmt_value(meta.get("system", path.parent.name)),
                     scale=fmt_value(meta.get("preset")), status=_status(summary),
                     wall=fmt_seconds(summary.get("wall_s")) if isinstance(summary, dict) else "—")
        dirs = [path]
        thumb = _thumbnail(dirs)
        build = run_report
    if build_missing and not err and meta and not (path / "report.html").exists():
        try:
            build(path)
        except (AthanorError, OSError, ValueError) as e:
            entry["error"] = f"report could not be built: {e}"
        if thumb is None:
            thumb = _thumbnail(dirs)
    if (path / "report.html").exists():
        entry["report"] = _href(path / "report.html", root)
    picture = key or ((thumb, "img") if thumb else None)
    if picture:
        entry.update(thumb=_href(picture[0], root), thumb_kind=picture[1], thumb_name=picture[0].stem,
                     thumb_pix=picture[1] == "img" and (picture[0].suffix == ".gif" or _is_pixel_picture(picture[0])))
    entry["status_class"] = STATUS_CLASS.get(entry["status"], "neutral")
    when = _entry_time(meta.get("created"), path)
    entry["time"] = _fmt_time(meta.get("created")) if meta.get("created") else _fmt_time(when.isoformat())
    return when, entry


def _tour_view(root: Path) -> dict | None:
    """The last ``athanor tour`` over this folder (``tour.json``), if there was one."""
    tour, err = _load_json(root / "tour.json")
    if err is not None:
        return {"error": err}
    if not isinstance(tour, dict):
        return None
    exps = [e for e in tour.get("experiments", []) or [] if isinstance(e, dict)]
    failed = [(fmt_value(e.get("name")), fmt_value(e.get("error"))) for e in exps if e.get("status") != "completed"]
    return {"error": None, "scale": fmt_value(tour.get("scale")), "status": fmt_value(tour.get("status")),
            "started": _fmt_time(tour.get("started")), "wall": fmt_seconds(tour.get("wall_s")),
            "n": len(exps), "failed": failed, "href": _href(root / "tour.json", root)}


def gallery(runs_root: str | os.PathLike, *, build_missing: bool = True) -> Path:
    """Write ``runs_root/index.html``: the claims of every experiment in one table, a card per experiment
    (its key figure, verdict tally, links to its report and claims.json) and per stand-alone run.

    The claims table and the cards show the newest folder of each experiment at each scale; older folders of
    the same experiment and scale are listed below them, newest first.
    """
    root = Path(runs_root)
    if not root.is_dir():
        raise DataError(f"runs folder {root} does not exist; run `athanor run` or `athanor experiment` first "
                        "or pass the folder that holds their output")
    experiments, runs = _scan(root)
    exp_entries = sorted((_gallery_entry(p, root, "experiment", build_missing) for p in experiments),
                         key=lambda te: (te[0], te[1]["path"]), reverse=True)
    run_entries = sorted((_gallery_entry(p, root, "run", build_missing) for p in runs),
                         key=lambda te: (te[0], te[1]["path"]), reverse=True)
    latest, earlier, seen = [], [], set()
    for _, e in exp_entries:
        group = (e["name"], e["scale"])
        (earlier if group in seen else latest).append(e)
        seen.add(group)
    claim_groups = []
    for e in sorted(latest, key=lambda e: (e["name"], e["scale"])):
        if not e["claims"]:
            continue
        reasons = {c["reason"] for c in e["claims"]}
        shared = reasons.pop() if len(reasons) == 1 else None  # said once for the experiment, not per claim
        claim_groups.append({"experiment": e, "claims": e["claims"], "shared_reason": shared})
    return _render("gallery.html", root / "index.html", title="athanor runs",
                   latest=latest, earlier=earlier, singles=[e for _, e in run_entries], claim_groups=claim_groups,
                   tour=_tour_view(root), n_experiments=len(experiments), n_runs=len(runs))
