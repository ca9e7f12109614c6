"""Experiments end to end at `tiny` scale (every registered one): runs, claims.json in its documented shape,
reports, gallery; and what every experiment module must export."""

import json

import pytest

from athanor.api import run_experiment
from athanor.experiments import EXPERIMENTS, get_experiment
from athanor.systems import SYSTEMS

CLAIM_KEYS = {"id", "statement", "metric", "threshold", "measured", "verdict", "seeds", "interval", "rule", "leans",
              "reason", "checks"}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_module_exports(name):
    module = get_experiment(name)
    assert isinstance(module.SUMMARY, str) and module.SUMMARY
    assert isinstance(module.SOURCE, str) and module.SOURCE
    for scale in ("tiny", "quick", "full"):
        specs = module.runs(scale)
        assert specs and all(s.system in SYSTEMS for s in specs), "every run names a registered system"
        assert len({s.label for s in specs}) == len(specs), "labels name run directories: they must be unique"
    assert set(module.SEEDS) <= {"tiny", "quick", "full"}
    assert module.SEEDS["full"] >= 3, "a full-scale claim is judged over at least three seeds"
    assert isinstance(module.KEY_FIGURE, str)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_tiny_experiment(name, tmp_path):
    exp_dir = run_experiment(name, scale="tiny", seeds=1, out=tmp_path, progress=False)
    meta = json.loads((exp_dir / "experiment.json").read_text())
    n_runs = len(get_experiment(name).runs("tiny"))
    assert meta["experiment"] == name and meta["scale"] == "tiny" and len(meta["runs"]) == n_runs
    for run in meta["runs"]:
        assert (exp_dir / run["dir"] / "report.html").is_file()
    claims = json.loads((exp_dir / "claims.json").read_text())
    assert claims and all(set(c) == CLAIM_KEYS for c in claims)
    for c in claims:
        assert c["reason"] and all(len(k["per_seed"]) == 1 for k in c["checks"] if not k["once"])
    assert {c["verdict"] for c in claims} == {"inconclusive"}  # tiny is inconclusive by construction
    assert len({c["id"] for c in claims}) == len(claims)
    html = (exp_dir / "report.html").read_text()
    for c in claims:
        assert c["id"] in html
    assert exp_dir.name in (tmp_path / "index.html").read_text()


def test_experiment_sets_reach_every_run_that_has_the_key(tmp_path):
    from athanor.core.errors import ConfigError

    exp_dir = run_experiment("vae-kl", scale="tiny", seeds=1, out=tmp_path, progress=False,
                             sets=["kl_weight=0.02"])
    meta = json.loads((exp_dir / "experiment.json").read_text())
    assert meta["sets"] == ["kl_weight=0.02"]
    for run in meta["runs"]:
        assert json.loads((exp_dir / run["dir"] / "config.json").read_text())["config"]["kl_weight"] == 0.02
    with pytest.raises(ConfigError, match=r"no run of experiment 'vae-kl' has the config key 'kl_wieght' "
                                          r"\(its systems: vae\); did you mean 'kl_weight'"):
        run_experiment("vae-kl", scale="tiny", out=tmp_path, progress=False, sets=["kl_wieght=1"])
    with pytest.raises(ConfigError, match="malformed --set 'kl_weight'"):
        run_experiment("vae-kl", scale="tiny", out=tmp_path, progress=False, sets=["kl_weight"])
    with pytest.raises(ConfigError, match="must be a multiple of inner_steps"):  # resolved before any run
        run_experiment("vae-kl", scale="tiny", out=tmp_path, progress=False, sets=["steps=7"])
    with pytest.raises(ConfigError, match="keeps its settings"):
        run_experiment("vae-kl", resume=exp_dir, progress=False, sets=["kl_weight=0.5"])
    assert run_experiment("vae-kl", resume=exp_dir, progress=False) == exp_dir  # resumes with its stored sets


def test_resume_refreshes_the_gallery_only_of_its_own_runs_folder(tmp_path):
    """In the runs layout (<root>/<name>/<stamp>) a resumed experiment rebuilds <root>/index.html; a folder moved
    elsewhere (an archive, a scratch copy) has no runs root above it, so nothing above it is scanned or written."""
    import shutil

    exp_dir = run_experiment("vae-kl", scale="tiny", seeds=1, out=tmp_path / "runs", progress=False)
    (tmp_path / "runs" / "index.html").unlink()
    assert run_experiment("vae-kl", resume=exp_dir, progress=False) == exp_dir
    assert exp_dir.name in (tmp_path / "runs" / "index.html").read_text()

    moved = tmp_path / "work" / "scratch" / "vae"
    shutil.copytree(exp_dir, moved)
    bystander = tmp_path / "work" / "other-experiment"
    shutil.copytree(exp_dir, bystander)
    for report in bystander.rglob("report.html"):
        report.unlink()
    assert run_experiment("vae-kl", resume=moved, progress=False) == moved
    assert (moved / "report.html").is_file()
    assert not (tmp_path / "work" / "index.html").exists()
    assert not list(bystander.rglob("report.html"))  # an unrelated folder is left as it was


def test_reanalyse_rejudges_from_stored_runs(tmp_path):
    from athanor.api import reanalyse

    exp_dir = run_experiment("vae-kl", scale="tiny", seeds=1, out=tmp_path, progress=False)
    before = json.loads((exp_dir / "claims.json").read_text())
    (exp_dir / "claims.json").unlink()
    meta_before = json.loads((exp_dir / "experiment.json").read_text())
    reanalyse(exp_dir)
    assert json.loads((exp_dir / "claims.json").read_text()) == before
    meta = json.loads((exp_dir / "experiment.json").read_text())
    assert meta["wall_s"] == meta_before["wall_s"] and "reanalysed" in meta
    assert meta["notes"] == meta_before["notes"]  # analysis notes replaced by the same ones, not appended


def test_reanalyse_rejects_a_non_experiment(tmp_path):
    from athanor.api import reanalyse
    from athanor.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not a readable experiment"):
        reanalyse(tmp_path)


def test_bad_scale_and_seeds():
    from athanor.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown scale"):
        run_experiment("vae-kl", scale="huge")
    with pytest.raises(ConfigError, match="at least 1"):
        run_experiment("vae-kl", scale="tiny", seeds=0)


def test_seeds_default_to_the_experiments_own_count(tmp_path, monkeypatch):
    """Which runs are made for how many seeds (the runs themselves are stood in for: the tiny experiment tests
    above run them for real)."""
    from athanor import api
    from athanor.core.runloop import RunResult
    from athanor.experiments import get_experiment

    made = []

    def fake_run(system, *, seed, run_dir, **kwargs):
        made.append((system, seed))
        return RunResult(run_dir, "completed", 1, {})

    monkeypatch.setattr(api, "start_run", fake_run)
    module = get_experiment("vae-kl")
    monkeypatch.setattr(module, "SEEDS", {"tiny": 2}, raising=False)
    exp_dir = run_experiment("vae-kl", scale="tiny", out=tmp_path, progress=False)
    assert made == [("vae", 0), ("vae", 0), ("vae", 1), ("vae", 1)]
    meta = json.loads((exp_dir / "experiment.json").read_text())
    assert meta["seeds"] == 2 and sorted(r["seed"] for r in meta["runs"]) == [0, 0, 1, 1]
    monkeypatch.delattr(module, "SEEDS")
    exp_dir = run_experiment("vae-kl", scale="tiny", out=tmp_path, progress=False)
    assert json.loads((exp_dir / "experiment.json").read_text())["seeds"] == 1  # no SEEDS: one seed
