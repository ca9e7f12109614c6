"""benchmarks/validate_oceanworld.py: its statistics on made-up fitness arrays whose answers are known (the
Box2D passes themselves are not run here; tests/envs/test_oceanworld_box2d.py checks the Box2D model)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import validate_oceanworld as V  # noqa: E402

GROUPS = ["elites", "starts", "mutated"]


def _arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"elites": np.sort(rng.normal(40, 10, 50))[::-1], "starts": rng.normal(-8, 10, 40),
            "mutated": rng.normal(-6, 10, 40)}


def test_convergence_against_itself_a_monotone_map_and_a_reversal():
    base = _arrays()
    others = {"same": base, "monotone": {g: 2 * a + 3 for g, a in base.items()},
              "reversed": {g: -a for g, a in base.items()}}
    out = V.convergence(GROUPS, base, others)
    for key in (*GROUPS, "pooled", "top"):
        assert (out["same"][key], out["monotone"][key], out["reversed"][key]) == pytest.approx((1, 1, -1))
    assert out["monotone"]["top_median"] == pytest.approx(2 * np.median(base["elites"][:V.TOP]) + 3)


def test_top_is_the_first_thirty_elites_only():
    base = _arrays()
    other = {g: a.copy() for g, a in base.items()}
    other["elites"][V.TOP:] = other["elites"][V.TOP:][::-1]  # scramble only below the top 30
    row = V.convergence(GROUPS, base, {"x": other})["x"]
    assert row["top"] == pytest.approx(1) and row["elites"] < 0.99 and row["starts"] == pytest.approx(1)


def test_analyse_counts_exploits_and_reports_every_yardstick():
    ours = _arrays()
    box = {g: a.copy() for g, a in ours.items()}
    start_median = np.median(box["starts"])
    box["elites"][[2, 5, 7]] = start_median - 1.0  # three top elites that do not swim in the other engine
    disp = {g: np.zeros((len(a), 2)) for g, a in ours.items()}
    settings = {"finer": ours}
    res = V.analyse(GROUPS, ours, box, box, disp, np.zeros(V.TOP), settings, {"dt_half": ours}, settings)
    assert res["top"]["exploits"] == 3 and res["top"]["exploit_ranks"] == [2, 5, 7]
    assert res["targets"]["exploits_met"] and res["targets"]["convergence_met"]
    assert res["box2d_convergence"]["dt_half"]["elites"] < 1 - 1e-3  # the three moved elites: ranks differ
    assert res["conditioning"]["finer"]["pooled"] == pytest.approx(1)
    assert res["groups"]["starts"]["spearman"] == pytest.approx(1)
