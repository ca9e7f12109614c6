"""Loading the npz files that ship inside athanor, checked against their recorded sha256 before they are opened.

Each shipped data file ``<name>.npz`` has a ``<name>.sha256`` beside it holding the hex digest of its bytes.
``load_checked_npz`` verifies that digest first, so a truncated or altered file is reported as a ``DataError``
naming the file and the command that rebuilds it, rather than surfacing as a zip-format traceback; then it checks
every expected array's dtype and shape. Arrays are cached per (path, digest) for the life of the process and
returned read-only, because every caller shares the same cached copies. Pickled (object) arrays are never loaded.

A shape is a tuple of ints and dimension names: an int must match exactly, while a name (such as ``"N"``) may take
any size but must take the same size in every array that uses it. A dtype is a numpy dtype name (``"uint8"``,
``"bool"``) or ``"str"`` for a fixed-width unicode array of any width (``<U..``).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from athanor.core.errors import DataError

# key -> (dtype, shape); see the module docstring.
Spec = Mapping[str, tuple[str, tuple[int | str, ...]]]

ANY_STR = "str"

_CACHE: dict[tuple[Path, str, tuple], dict[str, np.ndarray]] = {}


def data_error(what: str, path: Path, problem: str, rebuild: str) -> DataError:
    """The one message format of every shipped-data failure: which file, what is wrong, how to rebuild it."""
    return DataError(f"{what} data file {path}: {problem}. Rebuild it from the repository root with `{rebuild}`.")


def _expected_digest(path: Path, what: str, rebuild: str) -> str:
    sha_path = path.with_suffix(".sha256")
    if not sha_path.is_file():
        raise data_error(what, path, f"its checksum file {sha_path.name} is missing", rebuild)
    digest = sha_path.read_text().strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise data_error(what, path, f"its checksum file {sha_path.name} does not hold a sha256 hex digest", rebuild)
    return digest


def _format_shape(shape: tuple[int | str, ...]) -> str:
    # Like a tuple's repr, (60000,) included, but with dimension names unquoted: (N, 32, 32, 4).
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _dtype_matches(array: np.ndarray, dtype: str) -> bool:
    if dtype == ANY_STR:
        return array.dtype.kind == "U"
    return array.dtype == np.dtype(dtype)


def _mismatch(
    array: np.ndarray, dtype: str, shape: tuple[int | str, ...], name: str, sizes: dict[str, tuple[int, str]]
) -> str | None:
    """None if array fits; else what to add to the message ("" or which array fixed a named dimension)."""
    if not _dtype_matches(array, dtype) or array.ndim != len(shape):
        return ""
    for dim, size in zip(shape, array.shape, strict=True):
        if isinstance(dim, int):
            if size != dim:
                return ""
        elif dim not in sizes:
            sizes[dim] = (size, name)
        elif sizes[dim][0] != size:
            return f" with {dim} = {sizes[dim][0]} as in {sizes[dim][1]}"
    return None


def load_checked_npz(
    path: Path, sha256: str | None, spec: Spec, what: str, rebuild: str
) -> dict[str, np.ndarray]:
    """Return the arrays named in spec from the npz at path, after checking its sha256, dtypes and shapes.

    sha256: the expected hex digest; None reads it from ``<path stem>.sha256`` beside the npz.
    what: the data set's name as the error messages give it ("MNIST"); rebuild: the command that remakes the file.
    Raises DataError when the file is missing, fails its checksum, cannot be read or has wrong arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise data_error(what, path, "the file is missing", rebuild)
    expected = sha256.strip().lower() if sha256 is not None else _expected_digest(path, what, rebuild)
    key = (path.resolve(), expected, tuple(spec.items()))
    cached = _CACHE.get(key)
    if cached is not None:
        return dict(cached)

    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise data_error(
            what,
            path,
            f"sha256 {actual} of its {len(raw)} bytes does not match the recorded {expected}, "
            "so it is truncated, corrupt or from another build",
            rebuild,
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in spec}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        problem = f"it cannot be read as an npz with arrays {sorted(spec)} ({exc})"
        raise data_error(what, path, problem, rebuild) from exc

    sizes: dict[str, tuple[int, str]] = {}  # dimension name -> (its size, the first array that fixed it)
    for name, (dtype, shape) in spec.items():
        array = arrays[name]
        mismatch = _mismatch(array, dtype, shape, name, sizes)
        if mismatch is not None:
            problem = f"array {name} is {array.dtype}{array.shape}, expected {dtype}{_format_shape(shape)}{mismatch}"
            raise data_error(what, path, problem, rebuild)
        array.setflags(write=False)
    _CACHE[key] = arrays
    return dict(arrays)
