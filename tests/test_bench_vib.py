"""benchmarks/bench_vib.py: its PyTorch baseline computes the `vib` loss (the same value from the same parameters
and noise), and the quick run writes the JSON it promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import bench_vib as bench  # noqa: E402


def test_baseline_computes_the_same_loss():
    import dataclasses

    from athanor.systems.vib import vib as V

    cfg = dataclasses.replace(V.Config(), hidden=48, latent_dim=6, beta=0.3)
    data = V.load_data(cfg, 0)
    out = bench.equivalence(cfg, V.init(cfg, 0, data).params, data)
    assert out["loss_jax"] > 0 and out["abs_diff"] < 1e-4 * out["loss_jax"]


def test_quick_run_writes_its_json(tmp_path):
    out = tmp_path / "vib.json"
    bench.main(["--quick", "--repeats", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    for impl in ("jax", "torch_eager"):
        assert result[impl]["s_per_update"] > 0 and result[impl]["epoch_s"] == pytest.approx(
            600 * result[impl]["s_per_update"], rel=0.01)
    assert result["equivalence"]["abs_diff"] < 1e-3 and result["attacks_s"] > 0 and result["evaluation_s"] > 0
