"""Fixtures of the report tests: a runs folder of hand-made experiments and runs (``report_dirs``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from report_dirs import HTML_TEXT, OLD_CLAIMS, make_experiment, make_run, seed_claims  # noqa: E402


@pytest.fixture
def report_tree(tmp_path):
    """A runs folder a person might open: two experiments (new and old claims.json), one with a video and HTML
    in a config value and a claim, a stand-alone run with HTML in its label and --set value; reports not built."""
    root = tmp_path / "runs"
    new = make_experiment(root, "generative", key_figure="comparison", video=True,
                          claims=seed_claims(f" {HTML_TEXT}"), config_extra={"note": HTML_TEXT})
    old = make_experiment(root, "vae-kl", created="2025-01-05T08:00:00+00:00", labels=("vae",), seeds=1,
                          claims=OLD_CLAIMS, scale="tiny")
    single = make_run(root / "toy" / "20250301-000000_s0", system="toy", label=HTML_TEXT,
                      created="2025-03-01T00:00:00+00:00", config_extra={"tag": HTML_TEXT},
                      overrides={"tag": HTML_TEXT})
    return {"root": root, "experiments": [new, old], "single": single}
