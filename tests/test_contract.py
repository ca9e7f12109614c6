"""The system contract (athanor/systems/contract.py), over the whole registry and the test-only systems.

Statically: every module exports what the contract requires with the right signatures, its presets resolve and
the registry lists them. End to end: every system's `tiny` preset runs through the real run loop, writes
artifacts and a report, is deterministic for a fixed seed, and resumes from a mid-run checkpoint to exactly the
metrics of an uninterrupted run. The PyTorch test system (tests/torch_system.py) passes the same checks as the
JAX ones.
"""

import json
import types

import pytest

from athanor.api import resolve_config, resume_run, start_run
from athanor.core.config import TrainConfig, to_dict
from athanor.core.runs import read_metrics
from athanor.systems import SYSTEMS, contract
from conftest import register

STEP_LOOP_TEST_SYSTEMS = ["toy", "torch-toy"]
TORCH_SYSTEMS = {"torch-toy", "clipdraw", "causal-definitions", "causal-graded", "causal-lists", "causal-story"}
ALL = sorted(SYSTEMS) + STEP_LOOP_TEST_SYSTEMS


def _spec(name, monkeypatch):
    return register(monkeypatch, name) if name not in SYSTEMS else SYSTEMS[name]


@pytest.mark.parametrize("name", ALL)
def test_module_meets_the_contract(name, monkeypatch):
    spec = _spec(name, monkeypatch)
    module = spec.load()
    assert contract.check(module) == []
    assert isinstance(module, contract.System)
    assert tuple(module.PRESETS) == spec.presets, "the registry's presets must list the module's PRESETS"
    bound = spec.bind()
    assert bound.name == name and bound.module is module
    cfg = resolve_config(name, "tiny")
    assert cfg.steps // cfg.inner_steps >= 2, "tiny must make at least two step calls so that resume is tested"


def test_every_optional_hook_has_a_default():
    assert set(contract.DEFAULTS) == set(contract.OPTIONAL)
    assert set(contract.REQUIRED) == {"Config", "PRESETS", "load_data", "init", "step", "evaluate", "artifacts"}


def _module(**members):
    base = {name: getattr(__import__("toy_system"), name) for name in contract.REQUIRED}
    return types.SimpleNamespace(__name__="broken", **{**base, **members})


@pytest.mark.parametrize("members, needle", [
    ({"init": None}, "missing required 'init'"),
    ({"init": lambda cfg, key: None}, "'init' takes 2 positional arguments, the contract says 3"),
    ({"evaluate": lambda state, data, cfg: {}}, "'evaluate' takes 3 positional arguments, the contract says 4"),
    ({"save_state": lambda: b""}, "'save_state' takes 0 positional arguments, the contract says 1"),
    ({"BASELINE": lambda cfg: {}}, "'BASELINE' is not part of the contract; rename it to 'bench_baseline'"),
    ({"items_per_step": lambda cfg: 1}, "rename it to 'items_per_update'"),
    ({"THROUGHPUT_UNIT": 3}, "'THROUGHPUT_UNIT' must be a non-empty string"),
    ({"PRESETS": {"tiny": {}, "quick": {}}}, "'PRESETS' lacks full"),
    ({"PRESETS": {"tiny": {"stepz": 1}, "quick": {}, "full": {}}}, "preset 'tiny' does not resolve"),
    ({"Config": type("C", (), {})}, "'Config' must be a frozen dataclass"),
])
def test_check_names_every_problem(members, needle):
    module = _module(**members)
    if members.get("init", 1) is None:
        del module.init
    problems = contract.check(module)
    assert any(needle in p for p in problems), problems
    with pytest.raises(Exception, match="does not meet the contract"):
        contract.bind(module, "broken")


def test_config_must_subclass_train_config():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Plain:
        steps: int = 1

    assert any("subclass athanor.core.config.TrainConfig" in p for p in contract.check(_module(Config=Plain)))
    assert issubclass(_module().Config, TrainConfig)


def test_a_run_system_needs_only_config_presets_and_run(monkeypatch):
    spec = register(monkeypatch, "loop-toy")
    module = spec.load()
    assert contract.check(module) == []
    assert not isinstance(module, contract.System)  # no step loop
    bound = spec.bind()
    assert bound.run is module.run and bound.step is None


def _records(run_dir):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in read_metrics(run_dir)]


@pytest.mark.parametrize("name", ALL)
def test_tiny_preset_runs_resumes_and_is_deterministic(name, tmp_path, monkeypatch):
    _spec(name, monkeypatch)
    cfg = resolve_config(name, "tiny")
    calls = cfg.steps // cfg.inner_steps
    full = start_run(name, preset="tiny", seed=0, out=tmp_path / "a", progress=False)
    d = full.run_dir
    assert full.status == "completed"
    assert (d / "report.html").is_file() and (d / "summary.json").is_file()
    assert list((d / "figures").glob("*.png")), "a run must leave at least one figure"
    assert full.final and all(type(v) is float for v in full.final.values())
    meta = json.loads((d / "config.json").read_text())
    assert meta["config"] == json.loads(json.dumps(to_dict(cfg)))
    assert meta["runtime"]["framework"] == ("torch" if name in TORCH_SYSTEMS else "jax")

    half = (calls // 2) * cfg.inner_steps
    part = start_run(name, preset="tiny", seed=0, out=tmp_path / "b", progress=False, stop_after=half)
    assert part.status == "interrupted" and part.steps_done == half
    # determinism: a second, independent run reproduces the first half exactly
    assert _records(part.run_dir) == [r for r in _records(d) if r["step"] <= half and
                                      not (r["kind"] == "eval" and r["step"] == cfg.steps)]
    resumed = resume_run(part.run_dir, progress=False)
    assert resumed.final == full.final
    assert _records(resumed.run_dir) == _records(d)
