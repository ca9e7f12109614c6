"""Experiments and sweeps through ``core.executor``: in-process and as Ray tasks, retries, resume, added seeds.

The in-process tests use the NumPy test system `loop-toy` through a test-only experiment (tests/toy_experiment.py),
so they take seconds. The Ray tests (skipped without Ray) share one local Ray instance of 2 CPUs per test module
and use the real `vae` system at `tiny` scale: Ray's workers import athanor afresh and only see registered
systems. Two xdist workers may each start their own Ray instance; Ray gives every local instance its own ports
and session folder, so they do not clash.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from athanor import api
from athanor.core import executor as X
from athanor.core.errors import ConfigError, NonFiniteError


@pytest.fixture
def toy_experiment(monkeypatch, toy_registry):
    from athanor import experiments

    monkeypatch.setitem(experiments.EXPERIMENTS, "toy-exp", "toy_experiment")
    return "toy-exp"


@pytest.fixture
def no_ray(monkeypatch):
    """As if the dist extra were not installed: Ray cannot be found or imported."""
    monkeypatch.setattr(X, "ray_available", lambda: False)
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.fixture
def counted(monkeypatch):
    """Count the runs the local executor actually executes (by run directory name)."""
    calls: list[str] = []
    real = api.execute_run

    def execute_run(task, progress=False):
        calls.append(Path(task["run_dir"]).name)
        return real(task, progress)

    monkeypatch.setattr(api, "execute_run", execute_run)
    return calls


def _meta(exp_dir: Path, name: str = "experiment.json") -> dict:
    return json.loads((exp_dir / name).read_text())


def _final(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["final"]


# ---------------------------------------------------------------------------------------- the executor's choice

def test_choose_executor(monkeypatch):
    monkeypatch.setattr(X, "ray_available", lambda: True)
    assert X.choose("auto", 1) == "local"  # one run gains nothing from Ray
    assert X.choose("auto", 3, workers=1) == "local"
    assert X.choose("auto", 3, workers=2) == "ray"
    assert X.choose("auto", 3, workers=2, small=True) == "local"  # tiny runs: Ray's start-up costs more
    assert X.choose("ray", 3, small=True) == "ray"
    assert X.choose("local", 3) == "local"
    assert X.choose("auto", 1, address="ray://head:10001") == "ray"
    with pytest.raises(ConfigError, match="drop --executor local"):
        X.choose("local", 3, address="ray://head:10001")
    monkeypatch.setattr(X, "ray_available", lambda: False)
    assert X.choose("auto", 8, workers=8) == "local"
    with pytest.raises(ConfigError, match=r"pip install 'athanor\[dist\]'"):
        X.choose("ray", 2)


def test_task_env_keeps_the_callers_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    env = X.task_env(single_thread=True)
    assert env["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false"
    assert env["OMP_NUM_THREADS"] == "1"
    assert X.task_env() == {}  # Ray's default environment: measured faster (BENCHMARKS.md, "Sweeps")


def test_failures_are_retried_once_and_reported(capsys):
    seen: dict[str, int] = {}

    def fn(payload, progress):
        seen[payload["k"]] = seen.get(payload["k"], 0) + 1
        if payload["k"] == "flaky" and seen["flaky"] == 1:
            raise RuntimeError("worker hiccup")
        if payload["k"] == "broken":
            raise RuntimeError("always broken")
        if payload["k"] == "nan":
            raise NonFiniteError("non-finite loss")
        return {"how": "started", "final": {"x": 1.0}}

    jobs = [X.Job(k, {"k": k}, f"job {k}") for k in ("ok", "flaky", "broken", "nan")]
    out = {o.job.key: o for o in X.execute(jobs, fn, executor="local", progress=False)}
    assert [o.job.key for o in out.values()] == ["ok", "flaky", "broken", "nan"]
    assert out["ok"].ok and out["ok"].attempts == 1 and not out["ok"].errors
    assert out["flaky"].ok and out["flaky"].attempts == 2 and out["flaky"].errors == ["RuntimeError: worker hiccup"]
    assert not out["broken"].ok and out["broken"].attempts == 2 and len(out["broken"].errors) == 2
    assert not out["nan"].ok and out["nan"].attempts == 1  # the same config and seed would fail the same way
    err = capsys.readouterr().err
    assert "job flaky: attempt 1 failed: RuntimeError: worker hiccup; retrying once" in err
    assert "job broken failed after 2 attempt(s)" in err
    assert "not retried" in err


# --------------------------------------------------------------------------------------------- in-process

def test_experiment_in_process_without_ray_resumes_and_adds_seeds(tmp_path, toy_experiment, no_ray, counted):
    exp_dir = api.run_experiment(toy_experiment, scale="tiny", out=tmp_path, progress=False)
    meta = _meta(exp_dir)
    assert meta["executor"] == "local" and meta["status"] == "completed" and meta["seeds"] == 1  # its SEEDS
    assert meta["key_figure"] == "mse_by_lr"
    assert [(r["dir"], r["how"], r["attempts"]) for r in meta["runs"]] == [("slow_s0", "started", 1),
                                                                            ("fast_s0", "started", 1)]
    assert sorted(counted) == ["fast_s0", "slow_s0"]
    assert (exp_dir / "claims.json").is_file() and (exp_dir / "report.html").is_file()
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in exp_dir.glob("*_s*/summary.json")}

    counted.clear()
    api.run_experiment(toy_experiment, seeds=2, out=tmp_path, progress=False, resume=exp_dir)
    meta = _meta(exp_dir)
    assert {r["dir"]: r["how"] for r in meta["runs"]} == {"slow_s0": "skipped", "fast_s0": "skipped",
                                                           "slow_s1": "started", "fast_s1": "started"}
    assert sorted(counted) == ["fast_s1", "slow_s1"] and meta["seeds"] == 2 and len(meta["resumed"]) == 1
    assert {p.parent.name: p.stat().st_mtime_ns for p in exp_dir.glob("*_s0/summary.json")} == stamps

    # an interrupted run continues from its checkpoint; one that left no checkpoint starts again
    before = _final(exp_dir / "fast_s1")
    summary = json.loads((exp_dir / "fast_s1" / "summary.json").read_text())
    (exp_dir / "fast_s1" / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    for p in [exp_dir / "slow_s1" / "summary.json", *(exp_dir / "slow_s1" / "checkpoints").iterdir()]:
        p.unlink()
    counted.clear()
    api.run_experiment(toy_experiment, out=tmp_path, progress=False, resume=exp_dir)
    meta = _meta(exp_dir)
    assert {r["dir"]: r["how"] for r in meta["runs"]} == {"slow_s0": "skipped", "fast_s0": "skipped",
                                                           "slow_s1": "started", "fast_s1": "resumed"}
    assert sorted(counted) == ["fast_s1", "slow_s1"]
    assert _final(exp_dir / "fast_s1") == before

    with pytest.raises(ConfigError, match="can add seeds, not remove them"):
        api.run_experiment(toy_experiment, seeds=1, out=tmp_path, progress=False, resume=exp_dir)
    with pytest.raises(ConfigError, match="was run at scale 'tiny'"):
        api.run_experiment(toy_experiment, scale="quick", out=tmp_path, progress=False, resume=exp_dir)
    with pytest.raises(ConfigError, match="is not an experiment directory"):
        api.run_experiment(toy_experiment, out=tmp_path, progress=False, resume=tmp_path)


def test_archive_drops_checkpoints_and_incomplete_runs_and_resumes(tmp_path, toy_experiment, no_ray, counted):
    exp_dir = api.run_experiment(toy_experiment, scale="tiny", seeds=2, out=tmp_path / "runs", progress=False)
    summary = json.loads((exp_dir / "fast_s1" / "summary.json").read_text())
    (exp_dir / "fast_s1" / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert any((exp_dir / "slow_s0" / "checkpoints").iterdir())

    out = api.archive(exp_dir, tmp_path / "shared")
    dest = tmp_path / "shared"
    assert (out["runs"], out["kept"], out["left_out"]) == (4, 3, ["fast_s1"])
    assert out["bytes_after"] < out["bytes_before"]
    assert not list(dest.rglob("checkpoints")) and not (dest / "fast_s1").exists()
    for run in ("slow_s0", "fast_s0", "slow_s1"):  # everything but the checkpoints, byte for byte
        want = {p.relative_to(exp_dir): p.read_bytes() for p in (exp_dir / run).rglob("*")
                if p.is_file() and "checkpoints" not in p.parts}
        assert {p.relative_to(dest): p.read_bytes() for p in (dest / run).rglob("*") if p.is_file()} == want
    assert (dest / "report.html").is_file() and _meta(dest) == _meta(exp_dir)

    counted.clear()  # resuming the archive runs only the incomplete run, from the start
    api.run_experiment(toy_experiment, out=tmp_path, progress=False, resume=dest)
    assert counted == ["fast_s1"]
    assert {r["dir"]: r["how"] for r in _meta(dest)["runs"]} == {"slow_s0": "skipped", "fast_s0": "skipped",
                                                                 "slow_s1": "skipped", "fast_s1": "started"}
    assert _final(dest / "fast_s1") == summary["final"]

    records = api.archive(dest, tmp_path / "records", records_only=True)
    kept = {p.suffix for p in (tmp_path / "records").rglob("*") if p.is_file()}
    assert records["kept"] == 4 and kept <= {".json", ".jsonl"} and (tmp_path / "records" / "claims.json").is_file()
    assert not [p for p in (tmp_path / "records").rglob("*") if p.is_dir() and not any(p.iterdir())]
    api.reanalyse(tmp_path / "records")  # the records alone judge the claims again

    with pytest.raises(ConfigError, match="already exists"):
        api.archive(exp_dir, dest)
    with pytest.raises(ConfigError, match="is not an experiment or sweep directory"):
        api.archive(tmp_path, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists() and not list(tmp_path.glob(".*.partial"))


def test_sweep_in_process(tmp_path, toy_registry, no_ray, counted):
    sweep_dir = api.run_sweep("loop-toy", ["lr=0.05,0.1", "batch_size=4,8"], seeds=2, preset="tiny",
                              sets=["steps=20"], out=tmp_path, progress=False)
    assert sweep_dir.parent == (tmp_path / "sweep-loop-toy").resolve()
    meta = _meta(sweep_dir, "sweep.json")
    assert meta["executor"] == "local" and len(meta["points"]) == 4 and len(meta["runs"]) == 8
    assert meta["points"][1] == {"label": "p1-lr=0.05,batch_size=8", "params": {"lr": 0.05, "batch_size": 8}}
    assert len(counted) == 8 and all(r["status"] == "completed" for r in meta["runs"])
    cfg = json.loads((sweep_dir / "p1-lr=0.05,batch_size=8_s1" / "config.json").read_text())
    assert (cfg["config"]["lr"], cfg["config"]["batch_size"], cfg["config"]["steps"], cfg["seed"]) == (0.05, 8, 20, 1)
    rows = json.loads((sweep_dir / "results.json").read_text())
    mse = [_final(sweep_dir / f"p1-lr=0.05,batch_size=8_s{s}")["mse"] for s in (0, 1)]
    assert rows[1]["completed"] == 2 and rows[1]["mean"]["mse"] == pytest.approx(sum(mse) / 2)
    csv = (sweep_dir / "results.csv").read_text().splitlines()
    assert csv[0] == "point,lr,batch_size,completed,seeds,mse,probe" and len(csv) == 5
    table = api.sweep_table(sweep_dir)
    assert "p3-lr=0.1,batch_size=8: 2/2 seeds completed" in table and "mse" in table

    counted.clear()
    api.run_sweep(seeds=3, out=tmp_path, progress=False, resume=sweep_dir)
    assert sorted(counted) == sorted(f"{p['label']}_s2" for p in meta["points"])
    assert len(_meta(sweep_dir, "sweep.json")["runs"]) == 12


def test_sweep_config_errors_come_before_any_run(tmp_path, toy_registry, counted):
    cases = [(["lr=0.1", "lrr=1,2"], (), "unknown config key 'lrr'"),
             (["lr"], (), "malformed --grid 'lr'"),
             (["lr=0.1,,0.2"], (), "malformed --grid"),
             (["=1,2"], (), "malformed --grid"),
             (["lr=0.1", "lr=0.2"], (), "names 'lr' twice"),
             (["lr=0.1,fast"], (), "expects float, got 'fast'"),
             (["lr=0.1"], ("lr=0.2",), "both swept (--grid) and fixed (--set)"),
             (["steps=20,25"], (), "must be a multiple of inner_steps")]
    for grid, sets, needle in cases:
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            api.run_sweep("loop-toy", grid, preset="tiny", sets=sets, out=tmp_path, progress=False)
    assert not counted and not (tmp_path / "sweep-loop-toy").exists()
    with pytest.raises(ConfigError, match="drop SYSTEM, --grid"):
        api.run_sweep("loop-toy", ["lr=0.1"], resume=tmp_path)
    with pytest.raises(ConfigError, match="is not a sweep directory"):
        api.run_sweep(resume=tmp_path)


# ------------------------------------------------------------------------------------------------------ Ray

@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance (2 CPUs) for the module's Ray tests; the executor uses it and leaves it running."""
    ray = pytest.importorskip("ray")
    started = X.start_ray(workers=2)
    yield ray
    if started:
        ray.shutdown()


VAE_GRID = ["kl_weight=0.01,0.1"]


def test_ray_sweep_matches_in_process(tmp_path, ray_session):
    on_ray = api.run_sweep("vae", VAE_GRID, preset="tiny", out=tmp_path / "ray", executor="ray", progress=False)
    here = api.run_sweep("vae", VAE_GRID, preset="tiny", out=tmp_path / "local", executor="local", progress=False)
    assert _meta(on_ray, "sweep.json")["executor"] == "ray" and _meta(here, "sweep.json")["executor"] == "local"
    for run in _meta(here, "sweep.json")["runs"]:
        a, b = _final(on_ray / run["dir"]), _final(here / run["dir"])
        assert a.keys() == b.keys() and a == pytest.approx(b, rel=1e-4, abs=1e-6), run["dir"]
        assert (on_ray / run["dir"] / "report.html").is_file()


def _descendants(root: int) -> list[int]:
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [root]
    while frontier:
        kids = [pid for pid, pp in parent.items() if pp in frontier]
        out += kids
        frontier = kids
    return out


def _running_tasks(name: bytes) -> list[int]:
    """Ray workers of this test process's Ray instance that are running task ``name`` (Ray titles a worker
    process ``ray::<function>`` while it runs one), found among this process's descendants only, so another
    test's Ray instance is never touched."""
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::" + name):
                pids.append(pid)
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's worker processes through /proc")
def test_ray_worker_killed_mid_sweep_is_retried_and_resumed(tmp_path, ray_session):
    killed: list[int] = []
    stop = threading.Event()

    def killer():  # once every run has a checkpoint, SIGKILL one worker that is running a run
        while not stop.is_set() and not killed:
            dirs = list(tmp_path.glob("sweep-vae/*/p*_s0"))
            if len(dirs) == 2 and all(any((d / "checkpoints").glob("*.msgpack")) for d in dirs):
                pids = _running_tasks(b"execute_run")
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        sweep_dir = api.run_sweep("vae", VAE_GRID, preset="tiny", sets=["steps=1000", "ckpt_every=100"],
                                  out=tmp_path, executor="ray", progress=False)
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was killed: the runs finished before both had a checkpoint"
    meta = _meta(sweep_dir, "sweep.json")
    assert meta["status"] == "completed" and all(r["status"] == "completed" for r in meta["runs"])
    retried = [r for r in meta["runs"] if r["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["how"] == "resumed", meta["runs"]
    assert len(meta["notes"]) == 1 and "attempt 1 failed (the Ray worker running it died" in meta["notes"][0]
    assert "attempt 2 resumed from its checkpoint and completed" in meta["notes"][0]
    log = (sweep_dir / retried[0]["dir"] / "metrics.jsonl").read_text()
    assert '"kind": "resume"' in log
    rows = json.loads((sweep_dir / "results.json").read_text())
    assert all(r["completed"] == 1 for r in rows)


def test_ray_reports_a_runs_own_error_and_retries_once(tmp_path, ray_session):
    def fn(payload, progress):  # nested, so Ray ships it by value; the marker file makes attempt 1 fail
        marker = Path(payload["dir"]) / f"{payload['k']}.tried"
        if payload["k"] == "nan":
            raise NonFiniteError("vae: non-finite loss in the updates after step 10")
        if payload["k"] == "flaky" and not marker.exists():
            marker.touch()
            raise RuntimeError("lost the GPU")
        return {"how": "started", "final": {"x": 1.0}, "progress": progress}

    jobs = [X.Job(k, {"k": k, "dir": str(tmp_path)}, f"job {k}") for k in ("nan", "flaky", "ok")]
    out = {o.job.key: o for o in X.execute(jobs, fn, executor="ray", progress=False)}
    assert not out["nan"].ok and out["nan"].attempts == 1
    assert out["nan"].errors == ["vae: non-finite loss in the updates after step 10"]
    assert out["flaky"].ok and out["flaky"].attempts == 2 and out["flaky"].errors == ["RuntimeError: lost the GPU"]
    assert out["ok"].result == {"how": "started", "final": {"x": 1.0}, "progress": False}  # bars off in tasks
