"""The registry of systems: an explicit dict, imported lazily so `athanor list` stays fast.

A system module exports (DESIGN §3):

    Config                      frozen flat dataclass (subclass of core.config.TrainConfig)
    PRESETS                     {"tiny": {...}, "quick": {...}, "full": {...}} overrides of Config
    load_data(cfg) -> data      a pytree of arrays (or None) built once per run
    init(cfg, key, data) -> State
    step(state, data, cfg) -> (State, info)      jitted; `cfg.inner_steps` updates; info = scalar means
    evaluate(state, data, cfg, key) -> dict      python floats
    artifacts(state, data, cfg, key) -> dict     uint8 images / videos, core.artifacts.Heatmap tables
    final(state, data, cfg, key) -> (metrics, artifacts)   optional: both from one pass, used for the final
                                                            evaluation when sampling is expensive
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from athanor.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    name: str
    family: str
    module: str  # dotted import path of the system module
    summary: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # applied before the preset

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


def _spec(name: str, family: str, module: str, summary: str, **overrides: Any) -> SystemSpec:
    return SystemSpec(name, family, f"athanor.systems.{module}", summary, overrides)


SYSTEMS: dict[str, SystemSpec] = {
    s.name: s
    for s in [
        _spec("oracle", "generative", "generative.oracle",
              "MLP that maps (one-hot digit, colour) to the coloured digit: the upper bound"),
        _spec("vae", "generative", "generative.vae",
              "variational auto-encoder with the analytic Gaussian KL"),
        _spec("gan", "generative", "generative.gan",
              "non-saturating GAN on the shared tanh-MLP generator"),
        _spec("gan-mbd", "generative", "generative.gan",
              "GAN whose discriminator sees minibatch-discrimination features", minibatch=True),
        _spec("autoregressive", "generative", "generative.autoregressive",
              "pixel-by-pixel sampler over 512 colour bins from a 64-pixel context"),
        _spec("diffusion", "generative", "generative.diffusion",
              "DDPM with x0 prediction, T=300, linear betas"),
        _spec("flow", "generative", "generative.flow",
              "flow matching (rectified flow) on the diffusion backbone"),
    ]
}


def get_system(name: str) -> SystemSpec:
    if name not in SYSTEMS:
        from athanor.core.config import nearest

        hint = nearest(name, list(SYSTEMS))
        extra = f"; did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"unknown system '{name}'{extra} (see `athanor list`)")
    return SYSTEMS[name]
