"""Helpers for the tests of the shipped data files (imported by the tests as ``shipped_data``; tests/conftest.py puts
tests/ on the path): load a build script from ``scripts/`` as a module, and copy a data file with its checksum."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_shipped(tmp_path: Path, shipped: Path, data: bytes, digest: str | None = None) -> Path:
    """Write ``data`` as ``tmp_path / shipped.name`` with a sha256 file beside it: the shipped file's own digest
    unless ``digest`` is given."""
    target = tmp_path / shipped.name
    target.write_bytes(data)
    sha = target.with_suffix(".sha256")
    if digest is None:
        shutil.copyfile(shipped.with_suffix(".sha256"), sha)
    else:
        sha.write_text(digest + "\n")
    return target
