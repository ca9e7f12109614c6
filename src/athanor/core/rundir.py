"""Run directories: layout, provenance, append-only metrics, atomic JSON.

A run directory (``runs/<system>/<time>_s<seed>/``) holds ``config.json`` (the resolved config, package version,
git sha and the system's runtime: framework, version, devices), ``metrics.jsonl`` (one JSON object per logged
step, only ever appended), ``summary.json``, ``checkpoints/``, ``figures/``, ``tables/``, ``videos/`` and
``report.html`` (ARCHITECTURE.md). JSON has no NaN or infinity: :func:`json_clean` writes them as null, and
every JSON file here goes through it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import athanor
from athanor.core.checkpoint import atomic_write_bytes


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def unique_dir(parent: Path, name: str) -> Path:
    """parent/name, or parent/name-2, -3 ... if it exists; created empty."""
    parent.mkdir(parents=True, exist_ok=True)
    candidate, k = parent / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            k += 1
            candidate = parent / f"{name}-{k}"


def _git(*args: str) -> str | None:
    """stdout of ``git args`` run in the package's checkout; None outside one or without git."""
    try:
        with warnings.catch_warnings():
            # JAX warns on any fork in a process where it runs threads; git execs at once, so its deadlock
            # cannot happen
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            out = subprocess.run(["git", *args], cwd=Path(athanor.__file__).parent, capture_output=True, text=True,
                                 timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_sha() -> str | None:
    """The checkout's HEAD commit, or None when the package is not run from a git checkout."""
    out = _git("rev-parse", "HEAD")
    return out.strip() or None if out is not None else None


def git_dirty() -> bool | None:
    """Whether tracked files differ from HEAD (the results then come from code no commit holds); None outside a
    checkout. Untracked files are not counted."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """{name: installed version} for each of ``names`` that is installed (the others are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def provenance(runtime: dict[str, Any]) -> dict[str, Any]:
    """Where a run came from: package version, git sha, time, and ``runtime`` (the system's framework info)."""
    return {"version": athanor.__version__, "git_sha": git_sha(), "git_dirty": git_dirty(), "runtime": runtime,
            "created": now_iso()}


def json_clean(value: Any, digits: int | None = None) -> Any:
    """``value`` with every non-finite float as None and tuples as lists, recursively; with ``digits``, finite
    floats are rounded to that many significant digits (for display-sized numbers such as claims)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}") if digits else value
    if isinstance(value, dict):
        return {k: json_clean(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v, digits) for v in value]
    return value


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(json_clean(obj), indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line; a line torn by an earlier crash is closed first so this record stays whole."""
    line = json.dumps(json_clean(record)) + "\n"
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode())
        f.flush()
