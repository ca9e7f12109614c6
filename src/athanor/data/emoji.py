"""The shipped emoji images (Noto Color Emoji, 32x32 RGBA), checksummed and loaded without any download.

``emoji.npz`` next to this module holds the 1906 base emoji of Unicode Emoji 16.0 that Google draws (no
skin-tone variants, no skin-tone swatches), in the Unicode CLDR order, built by ``scripts/build_emoji.py`` from
the npm package ``emoji-datasource-google`` 16.0.0 (which the script documents): ``images`` uint8
(N, 32, 32, 4) RGBA with straight alpha as in the source PNG; fixed-width unicode arrays ``names`` (the
package's upper-case names, e.g. "GRINNING FACE"; one name is shared by two emoji), ``short_names`` (unique,
e.g. "grinning"), ``categories`` (nine CLDR groups such as "Smileys & Emotion") and ``unified`` (code points,
e.g. "1F600"); and ``heldout`` bool (N,), a fixed split of about 10% (213 emoji): those whose short name's
sha256 begins with a byte below 26. ``emoji.sha256`` holds the sha256 of the npz; it is checked before the file
is opened (``athanor.data.checked``), so a damaged file is a ``DataError`` naming the file and the rebuild
command. Arrays are cached per path and read-only.

Licence and attribution: the artwork is Noto Color Emoji by Google, Apache License 2.0; the emoji data and
sprite sheet it was cut from are emoji-datasource by Cal Henderson (iamcal), MIT licence.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from athanor.data.checked import ANY_STR, data_error, load_checked_npz

DATA_DIR = Path(__file__).resolve().parent
DEFAULT_PATH = DATA_DIR / "emoji.npz"
REBUILD = "python scripts/build_emoji.py"

SIZE = 32
SPEC = {
    "images": ("uint8", ("N", SIZE, SIZE, 4)),
    "names": (ANY_STR, ("N",)),
    "short_names": (ANY_STR, ("N",)),
    "categories": (ANY_STR, ("N",)),
    "unified": (ANY_STR, ("N",)),
    "heldout": ("bool", ("N",)),
}


@dataclass(frozen=True, eq=False)
class Emoji:
    """The emoji arrays (all of length N, in the package's sort order) and ways to pick from them."""

    images: np.ndarray  # uint8 (N, 32, 32, 4), RGBA, straight alpha
    names: np.ndarray  # <U (N,)
    short_names: np.ndarray  # <U (N,), unique
    categories: np.ndarray  # <U (N,)
    unified: np.ndarray  # <U (N,)
    heldout: np.ndarray  # bool (N,)

    def __len__(self) -> int:
        return len(self.short_names)

    def train_indices(self) -> np.ndarray:
        """Indices of the emoji outside the held-out split, ascending."""
        return np.flatnonzero(~self.heldout)

    def heldout_indices(self) -> np.ndarray:
        """Indices of the held-out emoji (about 10%), ascending."""
        return np.flatnonzero(self.heldout)

    def rgba_float(self, indices: np.ndarray | list[int] | None = None) -> np.ndarray:
        """float32 (n, 32, 32, 4) in [0, 1] with RGB premultiplied by alpha, for all emoji or those at indices.

        Premultiplied, as growing neural cellular automata use their target emoji: RGB = (rgb / 255) * (a / 255)
        and A = a / 255, so a fully transparent pixel is (0, 0, 0, 0) whatever colour the sheet held under it
        (the stored straight-alpha RGB is colour bled outward from the glyph's edges there, not zero).
        """
        images = self.images if indices is None else self.images[np.asarray(indices)]
        out = images.astype(np.float32) / np.float32(255)
        out[..., :3] *= out[..., 3:]
        return out

    def categories_list(self) -> list[str]:
        """The distinct categories in the order they first appear (the CLDR group order)."""
        _, first = np.unique(self.categories, return_index=True)
        return [str(self.categories[i]) for i in sorted(first)]

    def index(self, short_name: str) -> int:
        """The position of the emoji with this short name; KeyError (with close matches) if there is none."""
        found = np.flatnonzero(self.short_names == short_name)
        if len(found) == 0:
            close = difflib.get_close_matches(short_name, self.short_names.tolist(), n=3)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise KeyError(f"no emoji has the short name {short_name!r}{hint}")
        return int(found[0])


def load_emoji(path: str | Path | None = None, sha256: str | None = None) -> Emoji:
    """Load the shipped emoji (or the npz at path) after checking its sha256, dtypes and shapes.

    path: an npz to load instead of the shipped one (for tests and relocated copies).
    sha256: its expected hex digest; by default read from ``<path stem>.sha256`` beside the npz.
    Raises DataError when the file is missing, fails its checksum, cannot be read or has wrong arrays.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    arrays = load_checked_npz(path, sha256, SPEC, "emoji", REBUILD)
    # index() relies on unique short names; a file from a broken build is refused here rather than answering wrong.
    if len(np.unique(arrays["short_names"])) != len(arrays["short_names"]):
        raise data_error("emoji", path, "its short_names are not unique", REBUILD)
    return Emoji(**arrays)
