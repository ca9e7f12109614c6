"""benchmarks/bench_causal.py: the quick run (the tiny random model) writes the JSON it promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import bench_causal as bench  # noqa: E402


def test_quick_run_writes_its_json(tmp_path):
    out = tmp_path / "causal.json"
    bench.main(["--quick", "--repeats", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["score"]["candidates_per_s"] > 0 and result["generate"]["tokens_per_s"] > 0
    assert 0 < result["generate"]["tokens"] <= bench.QUICK["samples"] * bench.QUICK["tokens"]
    assert result["load_s"] >= 0 and result["peak_rss_mb"] > 0 and result["sizes"] == bench.QUICK
