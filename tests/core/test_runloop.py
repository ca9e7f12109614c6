import json

import pytest

from athanor.core import checkpoint
from athanor.core.errors import CheckpointError, NonFiniteError
from athanor.core.runloop import resume_run, start_run


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_writes_everything(toy_registry, tmp_path):
    res = start_run("toy", preset="tiny", seed=3, out=tmp_path, progress=False)
    d = res.run_dir
    assert res.status == "completed" and res.steps_done == 40
    assert d.parent == tmp_path / "toy" and d.name.endswith("_s3")
    meta = json.loads((d / "config.json").read_text())
    assert meta["system"] == "toy" and meta["config"]["steps"] == 40 and meta["seed"] == 3
    lines = _lines(d)
    assert [r["step"] for r in lines if r["kind"] == "train"] == [10, 20, 30, 40]
    assert [r["step"] for r in lines if r["kind"] == "eval"] == [20, 40]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["mse"] == res.final["mse"]
    assert res.final["mse"] < lines[0]["loss"]  # SGD made progress
    for rel in ("figures/square.png", "figures/weights.png", "tables/weights.json", "report.html"):
        assert (d / rel).is_file(), rel
    assert len(checkpoint.list_checkpoints(d / "checkpoints")) == 2  # step 20 and the final one


def test_deterministic_and_resume_equal(toy_registry, tmp_path):
    a = start_run("toy", preset="tiny", seed=1, out=tmp_path / "a", progress=False)
    b = start_run("toy", preset="tiny", seed=1, out=tmp_path / "b", progress=False)
    assert a.final == b.final
    c = start_run("toy", preset="tiny", seed=1, out=tmp_path / "c", progress=False, stop_after=20)
    assert c.status == "interrupted" and c.steps_done == 20
    assert json.loads((c.run_dir / "summary.json").read_text())["status"] == "interrupted"
    c2 = resume_run(c.run_dir, progress=False)
    assert c2.status == "completed" and c2.final == a.final
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in _lines(a.run_dir)]
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in _lines(c.run_dir)] == strip
    other = start_run("toy", preset="tiny", seed=2, out=tmp_path / "d", progress=False)
    assert other.final["probe"] != a.final["probe"]


def test_nan_stops_run_and_keeps_last_good_checkpoint(toy_registry, tmp_path):
    with pytest.raises(NonFiniteError, match="non-finite loss") as e:
        start_run("toy", preset="tiny", sets=["lr=50"], out=tmp_path, progress=False)
    assert "lower learning rate" in str(e.value)
    run_dir = next((tmp_path / "toy").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["message"]
    ckpts = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert ckpts, "the last finite state must be checkpointed"
    record = checkpoint.read(ckpts[-1])
    assert record["step"] == summary["steps_done"] and record["step"] < 40


def test_resume_falls_back_past_a_corrupt_checkpoint(toy_registry, tmp_path, capsys):
    ref = start_run("toy", preset="tiny", seed=0, out=tmp_path / "ref", progress=False)
    c = start_run("toy", preset="tiny", seed=0, out=tmp_path / "c", progress=False, stop_after=30,
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
    with pytest.raises(CheckpointError, match="not a run directory"):
        resume_run(tmp_path, progress=False)


def test_append_after_a_torn_line_keeps_the_new_record(tmp_path):
    from athanor.core.artifact_io import read_metrics
    from athanor.core.rundir import append_jsonl

    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "kind": "train", "loss": 1.0})
    with open(path, "a") as f:
        f.write('{"step": 2, "kind": "tr')  # a crash mid-write
    append_jsonl(path, {"step": 2, "kind": "train", "loss": 0.5})
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
