"""benchmarks/bench_fb.py: its PyTorch baseline computes the `successor/fb` loss (the same value from the same
parameters and task vectors), and the quick run writes the JSON it promises."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import bench_fb as bench  # noqa: E402


def test_baseline_computes_the_same_loss():
    import dataclasses

    from athanor.systems.successor import fb

    # two hidden layers so that the Dense -> ReLU path is covered; mix_ratio 0.5 so that z mixes both kinds
    cfg = dataclasses.replace(fb.Config(), hidden=(32, 24), dim=6, dataset_size=500, z_samples=100, dense_rewards=0)
    data = fb.load_data(cfg, 0)
    out = bench.equivalence(cfg, fb.init(cfg, 0, data).params, data)
    assert math.isfinite(out["loss_jax"]) and out["loss_jax"] != 0
    assert 0 < out["mixed"] < out["batch"]
    assert out["abs_diff"] < 1e-4 * abs(out["loss_jax"])


def test_quick_run_writes_its_json(tmp_path):
    out = tmp_path / "fb.json"
    bench.main(["--quick", "--repeats", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    for impl in ("jax", "torch_eager"):
        assert result[impl]["s_per_update"] > 0 and result[impl]["first_call_s"] >= 0
        assert result[impl]["updates_per_s"] == pytest.approx(1 / result[impl]["s_per_update"], rel=0.01)
    eq = result["equivalence"]
    assert eq["abs_diff"] < 1e-3 * max(1.0, abs(eq["loss_jax"]))
    assert result["evaluation_s"] > 0 and result["speedup_jax_over_torch"] > 0
