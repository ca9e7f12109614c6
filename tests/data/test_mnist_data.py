"""The shipped MNIST file: checksum, shapes, the well-known label counts, and clear errors on damage."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from athanor.core.errors import DataError
from athanor.data import mnist
from athanor.data.mnist import load_mnist
from shipped_data import copy_shipped, load_script

REBUILD = "python scripts/build_mnist.py"
TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


build_mnist = load_script("build_mnist")


def _copy(tmp_path: Path, data: bytes, digest: str | None = None) -> Path:
    """Write data as tmp/mnist.npz with a sha256 file (the shipped digest unless given)."""
    return copy_shipped(tmp_path, mnist.DEFAULT_PATH, data, digest)


def test_shipped_file_verifies_and_has_mnist_shapes_and_label_counts():
    recorded = mnist.DEFAULT_PATH.with_suffix(".sha256").read_text().strip()
    assert hashlib.sha256(mnist.DEFAULT_PATH.read_bytes()).hexdigest() == recorded
    data = load_mnist()
    assert data["x_train"].shape == (60000, 28, 28) and data["x_test"].shape == (10000, 28, 28)
    assert data["y_train"].shape == (60000,) and data["y_test"].shape == (10000,)
    assert all(a.dtype == np.uint8 for a in data.values())
    assert tuple(np.bincount(data["y_train"], minlength=10)) == TRAIN_COUNTS
    assert tuple(np.bincount(data["y_test"], minlength=10)) == TEST_COUNTS
    # Real digits: almost always black borders, full-range strokes, and the well-known training-set pixel
    # statistics (mean 0.1307, std 0.3081 on the [0, 1] scale).
    assert (data["x_train"][:, 0, :] > 0).mean() < 1e-3 and data["x_train"].max() == 255
    pixels = data["x_train"].astype(np.float64) / 255.0
    assert abs(pixels.mean() - 0.1307) < 5e-5 and abs(pixels.std() - 0.3081) < 5e-5


def test_load_is_cached_and_read_only():
    first, second = load_mnist(), load_mnist()
    assert first["x_train"] is second["x_train"]
    with pytest.raises(ValueError):
        first["x_train"][0, 0, 0] = 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:],
        lambda raw: raw[:-1],
    ],
    ids=["truncated-half", "byte-flipped", "last-byte-missing"],
)
def test_damaged_copy_gives_data_error_with_rebuild_command(tmp_path, damage):
    path = _copy(tmp_path, damage(mnist.DEFAULT_PATH.read_bytes()))
    with pytest.raises(DataError) as info:
        load_mnist(path)
    message = str(info.value)
    assert REBUILD in message and str(path) in message and "sha256" in message


def test_truncated_file_with_matching_hash_is_a_data_error_not_a_zip_traceback(tmp_path):
    raw = mnist.DEFAULT_PATH.read_bytes()[:4096]
    path = _copy(tmp_path, raw, hashlib.sha256(raw).hexdigest())
    with pytest.raises(DataError, match="cannot be read") as info:
        load_mnist(path)
    assert REBUILD in str(info.value)


def test_wrong_arrays_with_matching_hash_are_rejected(tmp_path):
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        x_train=np.zeros((10, 28, 28), np.uint8),
        y_train=np.zeros(10, np.uint8),
        x_test=np.zeros((10000, 28, 28), np.uint8),
        y_test=np.zeros(10000, np.uint8),
    )
    raw = buffer.getvalue()
    path = _copy(tmp_path, raw, hashlib.sha256(raw).hexdigest())
    with pytest.raises(DataError, match=r"x_train is uint8\(10, 28, 28\)"):
        load_mnist(path)


def test_missing_file_and_missing_checksum_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="missing") as info:
        load_mnist(tmp_path / "mnist.npz")
    assert REBUILD in str(info.value)
    (tmp_path / "mnist.npz").write_bytes(b"x")
    with pytest.raises(DataError, match=r"checksum file mnist\.sha256 is missing"):
        load_mnist(tmp_path / "mnist.npz")


def test_explicit_digest_overrides_the_checksum_file(tmp_path):
    path = _copy(tmp_path, mnist.DEFAULT_PATH.read_bytes(), "0" * 64)
    with pytest.raises(DataError, match="does not match"):
        load_mnist(path)
    recorded = mnist.DEFAULT_PATH.with_suffix(".sha256").read_text()
    assert load_mnist(path, sha256=recorded)["y_test"].shape == (10000,)


def _idx(shape: tuple[int, ...], payload: bytes, dtype_code: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype_code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + payload


def test_idx_parser_decodes_row_major_and_gzip():
    payload = bytes(range(24))
    expected = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(build_mnist.parse_idx(_idx((2, 3, 4), payload), "x", (2, 3, 4)), expected)
    zipped = gzip.compress(_idx((2, 3, 4), payload))
    np.testing.assert_array_equal(build_mnist.parse_idx(zipped, "x", (2, 3, 4)), expected)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_idx((4,), bytes(4), dtype_code=0x0D), "magic"),
        (b"\x01" + _idx((4,), bytes(4))[1:], "magic"),
        (_idx((2, 2), bytes(4)), "dimensions"),
        (_idx((5,), bytes(5)), "shape"),
        (_idx((4,), bytes(3)), "payload"),
        (_idx((4,), bytes(5)), "payload"),
        (b"\x00\x00", "too short"),
    ],
)
def test_idx_parser_rejects_bad_headers_and_sizes(raw, match):
    with pytest.raises(ValueError, match=match):
        build_mnist.parse_idx(raw, "labels", (4,))


def test_npz_writer_is_byte_reproducible_and_loadable(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.uint8).reshape(3, 4), "b": np.ones(5, np.uint8)}
    npz = load_script("_npz")
    npz.write_npz(tmp_path / "one.npz", arrays)
    npz.write_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz", allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["a", "b"]
        np.testing.assert_array_equal(loaded["a"], arrays["a"])
