"""The causal-response systems on the tiny random model: names are masked out of definitions, the round trip's
options hold the concept once among distinct distractors, the graded metrics are the rank statistics they claim,
bad configs and checkpoints are named, and a state survives its JSON checkpoint."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from athanor.core.config import ConfigError  # noqa: E402
from athanor.systems.causal import prompts as P  # noqa: E402
from athanor.systems.causal import system as S  # noqa: E402


def _cfg(**over) -> S.Config:
    return dataclasses.replace(S.Config(), **{**S.PRESETS["tiny"], **over})


def test_mask_hides_every_form_of_the_name():
    assert S._mask("Coffee is a drink. Many coffees are bitter, and coffee wakes you.", "coffee") == \
        "It is a drink. Many it are bitter, and it wakes you."
    assert not P.mentions(S._mask("Ice cream is cold; creams and ice melt.", "ice cream"), "ice cream")
    assert S._mask("A drink made from beans.", "coffee") == "A drink made from beans."
    assert S._mask("Bread2Swords bakes breads.", "bread") == "It bakes it."


def test_definitions_record_and_round_trip_options():
    cfg = _cfg(steps=2)
    data = S.load_data(cfg, 0)
    state = S.init(cfg, 5, data)
    state, info = S.step(state, data, cfg)
    r = state["records"][0]
    assert r["concept"] == P.CONCEPTS[0] and r["concept"] in r["options"]
    assert len(set(r["options"])) == len(r["options"]) == cfg.options
    assert {r["pick_forward"], r["pick_causal"]} <= set(r["options"])
    assert not P.mentions(r["forward"], r["concept"]) and not P.mentions(r["causal"], r["concept"])
    assert r["score_causal"] >= r["score_forward"] - 1e-9  # the best of the candidates, the first among them
    assert set(info) == {"roundtrip_forward", "roundtrip_causal", "score_forward", "score_causal", "score_mean"}
    again = S.step(S.init(cfg, 5, data), data, cfg)[0]
    assert again == state  # the same seed, the same texts


def test_graded_metrics_are_rank_statistics():
    cfg = _cfg(task="graded", steps=2)
    records = [{"concept": "a", "norm": [0.1, 0.2, 0.3, 0.4], "raw": [0.1] * 4, "norm_other": [0.1] * 4},
               {"concept": "b", "norm": [0.4, 0.3, 0.2, 0.1], "raw": [0.2] * 4, "norm_other": [0.2] * 4},
               {"concept": "c", "norm": [0.2, 0.1, 0.4, 0.3], "raw": [0.3] * 4, "norm_other": [0.0] * 4}]
    m = S._metrics(records, cfg)
    assert m["graded_spearman"] == pytest.approx((1.0 - 1.0 + 0.6) / 3)
    assert m["graded_top_beats_bottom"] == pytest.approx(2 / 3)
    assert m["level1_norm"] == pytest.approx(np.mean([0.1, 0.4, 0.2]))
    assert m["level2_raw"] == pytest.approx(0.2)
    assert m["level3_other"] == pytest.approx(0.1)
    assert m["graded_match_margin"] == pytest.approx(np.mean([0.25, 0.25, 0.25]) - 0.1)


def test_bad_configs_and_checkpoints_are_named():
    with pytest.raises(ConfigError, match="at most 12"):
        S.load_data(_cfg(task="graded", steps=13), 0)
    with pytest.raises(ValueError, match="not a causal-response checkpoint"):
        S.load_state(None, json.dumps({"records": []}).encode())
    state = {"seed": 3, "records": [{"concept": "x", "score": 0.1234567890123}]}
    assert S.load_state(None, S.save_state(state)) == state
