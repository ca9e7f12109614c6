"""Flow matching (rectified flow) on the diffusion backbone: an extension beyond the source post.

The post (05) compares a VAE, GANs, an autoregressive sampler and a diffusion model; flow matching is not in
it. It is added here as the natural sibling of the x0-predicting diffusion model, trained and scored the same
way.

Method (Liu et al. 2022, "Flow straight and fast"; Lipman et al. 2022, "Flow matching"). Couple noise
x0 ~ N(0, I) with data x1 = image - 0.5 (independently) and interpolate linearly:

    x_t = (1 - t) x0 + t x1,    t ~ U(0, 1),    dx_t/dt = x1 - x0

The marginal velocity v(x, t) = E[x1 - x0 | x_t = x] transports N(0, I) at t = 0 to the data at t = 1; samples
integrate dx/dt = v(x, t) with ``sample_steps`` Euler steps t_k = k / N, k = 0 .. N-1.

Parameterisation (``prediction``). Default "x1": the network predicts the clean image x1_hat = f(x_t, t), the
loss is mean (f - x1)^2, and the velocity is recovered as v = (x1_hat - x_t) / (1 - t), exact because
x1 - x0 = (x1 - x_t) / (1 - t) on the path. The post's argument for predicting x0 in diffusion applies
unchanged: the backbone has no skip path, so predicting x1 - x0 would force 2352 values of independent noise
through a 256-unit bottleneck, whereas x1 is one of a few coloured digits. Since every Euler step has
1 - t >= 1/N, the division is safe, and the final step lands exactly on x1_hat. x1_hat is clipped to the data
range [-0.5, 0.5] before use (``clip_x1``), as the diffusion sampler clips x0_hat. "velocity" regresses
x1 - x0 directly (the standard rectified-flow loss), for comparison.

Backbone: diffusion.Denoiser (Dense 256 on the image, + 16 sinusoidal time features of t in [0, 1], tanh,
256, 256, Dense 2352) and the diffusion model's training budget: Adam 3e-4, batch 64, 100,000 steps.

Devices (not in the source): ``devices`` = N > 1 trains data-parallel, each batch split over N devices with the
parameters replicated (``core.jaxtools``: jit with sharded values, gradients all-reduced by XLA). ``batch_size``
must be a multiple of N. 1 (the default) is the single-device path, bit-identical to the model without the
option. Sampling and evaluation are not split.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.systems.generative import common
from athanor.systems.generative.diffusion import DATA_SHIFT, N_TIME_FEATURES, Denoiser, time_features
from athanor.viz.figures import image_grid


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(100_000, lo=1)  # as the diffusion model (alg_diffusion: 100*1000)
    inner_steps: int = param(1000, lo=1)  # updates fused per jitted call (speed only)
    batch_size: int = param(64, lo=1)  # as the diffusion model
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # as the diffusion model
    hidden: int = param(256, lo=1)  # diffusion backbone width
    prediction: str = param("x1", choices=("x1", "velocity"))  # network target; see the module docstring
    clip_x1: bool = param(True)  # clip x1_hat to the data range before deriving the velocity
    sample_steps: int = param(100, lo=1)  # Euler steps N from t = 0 to t = 1 (not in the source)
    eval_samples: int = param(12_800, lo=1)  # post: 100 batches x 128 scored samples
    eval_batch: int = param(1280, lo=1)  # samples per sampling chunk (bounded memory)
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each batch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_samples": 256, "eval_batch": 256, "sample_steps": 20},
    "quick": {"steps": 10_000, "inner_steps": 1000, "eval_samples": 2560},
    "full": {},
}


class State(struct.PyTreeNode):
    params: Any
    opt_state: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it


load_data = common.load_data


def interpolate(x0: jax.Array, x1: jax.Array, t: jax.Array) -> jax.Array:
    """x_t = (1 - t) x0 + t x1, t scalar or per example (n,)."""
    t = jnp.reshape(t, jnp.shape(t) + (1,) * (x0.ndim - jnp.ndim(t)))
    return (1.0 - t) * x0 + t * x1


def velocity_from_x1(x1_hat: jax.Array, x_t: jax.Array, t: jax.Array) -> jax.Array:
    """v = (x1_hat - x_t) / (1 - t).

    On the path x1 - x0 = (x1 - x_t) / (1 - t), so plugging in E[x1 | x_t] gives exactly E[x1 - x0 | x_t].
    """
    return (x1_hat - x_t) / (1.0 - t)


def euler_sample(velocity_fn, x0: jax.Array, steps: int) -> tuple[jax.Array, jax.Array]:
    """Integrate dx/dt = velocity_fn(x, t) from t = 0 to 1 with ``steps`` Euler steps.

    Returns (x at t = 1, the state before each step (steps, ...)).
    """
    dt = 1.0 / steps

    def body(x, k):
        return x + dt * velocity_fn(x, k * dt), x

    return jax.lax.scan(body, x0, jnp.arange(steps, dtype=jnp.float32))


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def _net(params, cfg: Config, x_t: jax.Array, t: jax.Array) -> jax.Array:
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x_t.shape[:1])
    return Denoiser(cfg.hidden).apply({"params": params}, x_t, time_features(t))


def velocity(params, cfg: Config, x_t: jax.Array, t: jax.Array) -> jax.Array:
    """The model's velocity field v(x_t, t) for a scalar t in [0, 1)."""
    out = _net(params, cfg, x_t, t)
    if cfg.prediction == "velocity":
        return out
    x1_hat = jnp.clip(out, -DATA_SHIFT, DATA_SHIFT) if cfg.clip_x1 else out
    return velocity_from_x1(x1_hat, x_t, t)


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


def init(cfg: Config, seed: int, data) -> State:
    return jaxtools.replicate(_init(cfg, jaxtools.key(seed), data), _mesh(cfg))


@functools.partial(jax.jit, static_argnames="cfg")  # one compile instead of dozens of eager ops
def _init(cfg: Config, key: jax.Array, data) -> State:
    k_net, k_state = jax.random.split(key)
    x = jnp.zeros((1, *common.IMAGE_SHAPE))
    params = Denoiser(cfg.hidden).init(k_net, x, jnp.zeros((1, N_TIME_FEATURES)))["params"]
    return State(params=params, opt_state=_optimizer(cfg).init(params), key=k_state)


def loss_fn(params, cfg: Config, x1: jax.Array, key: jax.Array) -> jax.Array:
    """Flow-matching regression at t ~ U(0, 1) for data x1 in [-0.5, 0.5]."""
    k_t, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_t, (x1.shape[0],))
    x0 = jax.random.normal(k_noise, x1.shape)
    out = _net(params, cfg, interpolate(x0, x1, t), t)
    target = x1 - x0 if cfg.prediction == "velocity" else x1
    return jnp.mean(jnp.square(out - target))


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    mesh = _mesh(cfg)

    def batch_loss(params, k):
        k_data, k_loss = jax.random.split(k)
        x1 = jaxtools.shard_batch(common.draw_batch(k_data, data, cfg.batch_size), mesh) - DATA_SHIFT
        return loss_fn(params, cfg, x1, k_loss), {}

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, mesh)


def _run_sampler(state: State, cfg: Config, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    x0 = jax.random.normal(key, (n, *common.IMAGE_SHAPE))
    return euler_sample(lambda x, t: velocity(state.params, cfg, x, t), x0, cfg.sample_steps)


@functools.partial(jax.jit, static_argnames=("cfg", "n"))
def sample(state: State, cfg: Config, key: jax.Array, n: int) -> jax.Array:
    """n samples (n, 28, 28, 3) in [0, 1]."""
    x1, _ = _run_sampler(state, cfg, key, n)
    return jnp.clip(x1 + DATA_SHIFT, 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("cfg", "n", "frames"))
def sample_trajectory(state: State, cfg: Config, key: jax.Array, n: int, frames: int = 7) -> jax.Array:
    """The flow's state x_t of n samples at ``frames`` times from t = 0 to t = 1: (frames, n, 28, 28, 3)."""
    x1, xs = _run_sampler(state, cfg, key, n)
    path = jnp.concatenate([xs, x1[None]], axis=0)  # (N + 1, n, ...) at t = k / N
    idx = np.linspace(0, cfg.sample_steps, frames).round().astype(int)
    return jnp.clip(path[idx] + DATA_SHIFT, 0.0, 1.0)


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    return common.evaluate_samples(sample, state, data, cfg, key)


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    key = jaxtools.key(seed)
    out = common.sample_artifacts(sample, state, data, cfg, key)
    frames = np.asarray(sample_trajectory(state, cfg, jax.random.fold_in(key, 1), 8))  # (7, 8, 28, 28, 3)
    # One row per sample, one column per time: noise at t = 0 flowing to the image at t = 1.
    out["flow"] = image_grid(
        frames.transpose(1, 0, 2, 3, 4).reshape(-1, *common.IMAGE_SHAPE), nrow=frames.shape[0], scale=2
    )
    return out
