"""benchmarks/bench_stampca.py and its PyTorch baseline: the baseline computes the `stampca` update's maths (same
loss and gradients from the same parameters, same losses over several updates of the system's own step), and
the quick run writes the JSON it promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import bench_stampca as bench  # noqa: E402
import torch_stampca_baseline as tb  # noqa: E402

SMALL = {"batch_size": 3, "channels": 12, "hidden": 24, "steps": 6, "inner_steps": 1, "max_emoji": 8}


@pytest.fixture(scope="module")
def small():
    """The JAX config, data and initial state at SMALL sizes with every cell firing (deterministic rollouts)."""
    from athanor.systems.stampca import autoencoder as A

    cfg = bench.jax_config(SMALL, fire_rate=1.0)
    data = A.load_data(cfg, 0)
    return cfg, data, A.init(cfg, 0, data)


@pytest.mark.parametrize("perception", tb.PERCEPTIONS)
def test_same_loss_and_gradients_from_the_same_parameters(small, perception):
    cfg, data, state = small
    targets = data["images"][data["train"][:4]]  # four different emoji
    j, t = bench.loss_and_grads(cfg, bench.perturbed(state.params), targets, steps=5, perception=perception)
    assert j["loss"] > 1e-3  # a real rollout, not the seed alone
    assert abs(j["loss"] - t["loss"]) < 1e-4
    assert j["grads"].keys() == t["grads"].keys()
    for name, g in j["grads"].items():
        assert np.abs(g).max() > 0, name  # every parameter takes part
        np.testing.assert_allclose(t["grads"][name], g, atol=1e-4 * np.abs(g).max(), rtol=0, err_msg=name)


def test_updates_follow_the_system_step(small):
    """Three updates of the system's jitted step against three of the baseline, from the same initial parameters
    (zero last layer included) on a one-emoji training set, so both draw the same batch: the losses agree, which
    takes the gradient normalisation and Adam doing the same thing."""
    from athanor.systems.stampca import autoencoder as A

    cfg = bench.jax_config({**SMALL, "max_emoji": 1}, fire_rate=1.0)
    data = A.load_data(cfg, 0)
    state = A.init(cfg, 0, data)
    trainer = tb.Trainer(np.asarray(data["images"]), 1, batch_size=cfg.batch_size, channels=cfg.channels,
                         hidden=cfg.hidden, steps=cfg.grow_max, fire_rate=1.0, lr=cfg.lr, jax_params=state.params)
    jax_losses, torch_losses = [], []
    for _ in range(3):
        state, info = A.step(state, data, cfg)
        jax_losses.append(float(info["loss"]))
        torch_losses.append(trainer.update())
    assert abs(jax_losses[2] - jax_losses[0]) > 1e-4  # the parameters moved, by ten times the tolerance below
    np.testing.assert_allclose(torch_losses, jax_losses, atol=1e-5, rtol=0)


def test_quick_run_writes_the_json(tmp_path, monkeypatch):
    out = tmp_path / "stampca.json"
    monkeypatch.setattr(sys, "argv", ["bench_stampca.py", "--quick", "--repeats", "1", "--skip-compile",
                                      "--out", str(out)])
    bench.main()
    r = json.loads(out.read_text())
    assert r["system"] == "stampca" and r["quick"] and r["sizes"]["steps"] == bench.QUICK["steps"]
    for name in ("jax", "torch_eager"):
        assert r[name]["s_per_update"] > 0 and r[name]["first_call_s"] > 0 and r[name]["impl"]
        assert len(r[name]["blocks_s_per_update"]) == 1
    assert "torch_compiled" not in r and r["target_faster_than_compiled_torch"] is None
    assert r["ratios"]["jax_speedup_vs_eager"] > 0
    assert r["equivalence"]["max_abs_diff"] < 1e-4
    assert r["peak_rss_mb"] > 0 and r["machine"]["cpus"] >= 1 and r["run_wall_s"] > 0
    assert {"jax", "torch"} <= r["versions"].keys() and "git_sha" in r
