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
    res = V.analyse(GROUPS, ours, box, box, disp, np.zeros(V.TOP), settings, {"dt_half": ours}, settings,
                    {"drag_plus_1%": box})
    assert res["top"]["exploits"] == 3 and res["top"]["exploit_ranks"] == [2, 5, 7]
    assert res["targets"]["exploits_met"] and res["targets"]["convergence_met"]
    assert res["box2d_convergence"]["dt_half"]["elites"] < 1 - 1e-3  # the three moved elites: ranks differ
    assert res["conditioning"]["finer"]["pooled"] == pytest.approx(1)
    assert res["box2d_conditioning"]["drag_plus_1%"]["pooled"] == pytest.approx(1)
    assert res["groups"]["starts"]["spearman"] == pytest.approx(1)


def test_growth_per_cycle_tells_linear_drift_from_doubling_and_leaves_untouched_creatures_out():
    t = np.arange(501, dtype=float)
    cycle = 60
    separation = np.stack([0.01 * t, 1e-3 * 2.0 ** (t / cycle), np.zeros_like(t), 5e-3 * np.minimum(t, 120)])
    g = V.growth_per_cycle(separation, cycle, window=(120, 420))
    assert g[0] == pytest.approx((420 / 120) ** (60 / 300))  # 1.285: in proportion to time
    assert g[1] == pytest.approx(2.0)  # doubling every cycle
    assert np.isnan(g[2])  # never separates: untouched by the change
    assert g[3] == pytest.approx(1.0)  # separated early, then settled


def test_sensitivity_splits_the_elites_at_their_median_growth():
    rng = np.random.default_rng(1)
    n = 60
    ours = _arrays()
    ours["elites"] = np.sort(rng.normal(40, 10, n))[::-1]
    growth = {g: np.full(len(a), 1.3) for g, a in ours.items()}
    growth["elites"] = np.where(np.arange(n) % 2 == 0, 1.2, 2.4)  # even ranks calm, odd ranks chaotic
    growth["starts"][0] = np.nan
    finer = {g: a.copy() for g, a in ours.items()}
    wild = np.arange(n) % 2 == 1
    finer["elites"][wild] = rng.permutation(finer["elites"][wild])  # only the chaotic half is scrambled
    separation = {"x": {g: np.tile(np.arange(501.0), (len(a), 1)) for g, a in ours.items()}}
    res = V.sensitivity(GROUPS, separation, growth, ours, finer)
    eb = res["elites_by_growth"]
    assert eb["calmer_n"] == eb["wilder_n"] == n // 2 and eb["median_growth"] == pytest.approx(1.8)
    assert eb["calmer_convergence"] == pytest.approx(1) and eb["wilder_convergence"] < 0.9
    assert eb["calmer_median_abs_change"] == 0 and eb["wilder_median_abs_change"] > 0
    assert eb["growth_vs_abs_change_spearman"] > 0.5  # the scrambled elites are the chaotic ones
    assert eb["top_fitness_p10_p90"] == pytest.approx(list(np.percentile(ours["elites"][:V.TOP], [10, 90])))
    assert res["untouched"] == {"elites": 0, "starts": 1, "mutated": 0}
    assert res["growth_p10_median_p90"]["starts"] == pytest.approx([1.3, 1.3, 1.3])
    assert res["median_separation"]["x"]["mutated"] == pytest.approx([float(s) for s in V.SEPARATION_STEPS])
    image = V.sensitivity_figure(res, cycle=60)
    assert V._label("muscle_gain_plus_1%") == "muscle gain +1%" and V._label("substeps_x2") == "substeps x2"
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
