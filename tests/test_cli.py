"""The real entry point, in subprocesses: JSON shapes, exit codes, and messages without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def athanor(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "athanor", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_list_json_shape():
    p = athanor("list", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    names = {s["name"] for s in data["systems"]}
    assert {"oracle", "vae", "gan", "gan-mbd", "autoregressive", "diffusion", "flow"} <= names
    for s in data["systems"]:
        assert set(s) == {"name", "family", "presets", "summary"}
        assert {"tiny", "quick", "full"} <= set(s["presets"])
    exps = {e["name"]: e for e in data["experiments"]}
    assert {"generative", "vae-kl"} <= set(exps)
    assert exps["generative"]["scales"] == ["tiny", "quick", "full"]


@pytest.mark.parametrize("args, needle", [
    (["run", "vea"], "unknown system 'vea'; did you mean 'vae'?"),
    (["run", "vae", "--preset", "tiny", "--set", "lr"], "malformed --set 'lr'"),
    (["run", "vae", "--preset", "tiny", "--set", "kl_wieght=1"], "did you mean 'kl_weight'"),
    (["run", "vae", "--preset", "tiny", "--set", "steps=-5"], "below its minimum"),
    (["run", "vae", "--preset", "huge"], "unknown preset 'huge'"),
    (["experiment", "generativ"], "did you mean 'generative'"),
    (["run"], "name a system"),
    (["frobnicate"], "invalid choice"),
    (["run", "vae", "--seed", "-1"], "seed must be an integer in [0, 2147483647]"),
    (["run", "vae", "--preset", "tiny", "--out", "/proc/forbidden"], "cannot create the run directory"),
    (["run", "vae", "--preset", "tiny", "--stop-after", "0"], "--stop-after must be at least 1"),
    (["claims", "/nonexistent"], "no claims.json at /nonexistent"),
    (["claims", "/nonexistent", "--reanalyse"], "not a readable experiment directory"),
    (["report", "/nonexistent"], "is neither a run directory"),
    (["run", "--resume", "/nonexistent"], "is not a run directory"),
    (["bench", "vea"], "unknown system 'vea'"),
    (["bench", "vae", "--set", "kl_wieght=1"], "did you mean 'kl_weight'"),
    (["bench", "vae", "--calls", "0"], "--calls must be at least 1"),
])
def test_usage_errors_exit_2_without_traceback(args, needle):
    p = athanor(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


def test_run_resume_report_and_corrupt_checkpoint(tmp_path):
    p = athanor("run", "oracle", "--preset", "tiny", "--quiet", "--out", str(tmp_path), "--stop-after", "10")
    assert p.returncode == 0, p.stderr
    run_dir = Path(p.stdout.strip().splitlines()[-1])
    assert "resume with" in p.stdout
    p = athanor("run", "--resume", str(run_dir), "--quiet")
    assert p.returncode == 0, p.stderr
    assert (run_dir / "report.html").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    p = athanor("report", str(run_dir), "--out", str(tmp_path / "copy.html"))
    assert p.returncode == 0 and (tmp_path / "copy.html").read_text().startswith("<!")
    p = athanor("claims", str(run_dir))
    assert p.returncode == 2 and "no claims.json" in p.stderr and "Traceback" not in p.stderr
    for ck in (run_dir / "checkpoints").glob("*.msgpack"):
        ck.write_bytes(ck.read_bytes()[:100])
    p = athanor("run", "--resume", str(run_dir), "--quiet")
    assert p.returncode == 1 and "no valid checkpoint" in p.stderr and "Traceback" not in p.stderr


def test_a_batch_too_large_for_memory_is_a_one_line_error(tmp_path):
    p = athanor("run", "vae", "--preset", "tiny", "--quiet", "--out", str(tmp_path), "--set", "batch_size=1e9")
    assert p.returncode == 2, p.stderr
    assert "out of memory" in p.stderr and "batch_size=1000000000" in p.stderr and "Traceback" not in p.stderr
    run_dir = next((tmp_path / "vae").iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_list_imports_no_system_module():
    code = ("import sys; from athanor.cli import main; main(['list', '--json']); "
            "loaded = [m for m in sys.modules if m.startswith(('athanor.systems.', 'jax', 'torch'))]; "
            "print('LOADED', loaded)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "LOADED []"


def test_bench_takes_set_and_starts_like_a_run():
    p = athanor("bench", "oracle", "--preset", "tiny", "--calls", "1", "--set", "lr=0.001", "--seed", "3", "--json")
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)
    assert r["system"] == "oracle" and r["sets"] == ["lr=0.001"] and r["compile_s"] >= 0
    assert r["throughput"] == {"unit": "updates", "per_s": r["steps_per_s"]} and r["runtime"]["framework"] == "jax"
    assert r["git_sha"] is None or len(r["git_sha"]) == 40


@pytest.mark.parametrize("args, needle", [
    (["sweep", "vae", "--grid", "kl_wieght=1,2"], "did you mean 'kl_weight'"),
    (["sweep", "vae", "--grid", "kl_weight"], "malformed --grid 'kl_weight'"),
    (["sweep", "vae", "--grid", "kl_weight=0.1,,1"], "malformed --grid"),
    (["sweep", "vae", "--grid", "kl_weight=0.1,heavy"], "config key 'kl_weight' expects float, got 'heavy'"),
    (["sweep", "vae", "--preset", "tiny", "--grid", "steps=-10,10"], "below its minimum"),
    (["sweep", "vae", "--grid", "lr=1e-3", "--set", "lr=1e-4"], "both swept (--grid) and fixed (--set)"),
    (["sweep"], "name a system to sweep"),
    (["sweep", "vae", "--resume", "/nonexistent"], "drop SYSTEM, --grid, --preset and --set"),
    (["sweep", "--resume", "/nonexistent"], "is not a sweep directory"),
    (["sweep", "vae", "--seeds", "0"], "--seeds must be at least 1"),
    (["sweep", "vae", "--workers", "0"], "--workers must be at least 1"),
    (["sweep", "vae", "--executor", "local", "--ray-address", "127.0.0.1:1"], "drop --executor local"),
    (["experiment", "vae-kl", "--resume", "/nonexistent"], "is not an experiment directory"),
    (["experiment", "vae-kl", "--executor", "dask"], "invalid choice: 'dask'"),
])
def test_sweep_and_executor_usage_errors_exit_2(args, needle):
    p = athanor(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr
    assert "Traceback" not in p.stderr


def test_resume_of_a_folder_that_is_not_an_experiment(tmp_path):
    p = athanor("run", "oracle", "--preset", "tiny", "--quiet", "--out", str(tmp_path), "--stop-after", "10")
    run_dir = p.stdout.strip().splitlines()[-1]
    for args in (["experiment", "vae-kl", "--resume", run_dir], ["sweep", "--resume", run_dir]):
        p = athanor(*args)
        assert p.returncode == 2 and "is not a" in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert "pass the folder that" in p.stderr


def test_sweep_in_process_prints_the_table(tmp_path):
    p = athanor("sweep", "oracle", "--preset", "tiny", "--grid", "lr=1e-3", "--executor", "local", "--quiet",
                "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    sweep_dir = Path(lines[-1])
    assert sweep_dir.parent.name == "sweep-oracle" and "p0-lr=0.001: 1/1 seeds completed" in lines[0]
    assert any(line.startswith("tv ") for line in lines)
    assert (sweep_dir / "results.csv").is_file() and (sweep_dir / "p0-lr=0.001_s0" / "report.html").is_file()
    p = athanor("archive", str(sweep_dir), str(tmp_path / "shared"))  # a sweep too; its checkpoints stay behind
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{tmp_path / 'shared'}: 1 of 1 runs, ") and "MiB (was " in p.stdout
    assert (tmp_path / "shared" / "sweep.json").is_file() and not list((tmp_path / "shared").rglob("checkpoints"))
    p = athanor("archive", str(sweep_dir), str(tmp_path / "shared"))
    assert p.returncode == 2 and "already exists; pass a new path" in p.stderr and "Traceback" not in p.stderr
