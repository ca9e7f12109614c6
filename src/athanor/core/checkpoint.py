"""Atomic, self-checking checkpoints: the state's bytes + the resolved config, never pickle.

A checkpoint file ``ckpt_<step>.msgpack`` is one msgpack map::

    {"format": 1, "system": str, "step": int, "config": json str, "sha256": hex of payload, "payload": bytes}

The payload is whatever the system's ``save_state`` hook made of its state (Flax msgpack for JAX systems, a
safetensors file of tensors for PyTorch ones; see ``systems/contract.py``); this module never interprets it.
It is written to a temp file in the same directory and renamed into place, so a crash leaves either the old
file set or the new one, never a half-written checkpoint that resume would trust. Loading verifies the hash and
hands the payload to the system's ``load_state`` with a template state (from ``init``), so shapes and dtypes
are checked against the system's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

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


def save(ckpt_dir: Path, system: str, step: int, config: dict, payload: bytes, keep: int = 3) -> Path:
    """Write ``payload`` (a serialised state) as the checkpoint of ``step``; keep the newest ``keep`` files."""
    if not isinstance(payload, bytes):
        raise TypeError(f"a checkpoint payload must be bytes (the system's save_state), got {type(payload).__name__}")
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


def restore(path: Path, template: Any, load_state: Callable[[Any, bytes], Any],
            system: str | None = None) -> tuple[Any, dict]:
    """Return (state, record): the payload restored by ``load_state`` into the structure of ``template``.

    With ``system``, a checkpoint written by another system is refused before its payload is read."""
    record = read(path)
    if system is not None and record["system"] != system:
        raise CheckpointError(f"checkpoint {path} belongs to system '{record['system']}', not '{system}'")
    try:
        state = load_state(template, record["payload"])
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
