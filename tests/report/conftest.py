"""Fixtures of the report tests: a runs folder of hand-made experiments and runs (``report_dirs``)."""

from __future__ import annotations

import pytest

from report_dirs import build_tree


@pytest.fixture
def report_tree(tmp_path):
    """A runs folder of hand-made experiments and a stand-alone run (``report_dirs.build_tree``); no report built."""
    return build_tree(tmp_path / "runs")
