"""Writing a system's artifacts into a run directory (reading them back: ``core/runs.py``).

``write_artifacts(run_dir, {name: value})`` maps each value by kind (see ``core/artifacts.py``):

    uint8 (H, W, 3|4)      -> figures/<name>.png
    uint8 (T, H, W, 3|4)   -> videos/<name>.mp4   (videos/<name>.gif if the mp4 encoder fails)
    Heatmap                -> tables/<name>.json  + figures/<name>.png (drawn by viz.figures.heatmap)
    Svg                    -> figures/<name>.svg
    TextTable              -> tables/<name>.json  (no picture: the reports show it as an HTML table)

Everything is validated before anything is written, so a bad artifact leaves the directory untouched.
Names must be file stems of ``[A-Za-z0-9_.-]`` not starting with a dot; ``curves`` is reserved for the
report's metric plot. Float images are refused rather than silently rescaled: a system must decide
itself how its values map to [0, 255]. Every file is written atomically (temporary file in the same
folder, then ``os.replace``). Non-finite table cells are stored as JSON ``null`` so the file is strict
JSON; ``Heatmap.from_json`` reads ``null`` back as NaN.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from athanor.core.artifacts import Heatmap, Svg, TextTable
from athanor.core.checkpoint import atomic_write_bytes
from athanor.core.rundir import json_clean
from athanor.viz.figures import heatmap
from athanor.viz.video import write_video

__all__ = ["write_artifacts", "atomic_write_bytes", "atomic_write_text", "write_png", "RESERVED_NAMES",
           "NAME_PATTERN"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
RESERVED_NAMES = frozenset({"curves"})
ALLOWED_KINDS = ("uint8 image (H, W, 3|4)", "uint8 video (T, H, W, 3|4)", "athanor.core.artifacts.Heatmap",
                 "athanor.core.artifacts.Svg", "athanor.core.artifacts.TextTable")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode a uint8 (H, W, 3|4) array as PNG and write it atomically."""
    import imageio.v3 as iio

    return atomic_write_bytes(path, iio.imwrite("<bytes>", np.ascontiguousarray(image), extension=".png"))


def _as_array(value: Any) -> np.ndarray | None:
    """numpy arrays and array-likes that carry a dtype (jax.Array) -> ndarray; anything else -> None."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "__array__") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return np.asarray(value)
    return None


def _classify(name: Any, value: Any) -> tuple[str, Any]:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"artifact name {name!r} is not a safe file stem: use 1-128 characters from "
                         "[A-Za-z0-9_.-], not starting with '.', e.g. 'samples' or 'freq_table'")
    if name in RESERVED_NAMES:
        raise ValueError(f"artifact name {name!r} is reserved for the report's metric curves; rename it "
                         f"(e.g. '{name}_plot')")
    if isinstance(value, Heatmap):
        return "table", value
    if isinstance(value, Svg):
        return "svg", value
    if isinstance(value, TextTable):
        return "text_table", value
    arr = _as_array(value)
    if arr is None:
        raise TypeError(f"artifact {name!r} has type {type(value).__name__}; allowed kinds are: "
                        f"{', '.join(ALLOWED_KINDS)}")
    if arr.ndim in (3, 4) and arr.shape[-1] in (3, 4) and arr.dtype != np.uint8:
        raise TypeError(f"artifact {name!r} is a {arr.dtype} array of shape {arr.shape}; images and videos "
                        "must be uint8 in [0, 255]: convert with "
                        "(np.clip(x, 0, 1) * 255).round().astype(np.uint8)")
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] not in (3, 4):
        raise TypeError(f"artifact {name!r} is a {arr.dtype} array of shape {arr.shape}; allowed kinds are: "
                        f"{', '.join(ALLOWED_KINDS)}")
    if 0 in arr.shape:
        raise ValueError(f"artifact {name!r} has an empty dimension (shape {arr.shape}); "
                         "return at least one pixel and one frame")
    return ("image" if arr.ndim == 3 else "video"), arr


def write_artifacts(run_dir: str | os.PathLike, artifacts: Mapping[str, Any], *,
                    fps: float = 10) -> list[Path]:
    """Validate every artifact, then write each one under ``run_dir``; return the paths written."""
    if not isinstance(artifacts, Mapping):
        raise TypeError(f"artifacts must be a dict of name -> artifact, got {type(artifacts).__name__}")
    checked = [(name, *_classify(name, value)) for name, value in artifacts.items()]
    run_dir = Path(run_dir)
    written: list[Path] = []
    for name, kind, value in checked:
        if kind == "image":
            written.append(write_png(run_dir / "figures" / f"{name}.png", value))
        elif kind == "video":
            written.append(write_video(run_dir / "videos" / name, value, fps=fps))
        elif kind == "svg":
            written.append(atomic_write_text(run_dir / "figures" / f"{name}.svg", value.text))
        else:
            text = json.dumps(json_clean(value.to_json()), indent=1, allow_nan=False)
            written.append(atomic_write_text(run_dir / "tables" / f"{name}.json", text + "\n"))
            if kind == "table":
                written.append(write_png(run_dir / "figures" / f"{name}.png", heatmap(value)))
    return written
