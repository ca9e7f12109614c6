"""Fixtures of the report tests: a runs folder of hand-made experiments and runs (``report_dirs``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from report_dirs import build_tree  # noqa: E402


@pytest.fixture
def report_tree(tmp_path):
    """A runs folder of hand-made experiments and a stand-alone run (``report_dirs.build_tree``); no report built."""
    return build_tree(tmp_path / "runs")
