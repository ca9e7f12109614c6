"""The registry of experiments: one per source post, each imported only when used.

An experiment module's exports are listed in ``core/experiment.py``; ARCHITECTURE.md has the checklist.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from athanor.core.errors import ConfigError

EXPERIMENTS: dict[str, str] = {
    "generative": "athanor.experiments.generative",
    "vae-kl": "athanor.experiments.vae_kl",
    "offline-rl": "athanor.experiments.offline_rl",
    "oceanworld": "athanor.experiments.oceanworld",
    "stampca": "athanor.experiments.stampca",
    "multicell": "athanor.experiments.multicell",
    "clipdraw": "athanor.experiments.clipdraw",
    "vib": "athanor.experiments.vib",
    "successor": "athanor.experiments.successor",
    "causal-response": "athanor.experiments.causal_response",
}


def get_experiment(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        from athanor.core.config import nearest

        hint = nearest(name, list(EXPERIMENTS))
        extra = f"; did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"unknown experiment '{name}'{extra} (see `athanor list`)")
    return importlib.import_module(EXPERIMENTS[name])
