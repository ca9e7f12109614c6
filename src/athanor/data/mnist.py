"""The shipped MNIST digits (LeCun, Cortes & Burges), checksummed and loaded without any download.

``mnist.npz`` next to this module holds ``x_train`` uint8 (60000, 28, 28), ``y_train`` uint8 (60000,),
``x_test`` uint8 (10000, 28, 28) and ``y_test`` uint8 (10000,), built from the original IDX files by
``scripts/build_mnist.py`` (which documents the source package and the licence). ``mnist.sha256`` holds the
sha256 of the npz. The hash is checked before the file is opened, so a truncated or altered file is reported
as a ``DataError`` naming the file and the rebuild command rather than surfacing as a zip-format traceback.
Arrays are cached per path for the life of the process and returned read-only, because every caller shares
the same cached copies.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from athanor.core.errors import DataError

DATA_DIR = Path(__file__).resolve().parent
DEFAULT_PATH = DATA_DIR / "mnist.npz"
REBUILD = "python scripts/build_mnist.py"

SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}

_CACHE: dict[tuple[Path, str], dict[str, np.ndarray]] = {}


def _fail(path: Path, problem: str) -> DataError:
    return DataError(
        f"MNIST data file {path}: {problem}. Rebuild it from the repository root with `{REBUILD}`."
    )


def _expected_digest(path: Path, sha_path: Path) -> str:
    if not sha_path.is_file():
        raise _fail(path, f"its checksum file {sha_path.name} is missing")
    digest = sha_path.read_text().strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise _fail(path, f"its checksum file {sha_path.name} does not hold a sha256 hex digest")
    return digest


def load_mnist(path: str | Path | None = None, sha256: str | None = None) -> dict[str, np.ndarray]:
    """Return {"x_train", "y_train", "x_test", "y_test"} as read-only uint8 arrays.

    path: an npz to load instead of the shipped one (for tests and relocated copies).
    sha256: its expected hex digest; by default read from ``<path stem>.sha256`` beside the npz.
    Raises DataError when the file is missing, fails its checksum, cannot be read or has wrong arrays.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise _fail(path, "the file is missing")
    expected = (
        sha256.strip().lower() if sha256 is not None else _expected_digest(path, path.with_suffix(".sha256"))
    )
    cached = _CACHE.get((path.resolve(), expected))
    if cached is not None:
        return dict(cached)

    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise _fail(
            path,
            f"sha256 {actual} of its {len(raw)} bytes does not match the recorded {expected}, "
            "so it is truncated, corrupt or from another build",
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in SHAPES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise _fail(path, f"it cannot be read as an npz with arrays {sorted(SHAPES)} ({exc})") from exc
    for key, shape in SHAPES.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != np.uint8:
            raise _fail(path, f"array {key} is {array.dtype}{array.shape}, expected uint8{shape}")
        array.setflags(write=False)
    _CACHE[(path.resolve(), expected)] = arrays
    return dict(arrays)
