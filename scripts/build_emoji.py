"""Build the emoji file that ships inside athanor: ``src/athanor/data/emoji.npz`` (+ ``emoji.sha256``).

Source: the npm registry package ``emoji-datasource-google`` version 16.0.0 (tarball sha1
a80ac3e8106cbd4d8648ce758aa099e8827b6157, integrity sha512 as pinned below; emoji data by Cal Henderson,
https://github.com/iamcal/emoji-data, covering Emoji 16.0). Two of its files are used: ``emoji.json`` (name,
short_name, category, unified code points, sort_order, has_img_google, sheet_x/sheet_y, skin_variations) and the
32 px sprite sheet ``img/google/sheets-clean/32.png``. The "clean" sheet holds Google's own images only, with no
fallback artwork from other vendors for emoji Google lacks; for the emoji kept here it is pixel-identical to the
ordinary sheet, since every one of them has a Google image.

Licence and attribution: the artwork is Noto Color Emoji by Google, under the Apache License 2.0
(https://github.com/googlefonts/noto-emoji). emoji-datasource (the data and the sheet packing) is by Cal Henderson
(iamcal) under the MIT licence. athanor ships this derived copy under those terms, with this attribution.

Layout of the sheet, checked rather than assumed: it is a square grid of 34 px cells, each a 32 px image with a
1 px transparent border, so emoji (sheet_x, sheet_y) occupies rows 34*sheet_y+1 .. +32 and columns
34*sheet_x+1 .. +32. The script checks that the sheet is a whole number of cells, that every referenced cell
lies inside it and that the border of every cell it cuts is fully transparent.

Selection: base emoji only. The 1,911 entries of emoji.json all have a Google image (has_img_google); the
skin-tone variants listed under each entry's skin_variations are not taken, and the category "Component" is
dropped because in this version it holds only the five skin-tone swatches (skin-tone-2 .. skin-tone-6), which
are colour patches rather than emoji. That leaves N = 1906 emoji in nine categories (counts pinned in
CATEGORY_COUNTS), ordered by the package's sort_order (the Unicode CLDR order).

Held-out split: emoji i is held out when the first byte of sha256(short_name as UTF-8) is below 26, an expected
26/256 = 10.2%; it gives 213 of 1906 (11.2%), with held-out emoji in every category. It depends on the short
name alone, so it does not move when emoji are added or reordered in another version.

Output arrays (no pickled objects; strings are fixed-width unicode ``<U..``), in sort_order:
``images`` uint8 (N, 32, 32, 4), RGBA with straight (not premultiplied) alpha exactly as in the PNG. Under
fully transparent pixels the sheet's RGB is not zero but colour bled outward from the glyph's edge (the sheet is
made for scaling), so multiply by alpha before using the colour; ``athanor.data.emoji`` does that in
``rgba_float``. ``names`` (the package's upper-case names; "MAN IN TUXEDO" is both person_in_tuxedo U+1F935,
whose Unicode name it is, and its man_in_tuxedo ZWJ sequence, so names are not unique; short names are),
``short_names``, ``categories``, ``unified`` (code points, e.g. "1F600" or "1F468-200D-1F469-200D-1F466"),
``heldout`` bool (N,).

Rebuild (needs ``npm`` and access to the npm registry; run from the repository root)::

    python scripts/build_emoji.py

The script runs ``npm pack emoji-datasource-google@16.0.0`` in a temporary directory, checks the tarball's sha1
and sha512, reads the two files straight from the tarball, decodes the PNG with Pillow (installed with imageio),
and writes the npz with the deterministic writer of ``scripts/_npz.py`` (fixed zip timestamps), so a rebuild is
byte-identical and reproduces the recorded sha256.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

# scripts/ is not a package: put this file's folder on the path so the shared helper imports however the script is
# loaded (run directly, or by path from the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _npz import npm_pack, write_shipped  # noqa: E402

PACKAGE = "emoji-datasource-google"
VERSION = "16.0.0"
# Both as `npm view emoji-datasource-google@16.0.0 dist` reports them (shasum, integrity).
TARBALL_SHA1 = "a80ac3e8106cbd4d8648ce758aa099e8827b6157"
TARBALL_INTEGRITY = "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A=="

EMOJI_JSON = "package/emoji.json"
PACKAGE_JSON = "package/package.json"
SHEET_PNG = "package/img/google/sheets-clean/32.png"

SIZE = 32  # pixels of one emoji image
PITCH = SIZE + 2  # a 1 px transparent border on every side of each image in the sheet

EXCLUDED_CATEGORIES = ("Component",)
CATEGORY_COUNTS = {
    "Smileys & Emotion": 169,
    "People & Body": 386,
    "Animals & Nature": 159,
    "Food & Drink": 131,
    "Travel & Places": 218,
    "Activities": 85,
    "Objects": 264,
    "Symbols": 224,
    "Flags": 270,
}
HELDOUT_BYTE_BELOW = 26  # of 256: about 10% held out

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "src" / "athanor" / "data"


def fetch_package(workdir: Path) -> dict[str, bytes]:
    """``npm pack`` the pinned package into workdir, verify the tarball and return the files this build reads."""
    tarball = npm_pack(workdir, PACKAGE, VERSION, TARBALL_SHA1)
    raw = tarball.read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(raw).digest()).decode("ascii")
    if integrity != TARBALL_INTEGRITY:
        raise ValueError(f"{tarball.name}: integrity {integrity} differs from the pinned {TARBALL_INTEGRITY}")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        for name in (EMOJI_JSON, PACKAGE_JSON, SHEET_PNG):
            member = tar.extractfile(name)
            if member is None:
                raise ValueError(f"{tarball.name}: {name} is not a regular file")
            files[name] = member.read()
    manifest = json.loads(files[PACKAGE_JSON])
    if (manifest.get("name"), manifest.get("version"), manifest.get("license")) != (PACKAGE, VERSION, "MIT"):
        raise ValueError(f"{tarball.name}: package.json names {manifest.get('name')}@{manifest.get('version')}")
    return files


def decode_sheet(png: bytes) -> np.ndarray:
    """The sheet as uint8 (H, W, 4), straight alpha, refusing anything but an RGBA PNG of whole cells."""
    with Image.open(io.BytesIO(png)) as image:
        if image.format != "PNG" or image.mode != "RGBA":
            raise ValueError(f"{SHEET_PNG}: {image.format} {image.mode}, expected an RGBA PNG")
        sheet = np.asarray(image, dtype=np.uint8).copy()
    height, width = sheet.shape[:2]
    if height % PITCH or width % PITCH:
        raise ValueError(f"{SHEET_PNG}: {width}x{height} px is not a whole number of {PITCH} px cells")
    return sheet


def select(entries: list[dict]) -> list[dict]:
    """Base emoji with a Google image, Component swatches dropped, in sort_order; checks the pinned counts."""
    kept = [e for e in entries if e["has_img_google"] and e["category"] not in EXCLUDED_CATEGORIES]
    kept.sort(key=lambda e: e["sort_order"])
    for field in ("sort_order", "short_name", "unified"):
        repeated = [v for v, n in collections.Counter(e[field] for e in kept).items() if n > 1]
        if repeated:
            raise ValueError(f"{EMOJI_JSON}: {field} repeats: {repeated[:5]}")
    counts = dict(collections.Counter(e["category"] for e in kept))
    if counts != CATEGORY_COUNTS:
        raise ValueError(f"{EMOJI_JSON}: category counts {counts} differ from the pinned {CATEGORY_COUNTS}")
    return kept


def cut(sheet: np.ndarray, entry: dict) -> np.ndarray:
    """The 32x32 image of one entry, after checking that its cell's 1 px border is fully transparent."""
    top, left = entry["sheet_y"] * PITCH, entry["sheet_x"] * PITCH
    if top + PITCH > sheet.shape[0] or left + PITCH > sheet.shape[1]:
        raise ValueError(f"{entry['short_name']}: cell ({entry['sheet_x']}, {entry['sheet_y']}) lies off the sheet")
    cell = sheet[top : top + PITCH, left : left + PITCH]
    border = np.concatenate([cell[0], cell[-1], cell[:, 0], cell[:, -1]])
    if border[:, 3].any():
        raise ValueError(f"{entry['short_name']}: cell border is not transparent; the sheet layout is not 1+32+1 px")
    image = cell[1:-1, 1:-1]
    if not image[..., 3].any():
        raise ValueError(f"{entry['short_name']}: its image is fully transparent")
    return image


def is_heldout(short_name: str) -> bool:
    return hashlib.sha256(short_name.encode("utf-8")).digest()[0] < HELDOUT_BYTE_BELOW


def build_arrays(files: dict[str, bytes]) -> dict[str, np.ndarray]:
    kept = select(json.loads(files[EMOJI_JSON]))
    sheet = decode_sheet(files[SHEET_PNG])
    # np.array of str gives fixed-width '<U<longest>' arrays: no object arrays, so no pickles in the npz.
    return {
        "images": np.stack([cut(sheet, e) for e in kept]),
        "names": np.array([e["name"] for e in kept], dtype=str),
        "short_names": np.array([e["short_name"] for e in kept], dtype=str),
        "categories": np.array([e["category"] for e in kept], dtype=str),
        "unified": np.array([e["unified"] for e in kept], dtype=str),
        "heldout": np.array([is_heldout(e["short_name"]) for e in kept], dtype=bool),
    }


def build(out_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        files = fetch_package(Path(tmp))
    arrays = build_arrays(files)

    return write_shipped(out_dir, "emoji", arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where emoji.npz and emoji.sha256 go")
    args = parser.parse_args(argv)
    digest = build(args.out_dir)
    npz_path = args.out_dir / "emoji.npz"
    print(f"wrote {npz_path} ({npz_path.stat().st_size} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
