"""The registry of systems: an explicit dict of specs; a system's module is imported only when it is used, so
`athanor list` stays fast.

What a system module must export is written once in ``systems/contract.py``; ``SystemSpec.bind()`` checks a
module against it and fills in the optional hooks. To add a system, write its module and add one ``_spec`` line
below (ARCHITECTURE.md has the whole checklist); the contract test then runs it through the real run loop.
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
    presets: tuple[str, ...] = ("tiny", "quick", "full")  # the module's PRESETS keys (the contract test checks)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def bind(self):
        """The module checked against the contract, with every optional hook resolved."""
        from athanor.systems.contract import bind

        return bind(self.load(), self.name)


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
        _spec("iql", "offline-rl", "offline_rl.iql",
              "IQL on the point maze with the AWR Gaussian policy head (tanh mean, learned std)"),
        _spec("iql-awr-discrete", "offline-rl", "offline_rl.iql",
              "IQL with AWR over clustered action tokens and a softmax head", head="awr_discrete"),
        _spec("iql-ddpg", "offline-rl", "offline_rl.iql",
              "IQL with DDPG extraction: maximise Q(s, tanh(mu(s))), no behaviour cloning", head="ddpg"),
        _spec("iql-ddpg-bc", "offline-rl", "offline_rl.iql",
              "IQL with DDPG+BC extraction: Q term normalised by mean |Q| plus a BC term", head="ddpg_bc"),
        _spec("ocean-random", "oceanworld", "oceanworld.qd",
              "random sampling of soft swimming creatures", algorithm="random"),
        _spec("ocean-greedy", "oceanworld", "oceanworld.qd",
              "greedy hill climbing from one start creature", algorithm="greedy"),
        _spec("ocean-novelty", "oceanworld", "oceanworld.qd",
              "novelty search in (node fraction, bond ratio) space", algorithm="novelty"),
        _spec("ocean-mapelites", "oceanworld", "oceanworld.qd",
              "MAP-Elites on a 32x32 grid, seeded randomly", algorithm="mapelites"),
        _spec("ocean-ns-mapelites", "oceanworld", "oceanworld.qd",
              "MAP-Elites seeded from a novelty-search population", algorithm="ns_mapelites"),
        _spec("stampca", "stampca", "stampca.autoencoder",
              "conditional NCA: an emoji's code in one seed cell grows that emoji (autoencoder)"),
        _spec("stampca-gan", "stampca", "stampca.mnist_gan",
              "conditional NCA that grows an MNIST GAN's digit from the GAN latent in its seed cell"),
        _spec("clipdraw", "clipdraw", "clipdraw.system",
              "Bezier strokes optimised so an image-text model matches a prompt (offline scorer shipped)"),
        _spec("multicell", "multicell", "multicell.world",
              "grid chemistry where multicellular organisms with decision-tree genomes grow, specialise and kill"),
        _spec("vib", "vib", "vib.vib",
              "deep variational information bottleneck on MNIST: cross-entropy + beta * KL, in bits"),
        _spec("vib-deterministic", "vib", "vib.vib",
              "the VIB's deterministic baseline: the same encoder layers, no noise, no KL", mode="deterministic"),
        _spec("vib-vae", "vib", "vib.vib",
              "the VAE as the VIB with Y = X and beta = 1: Bernoulli pixels, rate + distortion in bits",
              mode="vae", beta=1.0, decoder_hidden=1024),
        _spec("sr-tabular", "successor", "successor.tabular",
              "tabular successor representation learned by TD, against (1-gamma)(I-gamma P)^-1 P"),
        _spec("gamma-model", "successor", "successor.gamma_model",
              "gamma model: a mixture density network of the discounted future-state distribution, trained by "
              "generative TD"),
        _spec("fb", "successor", "successor.fb",
              "forward-backward representation learned reward-free offline, zero-shot for any reward in a gridworld"),
        _spec("fb-goal-dqn", "successor", "successor.fb",
              "the FB comparison: a goal-conditioned DQN trained offline with the goal rewards", mode="goal-dqn"),
        _spec("fb-maze", "successor", "successor.fb_maze",
              "forward-backward representation on the point maze's offline data (DDPG actor), zero-shot to every cell"),
        _spec("causal-definitions", "causal", "causal.system",
              "definitions by forward prediction vs causal-response selection, judged by a word-guessing round trip"),
        _spec("causal-graded", "causal", "causal.system",
              "the causal-response score of human-written descriptions of growing detail", task="graded", steps=12,
              eval_every=12, ckpt_every=4),
        _spec("causal-lists", "causal", "causal.system",
              "list completion by forward prediction vs causal-response selection", task="lists", steps=12,
              eval_every=12, ckpt_every=4),
        _spec("causal-story", "causal", "causal.system",
              "a story steered sentence by sentence by a yes/no criterion, judged by a held-out phrasing",
              task="story", steps=6, eval_every=6, ckpt_every=1, candidates=10),
    ]
}


def get_system(name: str) -> SystemSpec:
    if name not in SYSTEMS:
        from athanor.core.config import nearest

        hint = nearest(name, list(SYSTEMS))
        extra = f"; did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"unknown system '{name}'{extra} (see `athanor list`)")
    return SYSTEMS[name]
