"""Oracle network: the shared generator given privileged labels, the upper bound of the family
("A Brief Examination of Generative Models").

Method. The input is c = [one_hot(digit, 6), rgb colour (3)] (9 numbers); the shared ``Generator`` MLP
(64-128-2352, tanh, sigmoid output) must reproduce the matching coloured digit x. It is trained by regression,

    L(theta) = E_{(x, c) ~ data} mean_pixels 0.5 * (G_theta(c) - x)^2        (optax ``l2_loss`` then a mean)

with Adam (lr 3e-4), batch 64, 10,000 steps (the original notebook). Sampling draws (digit, colour) from the
true generator and maps it through the net, so the bin frequencies are right by construction; the error table
then measures only how well the six templates were memorised (all colours, rare digits included).

Deviations: none in the method. Data batches are generated on the fly from the six templates inside the
jitted update (the original drew them in Python each step), which draws the same distribution.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.data import colored_mnist
from athanor.systems.generative import common

N_DIGITS = 6
N_INPUT = N_DIGITS + 3


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(10_000, lo=1)  # alg_oracle: range(10*1000)
    inner_steps: int = param(500, lo=1)  # updates fused per jitted call (speed only)
    batch_size: int = param(64, lo=1)  # alg_oracle: batch_size=64
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # alg_oracle: optax.adam(3e-4)
    eval_samples: int = param(12_800, lo=1)  # post: 100 batches x 128 scored samples
    eval_batch: int = param(1280, lo=1)  # samples drawn and classified per chunk (bounded memory)


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_samples": 256, "eval_batch": 128},
    "quick": {"steps": 2000, "inner_steps": 500, "eval_every": 1000},
    "full": {"eval_every": 2000, "ckpt_every": 5000},  # the source's scale (Config defaults)
}


class State(struct.PyTreeNode):
    params: Any
    opt_state: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it


_net = common.Generator()
load_data = common.load_data


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def labels_to_input(digit: jax.Array, colour: jax.Array) -> jax.Array:
    """The oracle's privileged input: one-hot digit (6) next to the rgb colour (3) -> (n, 9)."""
    return jnp.concatenate([jax.nn.one_hot(digit, N_DIGITS), colour], axis=-1)


def init(cfg: Config, seed: int, data) -> State:
    key = jaxtools.key(seed)
    k_params, k_state = jax.random.split(key)
    params = _net.init(k_params, jnp.zeros((1, N_INPUT)))["params"]
    return State(params=params, opt_state=_optimizer(cfg).init(params), key=k_state)


def loss_fn(params, inputs: jax.Array, images: jax.Array) -> jax.Array:
    recon = _net.apply({"params": params}, inputs)  # (n, 28, 28, 3)
    return jnp.mean(optax.l2_loss(recon, images))


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    def batch_loss(params, k):
        images, digit, colour = colored_mnist.sample(k, data["templates"], cfg.batch_size)
        return loss_fn(params, labels_to_input(digit, colour), images), {}

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss)


@functools.partial(jax.jit, static_argnames=("cfg", "n"))
def sample_with_labels(state: State, cfg: Config, key: jax.Array, n: int):
    """n oracle outputs for (digit, colour) drawn from the true distribution, with those labels and the true
    images: (outputs (n,28,28,3), digit (n,), colour (n,3), targets (n,28,28,3))."""
    templates = jnp.asarray(colored_mnist.templates(), dtype=jnp.float32)  # a 6x28x28 compile-time constant
    targets, digit, colour = colored_mnist.sample(key, templates, n)
    outputs = _net.apply({"params": state.params}, labels_to_input(digit, colour))
    return outputs, digit, colour, targets


def sample(state: State, cfg: Config, key: jax.Array, n: int) -> jax.Array:
    """n oracle images (n, 28, 28, 3) for true (digit, colour) draws."""
    return sample_with_labels(state, cfg, key, n)[0]


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    k_bins, k_recon = jax.random.split(key)
    metrics = common.evaluate_samples(sample, state, data, cfg, k_bins)
    outputs, _, _, targets = sample_with_labels(state, cfg, k_recon, cfg.eval_batch)
    metrics["recon_mse"] = float(jnp.mean((outputs - targets) ** 2))
    return metrics


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    key = jaxtools.key(seed)
    k_bins, _ = jax.random.split(key)
    return common.sample_artifacts(sample, state, data, cfg, k_bins)
