"""The multicell system: the census agrees with the grid, the measures match hand-made censuses, bad configs fail
clearly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from athanor.core.config import resolve
from athanor.core.errors import ConfigError
from athanor.envs import multicell as mc
from athanor.systems.multicell import world as W


@pytest.fixture(scope="module")
def ran():
    cfg = resolve(W.Config, W.PRESETS, "tiny")
    state = W.init(cfg, 0, None)
    for _ in range(3):
        state, info = W.step(state, None, cfg)
    return cfg, state, info


def test_census_agrees_with_the_grid(ran):
    cfg, state, info = ran
    c = W.census_arrays(state)
    assert len(c["tick"]) == 4 and c["tick"].tolist() == [0, 50, 100, 150]
    org = np.asarray(state.world.org)
    assert (c["frame"][-1] >= 0).sum() == (org >= 0).sum() == c["cells"][-1].sum() == info["cells"]
    alive = c["alive"][-1]
    assert np.array_equal(alive, c["cells"][-1] > 0)
    n_r = W.rules(cfg).n_reactions
    rx = np.asarray(state.world.rx)
    for m in np.flatnonzero(alive)[:10]:
        kinds = {int(k) for k in rx[org == m]}
        assert c["kinds"][-1, m] == sum(1 << k for k in kinds)
        assert c["kinds"][-1, m] & ~c["genome_kinds"][-1, m] == 0  # its cells run only what its genome makes
        assert 0 <= min(kinds) and max(kinds) <= n_r
    assert info["conservation_residual"] < 1e-4


def _census(frames, alive, kinds, gain=None, supply=None, types=None, cells=None, ticks=None):
    frames = np.asarray(frames, np.int8)
    T = len(frames)
    alive = np.asarray(alive, bool)
    M = alive.shape[1]
    z = np.zeros((T, M))
    return {"tick": np.asarray(ticks if ticks is not None else np.arange(T) * 10, np.int32), "alive": alive,
            "otype": np.asarray(types if types is not None else np.tile(np.arange(M), (T, 1)), np.uint32),
            "parent_type": np.asarray(types if types is not None else np.tile(np.arange(M), (T, 1)), np.uint32),
            "born": np.zeros((T, M), np.int32), "cells": np.asarray(cells if cells is not None else alive * 2),
            "kinds": np.asarray(kinds, np.int32), "genome_kinds": np.asarray(kinds, np.int32),
            "complexity": np.ones((T, M), np.int32),
            "gain": np.asarray(gain if gain is not None else z, np.float32),
            "supply_used": np.asarray(supply if supply is not None else z, np.float32),
            "chem": np.zeros((T, 8), np.float32), "frame": frames}


def test_efficiency_measure_on_a_hand_made_census():
    cfg = dataclasses.replace(W.Config(), steps=40, inner_steps=10, persist=1)
    frames = -np.ones((5, 4, 4))
    alive = np.ones((5, 3), bool)
    # organism 0 runs green only, 1 green + brown (a waste reaction), 2 brown only (not classified)
    kinds = np.tile([0b1, 0b11, 0b10], (5, 1))
    gain = np.tile([10.0, 30.0, 5.0], (5, 1))
    supply = np.tile([10.0, 15.0, 0.0], (5, 1))
    c = _census(frames, alive, kinds, gain, supply)
    c["kinds"][:, 1] = 0b1  # at its censuses organism 1's brown cells happened to be dead: the genome decides
    out = W.measure(c, cfg, 0)
    assert out["efficiency_green"] == pytest.approx(1.0)
    assert out["efficiency_mixed"] == pytest.approx(2.0)
    assert out["efficiency_ratio"] == pytest.approx(2.0)
    assert out["mixed_organisms"] == 1


def test_early_bottom_and_killer_and_multi_measures():
    cfg = dataclasses.replace(W.Config(), steps=100, inner_steps=10, persist=1)
    n_r = W.rules(cfg).n_reactions
    T = 11
    frames = -np.ones((T, 8, 8))
    frames[:, 6:, :4] = 0  # green in the bottom quarter
    frames[:, 6:, 4:] = 1  # brown beside it
    frames[5:, 0, 0] = n_r  # a killer in the second half (ticks 50..100)
    alive = np.ones((T, 2), bool)
    kinds = np.tile([0b1, 0b10 | 0b100], (T, 1))  # organism 1: two reactions
    kinds[5:, 0] |= 1 << n_r
    cells = np.tile([8, 8], (T, 1))
    out = W.measure(_census(frames, alive, kinds, cells=cells), cfg, 0)
    assert out["early_bottom_green"] == pytest.approx(0.5)
    assert out["early_bottom_share"] == pytest.approx(1.0)
    assert out["killer_present_late"] == pytest.approx(1.0)
    assert out["killer_type_span"] == pytest.approx(6 / 11)
    assert out["multi_share_late"] == pytest.approx(0.5)
    assert out["multi_type_span"] == pytest.approx(1.0)


@pytest.mark.parametrize("overrides, match", [
    ({"steps": 430}, "multiple of inner_steps"),
    ({"reactions": "01+02>01+02"}, "release no energy"),
    ({"reactions": "01+0x>03"}, "form"),
    ({"founders": 10_000}, "founders"),
])
def test_bad_configs_fail_clearly(overrides, match):
    cfg = dataclasses.replace(resolve(W.Config, W.PRESETS, "tiny"), **overrides)
    with pytest.raises(ConfigError, match=match):
        W.load_data(cfg, 0)


def test_video_frames_have_the_legend():
    cfg = resolve(W.Config, W.PRESETS, "tiny")
    frames = np.zeros((2, 16, 16), np.int8)
    frames[:, :8] = -1
    video = W.world_video(frames, W.rules(cfg), cfg.frame_scale)
    assert video.shape[:3] == (2, 16 * cfg.frame_scale, 16 * cfg.frame_scale + 300)
    green = (np.array(mc.REACTION_COLOURS[0]) * 255).round()
    assert np.abs(video[0, -1, 0] - green).max() <= 1 and np.array_equal(video[0, 0, 0], [0, 0, 0])
    chem = np.zeros((2, mc.N_CHEM))
    chem[1, 3] = 5.0
    gauged = W.world_video(frames, W.rules(cfg), cfg.frame_scale, chem)
    assert gauged.shape[2] == video.shape[2] + 160
    assert np.array_equal(gauged[:, :, 160:], video)  # the gauge sits on the left of the same frames
    assert not np.array_equal(gauged[0, :, :160], gauged[1, :, :160])  # and follows the amounts


@pytest.mark.slow
def test_quick_world_selects_green_at_the_supply_and_grows_more_efficient_chains():
    """The quick preset (48 x 48, 20,000 ticks; about a minute on 2 cores): founders of random reactions give way
    to green near the supply, and organisms running green with a waste reaction appear and get more energy per
    supplied molecule than green-only ones."""
    cfg = resolve(W.Config, W.PRESETS, "quick")
    state = W.init(cfg, 0, None)
    for _ in range(cfg.steps // cfg.inner_steps):
        state, _ = W.step(state, None, cfg)
    out = W.evaluate(state, None, cfg, 0)
    assert out["early_bottom_green"] > 0.5
    assert out["mixed_organisms"] > 0
    assert out["efficiency_ratio"] > 1.0
    assert out["conservation_residual"] < 1e-3
