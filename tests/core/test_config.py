import dataclasses

import pytest

from athanor.core import config as C
from athanor.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Cfg(C.TrainConfig):
    steps: int = 100
    inner_steps: int = 10
    lr: float = C.param(3e-4, lo=0.0, hi=1.0)
    mode: str = C.param("element", choices=("element", "batch"))
    flag: bool = False
    hidden: tuple = (64, 128)
    limit: int | None = None


PRESETS = {"tiny": {"steps": 20, "lr": 1e-3}, "full": {"steps": 1000}}


def test_resolution_order_defaults_preset_experiment_set():
    cfg = C.resolve(Cfg, PRESETS)
    assert (cfg.steps, cfg.lr) == (100, 3e-4)
    cfg = C.resolve(Cfg, PRESETS, "tiny")
    assert (cfg.steps, cfg.lr) == (20, 1e-3)
    cfg = C.resolve(Cfg, PRESETS, "tiny", experiment={"lr": 0.5}, base={"mode": "batch", "lr": 0.9})
    assert (cfg.steps, cfg.lr, cfg.mode) == (20, 0.5, "batch")
    cfg = C.resolve(Cfg, PRESETS, "tiny", experiment={"lr": 0.5}, sets=["lr=0.25", "flag=true", "steps=30"])
    assert (cfg.steps, cfg.lr, cfg.flag) == (30, 0.25, True)


def test_set_parses_types():
    s = C.parse_sets(Cfg, ["lr=1e-2", "steps=2e3", "flag=no", "hidden=32,16", "limit=none", "mode=batch"])
    assert s == {"lr": 0.01, "steps": 2000, "flag": False, "hidden": (32, 16), "limit": None, "mode": "batch"}
    assert isinstance(s["steps"], int)


@pytest.mark.parametrize("sets, needle", [
    (["lrr=0.1"], "did you mean 'lr'"),
    (["lr"], "malformed --set 'lr'"),
    (["=3"], "malformed --set"),
    (["steps=1.5"], "expects int"),
    (["flag=maybe"], "expects bool"),
    (["lr=abc"], "expects float"),
    (["lr=2.0"], "above its maximum 1.0"),
    (["lr=-1"], "below its minimum 0.0"),
    (["mode=both"], "must be one of ['element', 'batch']"),
    (["steps=25"], "multiple of inner_steps"),
])
def test_bad_sets_name_the_problem(sets, needle):
    with pytest.raises(ConfigError) as e:
        C.resolve(Cfg, PRESETS, "tiny", sets=sets)
    assert needle in str(e.value)


def test_unknown_preset_and_experiment_key():
    with pytest.raises(ConfigError, match="unknown preset 'tiyn'.*did you mean 'tiny'"):
        C.resolve(Cfg, PRESETS, "tiyn")
    with pytest.raises(ConfigError, match="unknown config key 'step'.*experiment.*did you mean 'steps'"):
        C.resolve(Cfg, PRESETS, experiment={"step": 3})
    with pytest.raises(ConfigError, match="expects int, got str"):
        C.resolve(Cfg, PRESETS, experiment={"steps": "many"})


def test_config_round_trips_through_json_dict():
    cfg = C.resolve(Cfg, PRESETS, "tiny", sets=["hidden=8,4", "limit=3"])
    again = C.from_dict(Cfg, C.to_dict(cfg))
    assert again == cfg and hash(again) == hash(cfg)
