"""Atomic, self-checking checkpoints: msgpack state + the resolved config, never pickle.

A checkpoint file ``ckpt_<step>.msgpack`` is one msgpack map::

    {"format": 1, "system": str, "step": int, "config": json str, "sha256": hex of payload,
     "payload": flax.serialization.to_bytes(state)}

It is written to a temp file in the same directory and renamed into place, so a crash leaves either the old
file set or the new one, never a half-written checkpoint that resume would trust. Loading verifies the hash and
restores into a template state (from ``init``), so shapes and dtypes are checked against the system's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import msgpack
from flax import serialization

from athanor.core.errors import CheckpointError

FORMAT = 1
_NAME = re.compile(r"^ckpt_(\d+)\.msgpack$")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` through a temporary file in the same folder and ``os.replace``: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def save(ckpt_dir: Path, system: str, step: int, config: dict, state: Any, keep: int = 3) -> Path:
    payload = serialization.to_bytes(state)
    record = {
        "format": FORMAT, "system": system, "step": int(step), "config": json.dumps(config, sort_keys=True),
        "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload,
    }
    path = Path(ckpt_dir) / f"ckpt_{int(step):09d}.msgpack"
    atomic_write_bytes(path, msgpack.packb(record, use_bin_type=True))
    for old in list_checkpoints(ckpt_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoint files ordered by step (oldest first); temp files are ignored."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def read(path: Path) -> dict:
    """Read and verify a checkpoint's record (payload still serialised)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror}") from None
    try:
        record = msgpack.unpackb(raw, raw=False)
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError("not an athanor checkpoint")
        payload = record["payload"]
        ok = hashlib.sha256(payload).hexdigest() == record["sha256"]
    except Exception as e:  # msgpack raises many types on truncated or foreign bytes
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e}); delete it to resume "
            f"from the previous checkpoint, or start a new run"
        ) from None
    if not ok:
        raise CheckpointError(
            f"checkpoint {path} fails its sha256 check (the file was modified or partly written); delete it "
            f"to resume from the previous checkpoint, or start a new run"
        )
    return record


def restore(path: Path, template: Any) -> tuple[Any, dict]:
    """Return (state, record) with the state restored into the structure of ``template``."""
    record = read(path)
    try:
        state = serialization.from_bytes(template, record["payload"])
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} does not match this system's state ({type(e).__name__}: {e}); was it written "
            f"by another version or config? Start a new run instead of resuming"
        ) from None
    return state, record


def latest_valid(ckpt_dir: Path) -> tuple[Path | None, list[str]]:
    """Newest checkpoint that verifies, and warnings for newer ones that did not."""
    warnings: list[str] = []
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            read(path)
            return path, warnings
        except CheckpointError as e:
            warnings.append(str(e))
    return None, warnings
