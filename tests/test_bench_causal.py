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


def test_roundtrip_check_reads_an_experiment(tmp_path):
    """benchmarks/causal_roundtrip.py on a tiny experiment: the reader places each concept at every position in
    turn, the pick counts add up, and the story control's own-question score is the experiment's held-out score."""
    import causal_roundtrip as check

    from athanor.api import run_experiment
    from athanor.core.runs import read_metrics
    from athanor.systems.causal import prompts as P

    exp_dir = run_experiment("causal-response", scale="tiny", seeds=1, out=tmp_path, progress=False)
    out = tmp_path / "roundtrip.json"
    result = check.main([str(exp_dir), "--model", "tiny-random", "--options", "3", "--draws", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    reader = result["reader"]
    assert reader["n"] == len(P.GRADED) * 4 * 2 and len(reader["rows"]) == reader["n"]
    assert abs(sum(reader["pick_position_share"]) - 1) < 1e-3 and len(reader["pick_position_share"]) == 3
    for k, row in enumerate(reader["rows"]):
        assert row["options"].index(row["concept"]) == (k // 4) % 2 and row["pick"] in row["options"]
    assert all(0 <= a <= 1 for a in reader["accuracy_by_level"])
    picks = result["picks"]["definitions_s0"]
    n = picks["n"]
    assert n == 2 and len(picks["true_position_counts"]) == 3
    assert sum(picks["true_position_counts"]) == sum(picks["forward_pick_position_counts"]) == n
    control = result["story_control"]["story_s0"]
    final = read_metrics(exp_dir / "story_s0")[-1]
    assert control["mean"]["own_steered"] == pytest.approx(final["heldout_steered"], abs=1e-6)
    assert control["mean"]["own_unsteered"] == pytest.approx(final["heldout_unsteered"], abs=1e-6)
    assert 0 <= control["mean"]["other_steered"] <= 1
