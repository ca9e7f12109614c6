"""The shipped MNIST digits (LeCun, Cortes & Burges), checksummed and loaded without any download.

``mnist.npz`` next to this module holds ``x_train`` uint8 (60000, 28, 28), ``y_train`` uint8 (60000,),
``x_test`` uint8 (10000, 28, 28) and ``y_test`` uint8 (10000,), built from the original IDX files by
``scripts/build_mnist.py`` (which documents the source package and the licence). ``mnist.sha256`` holds the
sha256 of the npz. The hash is checked before the file is opened, so a truncated or altered file is reported
as a ``DataError`` naming the file and the rebuild command rather than surfacing as a zip-format traceback.
Arrays are cached per path for the life of the process and returned read-only, because every caller shares
the same cached copies (both done by ``athanor.data.checked``, shared with the other shipped data files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from athanor.data.checked import load_checked_npz

DATA_DIR = Path(__file__).resolve().parent
DEFAULT_PATH = DATA_DIR / "mnist.npz"
REBUILD = "python scripts/build_mnist.py"

SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
SPEC = {key: ("uint8", shape) for key, shape in SHAPES.items()}


def load_mnist(path: str | Path | None = None, sha256: str | None = None) -> dict[str, np.ndarray]:
    """Return {"x_train", "y_train", "x_test", "y_test"} as read-only uint8 arrays.

    path: an npz to load instead of the shipped one (for tests and relocated copies).
    sha256: its expected hex digest; by default read from ``<path stem>.sha256`` beside the npz.
    Raises DataError when the file is missing, fails its checksum, cannot be read or has wrong arrays.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    return load_checked_npz(path, sha256, SPEC, "MNIST", REBUILD)
