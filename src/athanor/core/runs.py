"""Reading a run directory back: its config and state, its metrics log, and its artifacts.

Everything that looks at a finished (or stopped) run goes through here: reports, experiment analyses,
``athanor claims --reanalyse`` and analysis scripts.

``read_metrics(run_dir)`` parses ``metrics.jsonl`` into the records of the run as it finally happened, each
(kind, step) once, sorted by step (train before eval at equal steps):
- a resumed run writes a ``resume`` marker at the step it restarts from; every record of an earlier process
  beyond that step (logged after its last checkpoint, before it was killed) is superseded and dropped;
- within a segment, the last line for a (kind, step) wins (logs written before markers existed);
- a truncated final line (a crash mid-write) is skipped silently, and any other unreadable line is skipped with
  a warning naming the file and line number, so one damaged record never hides a run.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from athanor.core import checkpoint
from athanor.core import config as C
from athanor.core.artifacts import Heatmap, TextTable, table_from_json
from athanor.core.errors import CheckpointError, ConfigError, DataError

__all__ = ["RESUME", "read_meta", "load_run", "read_metrics", "read_table", "read_image", "read_video"]

RESUME = "resume"  # the kind of the marker record a resumed run appends at its restart step
_KIND_ORDER = {"train": 0, "eval": 1}


def read_meta(run_dir: str | os.PathLike) -> dict:
    """The run's ``config.json`` (system name, seed, resolved config, provenance)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json); pass the directory that "
                          f"`athanor run` printed")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise ValueError("no 'config' object")
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is damaged ({e}); the run cannot be read, start a new one") from None
    return meta


def load_run(run_dir: str | os.PathLike, system: Any, *, template: Any = None) -> tuple[Any, Any]:
    """(cfg, state) of a run, from its config and its newest valid checkpoint.

    ``system`` is the run's bound system (``athanor.api.load_run`` looks it up by name). ``template`` is a state
    of the right structure to restore into; by default a fresh ``init`` (a JAX system can pass the cheaper
    ``jax.eval_shape`` of it). Raises CheckpointError if the run left no valid checkpoint.
    """
    meta = read_meta(run_dir)
    cfg = C.from_dict(system.Config, meta["config"])
    path, _ = checkpoint.latest_valid(Path(run_dir) / "checkpoints")
    if path is None:
        raise CheckpointError(f"no valid checkpoint in {Path(run_dir) / 'checkpoints'}")
    if template is None:
        seed = int(meta.get("seed", 0))
        template = system.init(cfg, seed, system.load_data(cfg, seed))
    state, _ = checkpoint.restore(path, template, system.load_state, system=meta.get("system"))
    return cfg, state


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """Records of ``run_dir/metrics.jsonl`` as the run finally happened (module docstring), sorted by step."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    # A file ending in "\n" splits into a trailing empty string; without it the last line was cut short.
    complete_until = len(lines) - 1
    latest: dict[tuple[str, int], dict] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i < complete_until:
                warnings.warn(f"{path}: line {i + 1} is not valid JSON and was skipped", stacklevel=2)
            continue
        step = rec.get("step") if isinstance(rec, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            warnings.warn(f"{path}: line {i + 1} has no integer 'step' and was skipped", stacklevel=2)
            continue
        kind = str(rec.get("kind", "train"))
        if kind == RESUME:
            latest = {k: r for k, r in latest.items() if k[1] <= step}
            continue
        latest[(kind, step)] = rec
    return sorted(latest.values(),
                  key=lambda r: (r["step"], _KIND_ORDER.get(str(r.get("kind", "train")), 2),
                                 str(r.get("kind", "train"))))


def read_table(run_dir: str | os.PathLike, name: str) -> Heatmap | TextTable | None:
    """The table artifact ``name`` (``tables/<name>.json``), or None if the run has none or it is unreadable."""
    path = Path(run_dir) / "tables" / f"{name}.json"
    try:
        return table_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_image(run_dir: str | os.PathLike, name: str) -> np.ndarray | None:
    """The figure ``name`` (``figures/<name>.png``) as uint8 (H, W, 3), or None if absent or unreadable."""
    import imageio.v3 as iio

    path = Path(run_dir) / "figures" / f"{name}.png"
    if not path.is_file():
        return None
    try:
        img = np.asarray(iio.imread(path))
    except (OSError, ValueError, RuntimeError):
        return None
    return img[..., :3] if img.ndim == 3 else None


def read_video(run_dir: str | os.PathLike, name: str) -> np.ndarray | None:
    """The video ``name`` (``videos/<name>.mp4`` or ``.gif``) as uint8 (T, H, W, 3), or None."""
    from athanor.viz.video import read_video_file

    for ext in (".mp4", ".gif"):
        path = Path(run_dir) / "videos" / f"{name}{ext}"
        if path.is_file():
            try:
                frames = read_video_file(path)
            except (OSError, ValueError, RuntimeError):
                return None
            return frames[..., :3] if frames.ndim == 4 else None
    return None
