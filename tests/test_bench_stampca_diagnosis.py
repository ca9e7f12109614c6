"""benchmarks/stampca_diagnosis.py: its measurements on tiny runs stay consistent with one another and in range,
an update rule that changes nothing gives a flat error curve, and the learning curve's windows are exact."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import stampca_diagnosis as D  # noqa: E402

from athanor import api  # noqa: E402
from athanor.systems.stampca import autoencoder, nca  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    emoji = api.start_run("stampca", preset="tiny", out=out, progress=False)
    digits = api.start_run("stampca-gan", preset="tiny", out=out, progress=False)
    return emoji.run_dir, digits.run_dir


def test_emoji_measurements_are_consistent(runs):
    out = D.emoji_diagnosis(runs[0], n_emoji=4)
    t = out["grow_max"]
    for split in ("train", "heldout"):
        got = out[split]
        assert t in got["steps"] and 2 * t in got["steps"] and got["steps"][-1] == D.HORIZONS * t
        mse = np.array(got["mse"])
        assert np.allclose(got["ratio"], mse / got["constant_mse"], rtol=1e-2)
        assert got["mse_T"] == got["mse"][got["steps"].index(t)]
        assert got["drift_2T_over_T"] == pytest.approx(got["mse_2T"] / got["mse_T"], rel=1e-2)
        assert got["mse_best"] == min(got["mse"]) and got["best_step"] in got["steps"]
        i = got["steps"].index(t)
        assert got["own_over_other_T"] == pytest.approx(got["mse"][i] / got["mse_other"][i], rel=1e-2)
        assert all(m >= 0 for m in got["mass"])
    ref = out["decoder_reference"]
    assert ref["updates"] == json.loads((runs[0] / "config.json").read_text())["config"]["steps"]
    for split in ("train", "heldout"):
        assert ref[split]["mse"] > 0 and ref[split]["ratio"] > 0 and ref[split]["own_over_other"] > 0


def test_other_is_zero_when_the_next_world_is_the_same_design():
    y = np.random.default_rng(0).uniform(size=(3, 4, 4, 4)).astype(np.float32)
    assert np.allclose(D._other(np.concatenate([y[:1]] * 3), np.concatenate([y[:1]] * 3)), 0.0)
    got = np.asarray(D._other(y, y))  # world i against target i - 1
    assert np.allclose(got, [np.mean((y[i] - y[i - 1]) ** 2) for i in range(3)], atol=1e-7)


def test_digit_measurements_are_in_range(runs):
    out = D.mnist_diagnosis(runs[1], n_digits=6)
    n = len(out["steps"])
    for key in ("mse", "mass", "confidence", "class_entropy", "agrees_with_gan"):
        assert len(out[key]) == n
    assert all(0.1 - 1e-6 <= c <= 1 for c in out["confidence"])  # a softmax over 10 classes has max >= 0.1
    assert all(0 <= h <= math.log2(6) + 1e-9 for h in out["class_entropy"])  # 6 digits: at most log2 6 bits
    assert all(0 <= a <= 1 for a in out["agrees_with_gan"])
    assert 0.1 - 1e-6 <= out["gan_confidence"] <= 1


def test_a_rule_that_changes_nothing_gives_a_flat_curve():
    cfg = autoencoder.Config(channels=8, hidden=16, grow_min=4, grow_max=4)
    rule = nca.UpdateRule(cfg.channels, cfg.hidden)
    params = rule.init(jax.random.PRNGKey(0), np.zeros((1, 1, 1, 3 * cfg.channels)))["params"]  # last layer 0
    seeds = np.zeros((3, cfg.channels), np.float32)
    seeds[:, 3], seeds[:, 4:] = 1.0, np.random.default_rng(0).normal(size=(3, cfg.channels - 4))
    x0 = nca.centred(seeds, (8, 8))
    targets = np.random.default_rng(1).uniform(size=(3, 8, 8, 4)).astype(np.float32)
    steps, curves = D.rollout_curve(params, cfg, x0, targets, jax.random.PRNGKey(1),
                                    lambda x, t: {"mse": nca.visible_mse(x, t)}, batch=2)
    assert steps == list(range(4, D.HORIZONS * 4 + 1, 4))
    assert np.allclose(curves["mse"], np.asarray(nca.visible_mse(x0, targets))[None], atol=1e-7)


def test_learning_curve_windows(tmp_path):
    lines = [{"step": s, "kind": "train", "loss": float(s)} for s in range(50, 1001, 50)]
    lines.insert(3, {"step": 150, "kind": "eval", "mse": 9.0})  # not a training record
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    got = D.learning_curve(tmp_path)
    assert got["ends"] == [250, 500, 750, 1000]
    assert got["loss"] == [150.0, 400.0, 650.0, 900.0]  # means of 50..250, 300..500, ...
    assert got["last_window_drop"] == pytest.approx((650 - 900) / 650, abs=1e-4)
    after = D.learning_curve(tmp_path, after=500)
    assert after["ends"] == [750, 1000] and after["loss"] == [650.0, 900.0]
    assert D.learning_curve(tmp_path, after=1000) == {"window": D.WINDOW, "ends": [], "loss": [],
                                                     "last_window_drop": None}
