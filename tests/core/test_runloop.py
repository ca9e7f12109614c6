"""The run loop on the test systems: what a run writes, determinism, resume (also after a kill), failures that
lose nothing, the wall-clock checkpoint cadence, and systems with their own loop."""

import json
import time

import numpy as np
import pytest

from athanor.api import load_run, resume_run, start_run
from athanor.core import checkpoint
from athanor.core.errors import CheckpointError, ConfigError, NonFiniteError, ResourceError
from athanor.core.runs import RESUME, read_metrics

STEP_SYSTEMS = ["toy", "torch-toy"]


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _strip(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


@pytest.mark.parametrize("name", STEP_SYSTEMS + ["loop-toy"])
def test_run_writes_everything(name, toy_registry, tmp_path):
    res = start_run(name, preset="tiny", seed=3, out=tmp_path, progress=False)
    d = res.run_dir
    assert res.status == "completed" and res.steps_done == 40
    assert d.parent == tmp_path / name and d.name.endswith("_s3")
    meta = json.loads((d / "config.json").read_text())
    assert meta["system"] == name and meta["config"]["steps"] == 40 and meta["seed"] == 3
    lines = _lines(d)
    assert [r["step"] for r in lines if r["kind"] == "train"] == [10, 20, 30, 40]
    assert [r["step"] for r in lines if r["kind"] == "eval"] == [20, 40]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["mse"] == res.final["mse"]
    assert res.final["mse"] < lines[0]["loss"]  # SGD made progress
    assert (d / "report.html").is_file() and list((d / "figures").glob("*.png"))
    assert len(checkpoint.list_checkpoints(d / "checkpoints")) == 2  # step 20 and the final one


@pytest.mark.parametrize("name", STEP_SYSTEMS + ["loop-toy"])
def test_deterministic_and_resume_equal(name, toy_registry, tmp_path):
    a = start_run(name, preset="tiny", seed=1, out=tmp_path / "a", progress=False)
    b = start_run(name, preset="tiny", seed=1, out=tmp_path / "b", progress=False)
    assert a.final == b.final
    c = start_run(name, preset="tiny", seed=1, out=tmp_path / "c", progress=False, stop_after=20)
    assert c.status == "interrupted" and c.steps_done == 20
    assert json.loads((c.run_dir / "summary.json").read_text())["status"] == "interrupted"
    c2 = resume_run(c.run_dir, progress=False)
    assert c2.status == "completed" and c2.final == a.final
    assert _strip(read_metrics(c.run_dir)) == _strip(read_metrics(a.run_dir))
    other = start_run(name, preset="tiny", seed=2, out=tmp_path / "d", progress=False)
    assert other.final["probe"] != a.final["probe"]


@pytest.mark.parametrize("name", STEP_SYSTEMS)
def test_resume_after_a_kill_sees_every_step_once(name, toy_registry, tmp_path):
    """A process killed after logging steps it never checkpointed: the resumed run logs them again, and readers
    see each step once, as the resumed run logged it; a stray record of the dead process is dropped."""
    ref = start_run(name, preset="tiny", seed=0, out=tmp_path / "ref", progress=False)
    run = start_run(name, preset="tiny", seed=0, out=tmp_path / "k", progress=False, sets=["ckpt_every=10"])
    ckpts = checkpoint.list_checkpoints(run.run_dir / "checkpoints")
    for path in ckpts[-2:]:  # the kill came after step 20's checkpoint: 30 and 40 never reached the disk
        path.unlink()
    (run.run_dir / "summary.json").unlink()
    with open(run.run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 35, "kind": "train", "loss": 123.0}) + "\n")  # logged, then killed
    done = resume_run(run.run_dir, progress=False)
    assert done.final == ref.final
    raw = _lines(run.run_dir)
    assert [r["step"] for r in raw if r["kind"] == RESUME] == [20]
    assert [r["step"] for r in raw if r["kind"] == "train"].count(30) == 2  # the file itself is only appended
    got = _strip(read_metrics(run.run_dir))
    assert got == _strip(read_metrics(ref.run_dir))
    assert len({(r["kind"], r["step"]) for r in got}) == len(got)
    assert all(r["loss"] != 123.0 for r in got if "loss" in r)


@pytest.mark.parametrize("name", STEP_SYSTEMS)
def test_nan_stops_run_and_keeps_last_good_checkpoint(name, toy_registry, tmp_path):
    with pytest.raises(NonFiniteError, match="non-finite loss") as e:
        start_run(name, preset="tiny", sets=["lr=50"], out=tmp_path, progress=False)
    assert "lower learning rate" in str(e.value)
    run_dir = next((tmp_path / name).iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["message"]
    ckpts = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert ckpts, "the last finite state must be checkpointed"
    record = checkpoint.read(ckpts[-1])
    assert record["step"] == summary["steps_done"] and record["step"] < 40
    _, state = load_run(run_dir)
    assert np.isfinite(np.asarray(state.w.detach() if name == "torch-toy" else state.w)).all()


@pytest.mark.parametrize("name", STEP_SYSTEMS)
def test_running_out_of_memory_is_a_named_config_error_that_keeps_the_state(name, toy_registry, tmp_path,
                                                                            monkeypatch):
    module = toy_registry[name].load()
    real, calls = module.step, []

    def step(state, data, cfg):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 9408000000000 bytes.")
        return real(state, data, cfg)

    monkeypatch.setattr(module, "step", step)
    with pytest.raises(ResourceError, match=r"out of memory while updating after step 20 .*batch_size=8") as e:
        start_run(name, preset="tiny", out=tmp_path, progress=False)
    assert e.value.exit_code == 2
    run_dir = next((tmp_path / name).iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert checkpoint.read(checkpoint.list_checkpoints(run_dir / "checkpoints")[-1])["step"] == 20


def test_other_errors_are_not_mistaken_for_memory(toy_registry, tmp_path, monkeypatch):
    module = toy_registry["toy"].load()
    monkeypatch.setattr(module, "step", lambda s, d, c: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        start_run("toy", preset="tiny", out=tmp_path, progress=False)


def test_wall_clock_cadence_checkpoints_between_update_cadences(toy_registry, tmp_path, monkeypatch):
    module = toy_registry["toy"].load()
    real = module.step

    def slow(state, data, cfg):
        time.sleep(0.05)
        return real(state, data, cfg)

    monkeypatch.setattr(module, "step", slow)
    run = start_run("toy", preset="tiny", out=tmp_path, progress=False, stop_after=30,
                    sets=["ckpt_every=0", "ckpt_every_s=0.01"])
    steps = [checkpoint.read(p)["step"] for p in checkpoint.list_checkpoints(run.run_dir / "checkpoints")]
    assert steps == [10, 20, 30]
    off = start_run("toy", preset="tiny", out=tmp_path / "off", progress=False, stop_after=30,
                    sets=["ckpt_every=0", "ckpt_every_s=0"])
    assert [checkpoint.read(p)["step"] for p in checkpoint.list_checkpoints(off.run_dir / "checkpoints")] == [30]


@pytest.mark.parametrize("name", STEP_SYSTEMS)
def test_resume_falls_back_past_a_corrupt_checkpoint(name, toy_registry, tmp_path, capsys):
    ref = start_run(name, preset="tiny", seed=0, out=tmp_path / "ref", progress=False)
    c = start_run(name, preset="tiny", seed=0, out=tmp_path / "c", progress=False, stop_after=30,
                  sets=["ckpt_every=10"])
    newest = checkpoint.list_checkpoints(c.run_dir / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:40])
    done = resume_run(c.run_dir, progress=False)
    assert "corrupt or truncated" in capsys.readouterr().err
    assert done.final == ref.final


def test_resume_without_valid_checkpoint_is_a_clear_error(toy_registry, tmp_path):
    c = start_run("toy", preset="tiny", out=tmp_path, progress=False, stop_after=10)
    for p in checkpoint.list_checkpoints(c.run_dir / "checkpoints"):
        p.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        resume_run(c.run_dir, progress=False)
    with pytest.raises(ConfigError, match="not a run directory"):
        resume_run(tmp_path, progress=False)


def test_a_checkpoint_of_another_system_is_refused(toy_registry, tmp_path):
    c = start_run("toy", preset="tiny", out=tmp_path, progress=False, stop_after=10)
    meta = json.loads((c.run_dir / "config.json").read_text())
    meta["system"] = "torch-toy"
    (c.run_dir / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="belongs to system 'toy', not 'torch-toy'"):
        resume_run(c.run_dir, progress=False)


def test_unwritable_output_and_bad_seeds_are_config_errors(toy_registry, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create the run directory"):
        start_run("toy", preset="tiny", out=blocker / "runs", progress=False)
    with pytest.raises(ConfigError, match="seed must be an integer"):
        start_run("toy", preset="tiny", seed=2**31, out=tmp_path, progress=False)
    assert not (tmp_path / "toy").exists()  # nothing was created for the bad seed


def test_append_after_a_torn_line_keeps_the_new_record(tmp_path):
    from athanor.core.rundir import append_jsonl

    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "kind": "train", "loss": 1.0})
    with open(path, "a") as f:
        f.write('{"step": 2, "kind": "tr')  # a crash mid-write
    append_jsonl(path, {"step": 2, "kind": "train", "loss": 0.5})
    with pytest.warns(UserWarning, match="line 2 is not valid JSON and was skipped"):  # the torn line, named
        steps = [r["step"] for r in read_metrics(tmp_path)]
    assert steps == [1, 2]


def test_load_run_restores_the_final_state(toy_registry, tmp_path):
    run = start_run("torch-toy", preset="tiny", out=tmp_path, progress=False)
    cfg, state = load_run(run.run_dir)
    assert cfg.steps == 40
    import torch_system

    data = torch_system.load_data(cfg, 0)
    assert torch_system.evaluate(state, data, cfg, 0)["mse"] == pytest.approx(run.final["mse"])


def test_bench_times_a_pytorch_system_and_refuses_a_run_system(toy_registry):
    from athanor.api import bench

    with pytest.raises(ConfigError, match="runs its own loop"):
        bench(["loop-toy"], preset="tiny", progress=False)
    from athanor.core.bench import measure
    from athanor.systems import get_system

    system = get_system("torch-toy").bind()
    cfg = system.Config(**system.PRESETS["tiny"])
    result = measure(system, cfg, cfg, preset="tiny", sets=[], calls=2)
    assert result["system"] == "torch-toy" and result["steps_per_s"] > 0 and result["compile_s"] >= 0
    assert result["runtime"]["framework"] == "torch" and result["throughput"]["unit"] == "updates"


def test_git_dirty_reads_the_porcelain_status(monkeypatch):
    from athanor.core import rundir

    for out, want in ((" M src/x.py\n", True), ("", False), (None, None)):
        monkeypatch.setattr(rundir, "_git", lambda *args, out=out: out)
        assert rundir.git_dirty() is want
    monkeypatch.undo()
    assert rundir.git_dirty() in (True, False, None)  # the real checkout (or none): a bool or None, never an error
