"""Run directories: layout, provenance, append-only metrics, atomic JSON (DESIGN §5)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
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


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(athanor.__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def jax_info() -> dict[str, Any]:
    import jax

    return {"version": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()]}


def provenance() -> dict[str, Any]:
    return {"version": athanor.__version__, "git_sha": git_sha(), "jax": jax_info(), "created": now_iso()}


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line; a line torn by an earlier crash is closed first so this record stays whole."""
    line = json.dumps(_clean(record)) + "\n"
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode())
        f.flush()
