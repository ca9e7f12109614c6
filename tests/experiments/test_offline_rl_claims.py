"""The `offline-rl` claims on hand-made final metrics: each claim flips with the numbers it reads."""

import math
from pathlib import Path

import pytest

from athanor.core.experiment import RunRecord, RunSpec
from athanor.experiments import offline_rl

SYSTEM = {label: system for system, label, _ in offline_rl.MODELS}


def rec(label, seed=0, **final):
    return RunRecord(RunSpec(SYSTEM[label], label), seed, Path("/nonexistent"), {"episodes": 100.0, **final})


def post_like(seeds=(0, 1, 2)):
    """Numbers shaped like the post: DDPG best and on the circle, AWR's std high, discrete multimodal."""
    out = []
    for s in seeds:
        jitter = 0.01 * s
        out += [
            rec("awr", s, success=0.30 + jitter, time_to_goal=300.0, awr_std=0.41, circle_frac=0.35, modes=0.6),
            rec("awr-beta100", s, success=0.50 + jitter, time_to_goal=250.0, awr_std=0.33, circle_frac=0.5, modes=1.0),
            rec("awr-discrete", s, success=0.70 + jitter, time_to_goal=200.0, circle_frac=0.85, modes=2.1),
            rec("ddpg", s, success=0.90 + jitter, success_tanh=0.90 + jitter, success_clip=0.88 + jitter,
                time_to_goal=150.0, circle_frac=0.98, modes=1.0),
            rec("ddpg-bc", s, success=0.85, success_tanh=0.85, success_clip=0.85, circle_frac=0.95, modes=1.0),
        ]
    return out


def verdicts(records, scale="full"):
    return {c.id: c.verdict for c in offline_rl._claims(records, scale)}


def edit(records, label, **final):
    for r in records:
        if r.spec.label == label:
            r.final.update(final)
    return records


def test_post_like_numbers_reproduce_every_claim():
    v = verdicts(post_like())
    assert set(v.values()) == {"reproduced"}, v
    assert len(v) == 6
    assert set(verdicts(post_like(), "tiny").values()) == {"inconclusive"}


@pytest.mark.parametrize("label, change, claim", [
    ("awr", {"awr_std": 0.05}, "awr_std_stays_high"),
    ("ddpg", {"circle_frac": 0.85}, "ddpg_actions_on_circle"),
    ("awr", {"circle_frac": 0.99}, "ddpg_actions_on_circle"),
    ("awr", {"success": 0.95}, "ddpg_beats_awr"),  # DDPG below AWR on every seed
    ("awr-discrete", {"modes": 1.2}, "discrete_awr_multimodal"),
    ("awr-discrete", {"circle_frac": 0.5}, "discrete_awr_multimodal"),
    ("awr-beta100", {"success": 0.25}, "temperature_narrows_not_closes"),  # no better than beta 10
    ("awr-beta100", {"success": 0.95}, "temperature_narrows_not_closes"),  # closes the gap
    ("awr-beta100", {"awr_std": 0.1}, "temperature_narrows_not_closes"),  # std collapsed
    ("ddpg", {"success_clip": 0.70}, "tanh_equals_clip"),
])
def test_each_claim_flips_with_its_numbers(label, change, claim):
    v = verdicts(edit(post_like(), label, **change))
    assert v[claim] == "not_reproduced", v
    assert sum(x == "not_reproduced" for x in v.values()) == 1 or claim == "ddpg_beats_awr", v


def test_ddpg_gap_must_exceed_the_seed_spread():
    records = post_like()
    # DDPG's seeds disagree wildly (0.35, 0.99, 0.99 vs AWR's 0.30-0.32): the interval of the gap straddles 0
    edit([r for r in records if r.seed == 0], "ddpg", success=0.35)
    edit([r for r in records if r.seed > 0], "ddpg", success=0.99)
    c = {c.id: c for c in offline_rl._claims(records, "full")}["ddpg_beats_awr"]
    assert c.verdict == "inconclusive" and c.leans == "reproduced"
    assert c.checks[0]["ci"][0] < 0 < c.checks[0]["ci"][1]


def test_one_seed_is_inconclusive():
    v = verdicts(post_like(seeds=(0,)))
    assert set(v.values()) == {"inconclusive"}


def test_tanh_clip_band_and_no_power_case():
    band = offline_rl.tanh_clip_band(post_like())
    p = (0.91 + 0.89) / 2  # means over seeds of 0.90 + 0.01 s and 0.88 + 0.01 s
    assert band == pytest.approx(2 * math.sqrt(2 * p * (1 - p) / 100))
    never = edit(post_like(), "ddpg", success_tanh=0.0, success_clip=0.0)
    assert verdicts(never)["tanh_equals_clip"] == "inconclusive"
    always = edit(post_like(), "ddpg", success_tanh=1.0, success_clip=1.0)
    assert verdicts(always)["tanh_equals_clip"] == "reproduced"


def test_missing_runs_are_inconclusive():
    records = [r for r in post_like() if r.spec.label != "awr-discrete"]
    v = verdicts(records)
    assert v["discrete_awr_multimodal"] == "inconclusive"
    failed = edit(post_like(), "ddpg")
    for r in failed:
        if r.spec.label == "ddpg":
            r.final.clear()
    v = verdicts(failed)
    assert v["ddpg_beats_awr"] == v["tanh_equals_clip"] == v["ddpg_actions_on_circle"] == "inconclusive"


def test_runs_cover_every_head_and_scale_overrides():
    for scale in ("tiny", "quick", "full"):
        specs = offline_rl.runs(scale)
        assert [s.label for s in specs] == list(offline_rl.LABELS)
        assert {s.system for s in specs} == {"iql", "iql-awr-discrete", "iql-ddpg", "iql-ddpg-bc"}
    high = [s for s in offline_rl.runs("full") if s.label == "awr-beta100"][0]
    assert high.overrides["beta"] == offline_rl.BETA_HIGH


def test_success_at_the_floor_decides_nothing():
    floor = post_like()
    for label in ("awr", "awr-beta100", "ddpg"):
        edit(floor, label, success=0.0, success_tanh=0.0, success_clip=0.0)
    v = verdicts(floor)
    assert v["ddpg_beats_awr"] == v["temperature_narrows_not_closes"] == v["tanh_equals_clip"] == "inconclusive"
    assert v["awr_std_stays_high"] == "reproduced"  # the action-distribution claims do not need a success
