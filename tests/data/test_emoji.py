"""The shipped emoji file: checksum, shapes, the held-out split, real images, lookups and clear errors on damage."""

from __future__ import annotations

import collections
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from athanor.core.errors import DataError
from athanor.data import emoji
from athanor.data.emoji import Emoji, load_emoji
from shipped_data import copy_shipped, load_script

REBUILD = "python scripts/build_emoji.py"


build_emoji = load_script("build_emoji")


def _copy(tmp_path: Path, data: bytes, digest: str | None = None) -> Path:
    """Write data as tmp/emoji.npz with a sha256 file (the shipped digest unless given)."""
    return copy_shipped(tmp_path, emoji.DEFAULT_PATH, data, digest)


@pytest.fixture(scope="module")
def data() -> Emoji:
    return load_emoji()


def test_shipped_file_verifies_and_has_the_documented_arrays(data):
    recorded = emoji.DEFAULT_PATH.with_suffix(".sha256").read_text().strip()
    assert hashlib.sha256(emoji.DEFAULT_PATH.read_bytes()).hexdigest() == recorded
    n = len(data)
    assert 1800 <= n <= 1950
    assert data.images.shape == (n, 32, 32, 4) and data.images.dtype == np.uint8
    for strings in (data.names, data.short_names, data.categories, data.unified):
        assert strings.shape == (n,) and strings.dtype.kind == "U"
    assert data.heldout.shape == (n,) and data.heldout.dtype == bool
    assert emoji.DEFAULT_PATH.stat().st_size < 5_000_000
    # Sort order starts with the smileys; no skin-tone variants (U+1F3FB..1F3FF) or swatches made it in.
    assert data.short_names[0] == "grinning" and data.unified[0] == "1F600" and data.names[0] == "GRINNING FACE"
    assert not any(f"1F3F{d}" in u for u in data.unified for d in "BCDEF")
    assert "Component" not in data.categories_list()


def test_arrays_are_read_only_and_shared(data):
    assert load_emoji().images is data.images
    with pytest.raises(ValueError):
        data.images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError):
        data.heldout[0] = True


def test_identifiers_are_unique(data):
    assert len(set(data.short_names.tolist())) == len(data)
    assert len(set(data.unified.tolist())) == len(data)
    # Names are the package's, and it gives U+1F935 and its man ZWJ sequence the same Unicode name.
    repeated = {name for name, count in collections.Counter(data.names.tolist()).items() if count > 1}
    assert repeated == {"MAN IN TUXEDO"}


def test_heldout_split_is_about_a_tenth_fixed_by_short_name_and_disjoint(data):
    train, held = data.train_indices(), data.heldout_indices()
    assert 0.07 <= len(held) / len(data) <= 0.13
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(data)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, held])), np.arange(len(data)))
    # The documented rule, recomputed here: first byte of sha256(short name) below 26.
    rule = [hashlib.sha256(s.encode()).digest()[0] < 26 for s in data.short_names.tolist()]
    np.testing.assert_array_equal(data.heldout, rule)
    for category in data.categories_list():
        members = data.categories == category
        if members.sum() >= 10:
            assert data.heldout[members].any(), category


def test_every_image_has_a_glyph_on_a_transparent_ground(data):
    alpha = data.images[..., 3]
    assert ((alpha >= 128).sum(axis=(1, 2)) > 0).all()  # some (mostly) opaque pixels in every image
    assert ((alpha < 128).sum(axis=(1, 2)) > 0).all()  # and some (mostly) transparent ones
    assert (alpha == 0).any(axis=(1, 2)).mean() > 0.99  # all but a few square ones reach full transparency
    corners = alpha[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 0).mean() > 0.9 and (corners < 128).all()


def test_categories_list_is_in_sort_order(data):
    categories = data.categories_list()
    assert categories[0] == "Smileys & Emotion" and categories[-1] == "Flags" and len(categories) == 9
    assert set(categories) == set(data.categories.tolist())


def test_index_finds_known_short_names_and_rejects_unknown_ones(data):
    assert data.index("grinning") == 0
    i = data.index("banana")
    assert data.short_names[i] == "banana" and data.categories[i] == "Food & Drink"
    with pytest.raises(KeyError, match="no emoji has the short name 'grinnning'.*grinning"):
        data.index("grinnning")


def test_rgba_float_premultiplies_rgb_by_alpha(data):
    i = data.index("grinning")
    image = data.images[i].astype(np.float64)
    out = data.rgba_float([i])
    assert out.shape == (1, 32, 32, 4) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    alpha = data.images[i, ..., 3]
    partial = np.argwhere((alpha > 0) & (alpha < 255))[:3]
    pixels = [tuple(p) for p in partial] + [tuple(np.argwhere(alpha == 255)[0]), tuple(np.argwhere(alpha == 0)[0])]
    for y, x in pixels:
        r, g, b, a = image[y, x]
        expected = [r / 255 * a / 255, g / 255 * a / 255, b / 255 * a / 255, a / 255]
        np.testing.assert_allclose(out[0, y, x], expected, rtol=1e-6, atol=1e-7)
    # Where alpha is 0 the stored colour is bled edge colour, which premultiplying removes.
    y, x = pixels[-1]
    assert data.images[i, y, x, :3].any() and not out[0, y, x].any()
    assert data.rgba_float().shape == data.images.shape


@pytest.mark.parametrize(
    "damage",
    [lambda raw: raw[: len(raw) // 2], lambda raw: raw[:1000] + bytes([raw[1000] ^ 0xFF]) + raw[1001:]],
    ids=["truncated", "byte-flipped"],
)
def test_damaged_copy_gives_data_error_with_rebuild_command(tmp_path, damage):
    path = _copy(tmp_path, damage(emoji.DEFAULT_PATH.read_bytes()))
    with pytest.raises(DataError) as info:
        load_emoji(path)
    message = str(info.value)
    assert REBUILD in message and str(path) in message and "sha256" in message


def test_truncated_file_with_matching_hash_is_a_data_error(tmp_path):
    raw = emoji.DEFAULT_PATH.read_bytes()[:4096]
    path = _copy(tmp_path, raw, hashlib.sha256(raw).hexdigest())
    with pytest.raises(DataError, match="cannot be read") as info:
        load_emoji(path)
    assert REBUILD in str(info.value)


def test_missing_file_names_the_rebuild_command(tmp_path):
    with pytest.raises(DataError, match="missing") as info:
        load_emoji(tmp_path / "emoji.npz")
    assert REBUILD in str(info.value)


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _small(n: int = 3, size: int = 32) -> dict[str, np.ndarray]:
    return {
        "images": np.zeros((n, size, size, 4), np.uint8),
        "names": np.array([f"NAME {i}" for i in range(n)]),
        "short_names": np.array([f"name_{i}" for i in range(n)]),
        "categories": np.array(["Objects"] * n),
        "unified": np.array([f"1F{i:03X}" for i in range(n)]),
        "heldout": np.zeros(n, bool),
    }


def test_wrong_shapes_with_an_explicit_matching_digest_are_rejected(tmp_path):
    raw = _npz(**_small(size=16))
    path = tmp_path / "small.npz"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=r"images is uint8\(3, 16, 16, 4\), expected uint8\(N, 32, 32, 4\)") as info:
        load_emoji(path, sha256=hashlib.sha256(raw).hexdigest())
    assert REBUILD in str(info.value)

    arrays = _small()
    arrays["heldout"] = np.zeros(4, bool)
    raw = _npz(**arrays)
    path.write_bytes(raw)
    with pytest.raises(DataError, match=r"heldout is bool\(4,\), expected bool\(N,\) with N = 3 as in images"):
        load_emoji(path, sha256=hashlib.sha256(raw).hexdigest())


def test_a_well_formed_small_file_loads_and_repeated_short_names_are_refused(tmp_path):
    raw = _npz(**_small())
    path = tmp_path / "small.npz"
    path.write_bytes(raw)
    small = load_emoji(path, sha256=hashlib.sha256(raw).hexdigest())
    assert len(small) == 3 and small.index("name_2") == 2

    arrays = _small()
    arrays["short_names"] = np.array(["same"] * 3)
    raw = _npz(**arrays)
    path.write_bytes(raw)
    with pytest.raises(DataError, match="short_names are not unique"):
        load_emoji(path, sha256=hashlib.sha256(raw).hexdigest())


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_build_cuts_32px_images_from_34px_cells_and_checks_the_layout():
    sheet = np.zeros((68, 68, 4), np.uint8)
    sheet[35:67, 1:33] = 200  # the image of cell (sheet_x 0, sheet_y 1)
    decoded = build_emoji.decode_sheet(_png(sheet))
    np.testing.assert_array_equal(build_emoji.cut(decoded, {"sheet_x": 0, "sheet_y": 1, "short_name": "a"}), 200)
    with pytest.raises(ValueError, match="fully transparent"):
        build_emoji.cut(decoded, {"sheet_x": 1, "sheet_y": 1, "short_name": "b"})
    with pytest.raises(ValueError, match="off the sheet"):
        build_emoji.cut(decoded, {"sheet_x": 2, "sheet_y": 0, "short_name": "c"})
    sheet[34, 5, 3] = 1  # paint the top border of cell (0, 1): the layout is not what the script assumes
    with pytest.raises(ValueError, match="border"):
        build_emoji.cut(build_emoji.decode_sheet(_png(sheet)), {"sheet_x": 0, "sheet_y": 1, "short_name": "a"})
    with pytest.raises(ValueError, match="whole number"):
        build_emoji.decode_sheet(_png(np.zeros((68, 70, 4), np.uint8)))
    with pytest.raises(ValueError, match="RGBA"):
        build_emoji.decode_sheet(_png(np.zeros((68, 68, 3), np.uint8)))
