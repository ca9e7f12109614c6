"""`athanor data` through the real entry point: build, list, verify, plot, damage reports and usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco")
pytest.importorskip("ogbench")

ROOT = Path(__file__).resolve().parents[1]
SPEC = ["--maze", "medium", "--episodes", "2", "--episode-len", "30", "--noise", "0.3", "--seed", "7"]


def athanor(data_dir: Path, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "ATHANOR_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "athanor", "data", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_data_build_list_verify_plot(tmp_path):
    p = athanor(tmp_path, "list", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []

    p = athanor(tmp_path, "build", *SPEC, "--quiet")
    assert p.returncode == 0, p.stderr
    path = Path(p.stdout.strip().splitlines()[-1])
    assert path == tmp_path / "pointmaze" / "medium-e2-l30-n0.3-s7.npz" and path.is_file()
    assert "58 transitions" in p.stdout

    p = athanor(tmp_path, "build", *SPEC, "--quiet")
    assert p.returncode == 0 and "already cached" in p.stdout

    p = athanor(tmp_path, "list", "--json")
    (row,) = json.loads(p.stdout)
    assert row["ok"] and row["transitions"] == 58 and row["noise"] == 0.3 and row["seed"] == 7
    p = athanor(tmp_path, "list")
    assert p.returncode == 0 and "medium" in p.stdout and " ok " in p.stdout

    p = athanor(tmp_path, "verify")
    assert p.returncode == 0 and p.stdout.startswith("ok ")

    path.write_bytes(path.read_bytes()[:-100])  # truncated
    p = athanor(tmp_path, "verify")
    assert p.returncode == 1
    assert "checksum mismatch" in p.stdout and str(path) in p.stdout
    p = athanor(tmp_path, "verify", str(tmp_path / "nowhere.npz"))
    assert p.returncode == 1 and "missing" in p.stdout

    out = tmp_path / "actions.png"
    p = athanor(tmp_path, "plot", *SPEC, "--quiet", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "rebuilding" in p.stderr and "checksum mismatch" in p.stderr  # the damaged copy was replaced
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert athanor(tmp_path, "verify").returncode == 0


@pytest.mark.parametrize("args, needle", [
    (["build", "--maze", "huge"], "unknown maze 'huge'"),
    (["build", "--episodes", "0"], "episodes must be an integer >= 1"),
    (["plot", "--episodes", "2"], "--out"),
    (["frobnicate"], "invalid choice"),
])
def test_data_usage_errors_exit_2_without_traceback(tmp_path, args, needle):
    p = athanor(tmp_path, *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "pointmaze").exists()
