"""An experiment made only for the tests: two runs of the NumPy system `loop-toy` (tests/loop_system.py), no
claims. It runs in well under a second per run, so the executor tests can count runs, kill and resume them."""

from __future__ import annotations

from athanor.core.experiment import Analysis, RunSpec, mean

SUMMARY = "two learning rates of the NumPy least-squares system (tests only)"
SOURCE = "tests"
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "mse_by_lr"


def runs(scale: str) -> list[RunSpec]:
    return [RunSpec("loop-toy", "slow", {"lr": 0.05}), RunSpec("loop-toy", "fast", {"lr": 0.1})]


def analyse(records, scale: str) -> Analysis:
    return Analysis(claims=[], notes=[f"mean mse: slow {mean(records, 'slow', 'mse'):.4g}, "
                                      f"fast {mean(records, 'fast', 'mse'):.4g}"])
