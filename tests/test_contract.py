"""The system contract, over the whole registry (DESIGN §7): every system's `tiny` preset runs end to end
through the real run loop, writes artifacts and a report, is deterministic for a fixed seed, and resumes from
a mid-run checkpoint to exactly the metrics of an uninterrupted run."""

import json

import pytest

from athanor.core.config import to_dict
from athanor.core.runloop import resolve_config, resume_run, start_run
from athanor.systems import SYSTEMS


def _records(run_dir):
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        r.pop("wall_s")
        out.append(r)
    return out


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_tiny_preset_contract(name, tmp_path):
    cfg = resolve_config(name, "tiny")
    calls = cfg.steps // cfg.inner_steps
    assert calls >= 2, "tiny must make at least two step calls so that resume can be tested"
    full = start_run(name, preset="tiny", seed=0, out=tmp_path / "a", progress=False)
    d = full.run_dir
    assert full.status == "completed"
    assert (d / "report.html").is_file() and (d / "summary.json").is_file()
    assert list((d / "figures").glob("*.png")), "a run must leave at least one figure"
    assert full.final and all(isinstance(v, float) for v in full.final.values())
    assert json.loads((d / "config.json").read_text())["config"] == json.loads(json.dumps(to_dict(cfg)))

    half = (calls // 2) * cfg.inner_steps
    part = start_run(name, preset="tiny", seed=0, out=tmp_path / "b", progress=False, stop_after=half)
    assert part.status == "interrupted" and part.steps_done == half
    # determinism: a second, independent run reproduces the first half exactly
    assert _records(part.run_dir) == [r for r in _records(d) if r["step"] <= half and
                                      not (r["kind"] == "eval" and r["step"] == cfg.steps)]
    resumed = resume_run(part.run_dir, progress=False)
    assert resumed.final == full.final
    assert _records(resumed.run_dir) == _records(d)
