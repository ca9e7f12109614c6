"""`athanor tour`: one progress display over every run, a failed experiment reported and skipped, the record and
the gallery. The experiments are stood in for by a fake ``api.run_experiment`` that writes hand-made folders."""

from __future__ import annotations

import io
import json
import time

import pytest

from athanor import api, tour
from athanor.core.errors import AthanorError
from report_dirs import make_experiment


def _fake_run_experiment(calls: list):
    def run_experiment(name, *, scale, out, progress, **kwargs):
        calls.append((name, scale, progress, kwargs))
        if name == "broken":
            raise RuntimeError("the analysis divided by zero")
        if name == "refused":
            raise AthanorError("dataset damaged; rebuild it with `athanor data build`")
        exp = make_experiment(out, name, created=f"2025-02-0{len(calls)}T10:00:00+00:00", labels=("a", "b"),
                              seeds=1, scale=scale, key_figure="comparison")
        time.sleep(tour.POLL_S * 1.5)  # the watcher sees the runs while the experiment is still going
        return exp

    return run_experiment


@pytest.fixture
def fake_experiments(monkeypatch):
    calls: list = []
    monkeypatch.setattr(api, "run_experiment", _fake_run_experiment(calls))
    monkeypatch.setattr(tour, "_planned_runs", lambda name, scale, seeds: 2)
    return calls


def test_tour_runs_every_experiment_under_one_display_and_goes_on_after_a_failure(tmp_path, fake_experiments):
    out, stream = tmp_path / "runs", io.StringIO()
    result = tour.run_tour("quick", out=out, names=["first", "broken", "refused", "last"], stream=stream,
                           executor="ray", workers=3)
    text = stream.getvalue()
    # every experiment was asked for, quietly, with the extra arguments passed through
    assert [c[0] for c in fake_experiments] == ["first", "broken", "refused", "last"]
    assert all(c[1:] == ("quick", False, {"executor": "ray", "workers": 3}) for c in fake_experiments)
    assert [e.status for e in result.experiments] == ["completed", "failed", "failed", "completed"]
    assert result.status == "failed" and not result.ok
    # one bar (tqdm's, on the same stream), a line per finished run, a line per experiment
    assert text.count("ok   first: a seed 0 completed") == 1 and text.count("ok   last: b seed 0 completed") == 1
    assert "== first: completed" in text and "(2/2 runs); claims 1/3 reproduced, 1 not reproduced" in text
    assert "== broken: FAILED" in text and "RuntimeError: the analysis divided by zero" in text
    assert "Traceback" in text  # an unexpected error keeps its traceback
    assert "== refused: FAILED after" in text and "rebuild it with `athanor data build`" in text
    assert "tour (quick)" in text and "8/8" in text  # the bar reached every planned run
    # the record: experiment-independent, relative folders, total time
    record = json.loads((out / "tour.json").read_text())
    assert record["scale"] == "quick" and record["status"] == "failed"
    assert record["wall_s"] == pytest.approx(result.wall_s, abs=0.01) and record["wall_s"] > 0
    assert [e["status"] for e in record["experiments"]] == ["completed", "failed", "failed", "completed"]
    assert record["experiments"][0]["dir"].startswith("first/") and record["experiments"][1]["dir"] is None
    assert record["experiments"][0]["claims"] == {"reproduced": 1, "not_reproduced": 1, "inconclusive": 1,
                                                  "total": 3}
    assert record["options"] == {"executor": "ray", "workers": 3}
    assert {"platform", "python", "cpus"} <= set(record["machine"])
    assert str(tmp_path) not in json.dumps(record["experiments"])
    # the gallery: both experiments, the tour's time and its failures
    html = result.gallery.read_text()
    assert result.gallery == out / "index.html"
    assert html.count('<div class="card">') == 2 and "the analysis divided by zero" in html
    assert record["wall"] in html
    summary = result.summary()
    assert "4 experiments at quick scale, 2 completed, 2 failed (broken, refused)" in summary
    assert f"gallery: {out / 'index.html'}" in summary and "record:" in summary


def test_tour_quiet_prints_no_bar_nor_run_lines(tmp_path, fake_experiments):
    stream = io.StringIO()
    result = tour.run_tour("tiny", out=tmp_path, names=["only"], progress=False, stream=stream, seeds=3)
    text = stream.getvalue()
    assert result.ok and fake_experiments[0][3] == {"seeds": 3}
    assert "== only: completed" in text and "ok   only" not in text and "tour (tiny)" not in text


def test_tour_records_an_interrupted_tour(tmp_path, monkeypatch):
    def interrupted(name, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run_experiment", interrupted)
    monkeypatch.setattr(tour, "_planned_runs", lambda name, scale, seeds: 1)
    with pytest.raises(KeyboardInterrupt):
        tour.run_tour("quick", out=tmp_path, names=["a", "b"], stream=io.StringIO())
    record = json.loads((tmp_path / "tour.json").read_text())
    assert record["status"] == "interrupted"
    assert [e["status"] for e in record["experiments"]] == ["interrupted", "pending"]


def test_tour_plans_from_the_registry_and_reports_an_unknown_experiment(tmp_path, monkeypatch):
    assert tour._planned_runs("vae-kl", "tiny", None) == 2  # two runs, one seed
    assert tour._planned_runs("vae-kl", "tiny", 3) == 6
    monkeypatch.setattr(api, "run_experiment", lambda *a, **k: pytest.fail("nothing to run"))
    stream = io.StringIO()
    result = tour.run_tour("quick", out=tmp_path, names=["no-such"], stream=stream)
    assert result.experiments[0].status == "failed" and "unknown experiment 'no-such'" in stream.getvalue()


def test_format_seconds():
    assert tour.format_seconds(12.34) == "12.3 s" and tour.format_seconds(754.2) == "12 min 34 s"
    assert tour.format_seconds(3 * 3600 + 65) == "3 h 01 min"


@pytest.mark.parametrize("names, code", [(["first", "last"], 0), (["first", "broken"], 1)])
def test_cli_tour_prints_the_total_time_and_exits_1_when_an_experiment_failed(tmp_path, monkeypatch, capsys,
                                                                              fake_experiments, names, code):
    from athanor import cli, experiments

    monkeypatch.setattr(experiments, "EXPERIMENTS", {n: f"nowhere.{n}" for n in names})
    assert cli.main(["tour", "--scale", "tiny", "--out", str(tmp_path), "--quiet"]) == code
    out = capsys.readouterr().out
    assert f"tour: 2 experiments at tiny scale, {2 - code} completed" in out and "total time" in out
    assert f"gallery: {tmp_path / 'index.html'}" in out and (tmp_path / "tour.json").is_file()
    assert [c[0] for c in fake_experiments] == names
