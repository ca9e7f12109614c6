"""The oceanworld experiment's claim logic on hand-made final metrics: each claim flips with the numbers it reads.

``_post_like`` repeats one seed's numbers on three seeds (a zero-width interval, so each check is decided)."""

from pathlib import Path

import pytest

from athanor.core.experiment import RunRecord, RunSpec
from athanor.experiments import oceanworld

EVALS = 4096.0


def _rec(label, seed=0, **final):
    system = {s_label: system for system, s_label, _ in oceanworld.RUNS}[label]
    return RunRecord(RunSpec(system, label), seed, Path("/nonexistent"), {"evaluations": EVALS, **final})


def _post_like(seeds=(0, 1, 2)):
    return [r for seed in seeds for r in _one_seed(seed)]


def _one_seed(seed):
    """Numbers shaped like the post's findings."""
    return [
        _rec("random", seed, coverage=0.05, qd_score=100.0),
        _rec("greedy-a", seed, parent_cell=200.0, parent_fitness=30.0, stalled_fraction=0.4),
        _rec("greedy-b", seed, parent_cell=520.0, parent_fitness=22.0, stalled_fraction=0.3),
        _rec("novelty", seed, coverage=0.3, passive_coverage=0.3, qd_score=900.0),
        _rec("mapelites", seed, coverage=0.2, qd_score=2000.0),
        _rec("ns-mapelites", seed, coverage=0.35, qd_score=3500.0, top_small_fraction=0.8,
             filled_small_fraction=0.5),
    ]


def _verdicts(records, scale="full"):
    return {c.id: c.verdict for c in oceanworld._claims(records, scale)}


def _set(records, label, **values):
    for r in records:
        if r.spec.label == label:
            r.final.update(values)
    return records


def test_post_like_numbers_reproduce_and_tiny_is_inconclusive():
    assert set(_verdicts(_post_like()).values()) == {"reproduced"}
    assert set(_verdicts(_post_like(), "tiny").values()) == {"inconclusive"}
    assert len(_verdicts(_post_like())) == 4


def test_runs_cover_every_algorithm_with_two_greedy_starts():
    specs = oceanworld.runs("full")
    assert {s.system for s in specs} == {"ocean-random", "ocean-greedy", "ocean-novelty", "ocean-mapelites",
                                         "ocean-ns-mapelites"}
    starts = [s.overrides["start_seed"] for s in specs if s.system == "ocean-greedy"]
    assert len(starts) == 2 and starts[0] != starts[1]


@pytest.mark.parametrize("values, verdict", [
    ({"parent_cell": 200.0, "parent_fitness": 29.0}, "not_reproduced"),  # same cell, 3% apart: one optimum
    ({"parent_cell": 200.0, "parent_fitness": 24.0}, "reproduced"),  # same cell but 20% apart
    ({"stalled_fraction": 0.1}, "not_reproduced"),  # still climbing: not yet an optimum
])
def test_greedy_claim(values, verdict):
    assert _verdicts(_set(_post_like(), "greedy-b", **values))["greedy_local_optima"] == verdict


def test_greedy_claim_must_hold_on_every_seed():
    records = _one_seed(0) + _one_seed(1) + _set(_one_seed(2), "greedy-b", parent_cell=200.0, parent_fitness=30.0)
    # different optimum on seeds 0 and 1 only: 1, 1, 0 -> mean 0.67, interval [-0.77, 2.1]: not shown, not refuted
    assert _verdicts(records)["greedy_local_optima"] == "inconclusive"
    records = _one_seed(0) + _one_seed(1)
    for seed in (0, 1):
        _set([r for r in records if r.seed == seed], "greedy-b", parent_cell=200.0, parent_fitness=30.0)
    assert _verdicts(records)["greedy_local_optima"] == "not_reproduced"
    assert _verdicts(_post_like())["greedy_local_optima"] == "reproduced"
    assert _verdicts(_post_like(seeds=(0,)))["greedy_local_optima"] == "inconclusive"  # one seed: an anecdote


def test_novelty_claim_threshold_is_two_fold():
    assert _verdicts(_set(_post_like(), "random", coverage=0.16))["novelty_spreads"] == "not_reproduced"
    assert _verdicts(_set(_post_like(), "random", coverage=0.15))["novelty_spreads"] == "reproduced"


def test_seeded_mapelites_needs_both_coverage_and_qd_score():
    assert _verdicts(_set(_post_like(), "mapelites", qd_score=4000.0))["seeded_mapelites_better"] == "not_reproduced"
    assert _verdicts(_set(_post_like(), "mapelites", coverage=0.35))["seeded_mapelites_better"] == "not_reproduced"


def test_small_are_fastest_needs_more_than_the_base_rate():
    v = _verdicts(_set(_post_like(), "ns-mapelites", top_small_fraction=0.7, filled_small_fraction=0.8))
    assert v["small_are_fastest"] == "not_reproduced"
    v = _verdicts(_set(_post_like(), "ns-mapelites", top_small_fraction=0.5, filled_small_fraction=0.2))
    assert v["small_are_fastest"] == "not_reproduced"


def test_unequal_evaluations_or_missing_runs_are_inconclusive():
    v = _verdicts(_set(_post_like(), "random", evaluations=EVALS / 2))
    assert v["novelty_spreads"] == "inconclusive"
    v = _verdicts(_set(_post_like(), "mapelites", evaluations=EVALS * 2))
    assert v["seeded_mapelites_better"] == "inconclusive"
    v = _verdicts([r for r in _post_like() if r.spec.label not in ("greedy-b", "ns-mapelites")])
    assert v["greedy_local_optima"] == "inconclusive" and v["small_are_fastest"] == "inconclusive"
    failed = _post_like()
    failed[1].final.clear()  # greedy-a of seed 0 failed
    assert _verdicts(failed)["greedy_local_optima"] == "inconclusive"
