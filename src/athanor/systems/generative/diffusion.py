"""Denoising diffusion (DDPM) with x0 prediction on coloured MNIST ("A Brief Examination of Generative Models",
section "Diffusion Models").

Forward process. Images are shifted to x0 in [-0.5, 0.5] (x0 = image - 0.5, as the original). With a linear
schedule beta_t = linspace(1e-4, 0.02, T), T = 300, t = 0 .. T-1 (index 0 is the first noising step):

    alpha_t = 1 - beta_t,   abar_t = prod_{s <= t} alpha_s
    q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I)            x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps

Network. f(x_t, t) predicts x0 (the post: a small MLP cannot carry 2352 values of independent noise through a
256-unit bottleneck, but it can carry a few MNIST digits). Backbone, as the original ``DiffusionLinear``:
Dense 256 on the flattened image, concatenate 16 time features, tanh, Dense 256, tanh, Dense 256, tanh,
Dense 2352 (linear output). Time features: sin(s * pi/2 * 2^(i-4)), i = 0..15, s = t / T.
Loss: mean over pixels and batch of (f(x_t, t) - x0)^2 with t ~ U{0..T-1}, eps ~ N(0, I).
Adam 3e-4, batch 64, 100,000 steps (original ``alg_diffusion`` notebook).

Default sampler: ancestral DDPM with the x0 parameterisation. From x_{T-1} ~ prior (below), for t = T-1 .. 0:

    x0_hat = clip(f(x_t, t), -0.5, 0.5)                         (clipped to the data range: ``clip_x0``)
    q(x_{t-1} | x_t, x0) = N(mu_t, var_t)
    mu_t  = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
    var_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)      with abar_{-1} = 1 (so the last step returns x0_hat)

Prior (``prior``). The source's schedule is short: abar_{T-1} = 0.048, so q(x_{T-1}) = N(0.22 x0, 0.95 I) is
not N(0, I). Background pixels (x0 = -0.5, 85% of all values) sit at mean -0.11 there, and a start from
N(0, I) is 0.1 brighter per pixel than any training input at t = T-1 -- over 2352 pixels a 5-sigma shift of
the image mean. The network extrapolates to bright backgrounds: after 10,000 steps, 44% of 512 samples from
N(0, I) had a light background (tv 0.46, mean wrong-pixel error 346), none from the matched prior (tv 0.30,
error 0.0).
The original code has the same flaw, which its post-hoc filter (below) hid. "matched" (default) starts from
the moment-matched scalar Gaussian N(sqrt(abar_{T-1}) m, 1 - abar_{T-1} + abar_{T-1} v), where m and v are the
mean and variance of data pixel values estimated at ``init`` from 2048 images (stored in the state);
"standard" starts from N(0, I) as textbook DDPM.

``original_sampler=True`` reproduces the original release instead, in training, prior (N(0, I)) and sampling:

    noising   x_t = sqrt(abar_t) x0 + (1 - abar_t) eps      (noise scaled by 1 - abar, not its square root)
    sampling  for k = T .. 1 (the index T is clamped to T-1 for the schedule, as JAX indexing does; the time
              features use k / T unclamped):
              e = x - f(x, k)
              x <- (1 / alpha_k) (x - beta_k / sqrt(1 - abar_k) * e) + var_k * z,   z ~ N(0, I)
              (divides by alpha instead of sqrt(alpha), treats x - x0_hat as the noise, and scales z by the
              posterior variance rather than its standard deviation); the final x is the sample.
The original then kept only samples whose mean pixel was below 0 after shifting back (474 of 12,800); that
post-hoc filter is not reproduced: every sample is scored.

Deviations: squared error instead of optax ``l2_loss`` (0.5 x; Adam is invariant to the factor); samples are
clipped to [0, 1] before scoring in both samplers (the original clipped before classifying too).

Devices (not in the source): ``devices`` = N > 1 trains data-parallel, each batch split over N devices with the
parameters replicated (``core.jaxtools``: jit with sharded values, gradients all-reduced by XLA). ``batch_size``
must be a multiple of N. 1 (the default) is the single-device path, bit-identical to the model without the
option. Sampling and evaluation are not split.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.systems.generative import common
from athanor.viz.figures import image_grid

N_TIME_FEATURES = 16  # DiffusionLinear: time embedding width
DATA_SHIFT = 0.5  # dataset.mnist_shift: data -= 0.5
PRIOR_IMAGES = 2048  # images drawn at init to estimate the matched prior's pixel mean and variance


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(100_000, lo=1)  # alg_diffusion: range(100*1000)
    inner_steps: int = param(1000, lo=1)  # updates fused per jitted call (speed only)
    batch_size: int = param(64, lo=1)  # alg_diffusion: mnist_shift(batch_size=64)
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # alg_diffusion: create_train_state(model, rng, 3e-4)
    timesteps: int = param(300, lo=2)  # T: timesteps = 300
    beta_start: float = param(1e-4, lo=0.0, hi=1.0)  # beta_1: linspace(0.0001, ...)
    beta_end: float = param(0.02, lo=0.0, hi=1.0)  # beta_T: linspace(..., 0.02, timesteps)
    hidden: int = param(256, lo=1)  # DiffusionLinear: Dense(256) x 3
    clip_x0: bool = param(True)  # standard DDPM practice: clip x0_hat to the data range [-0.5, 0.5]
    prior: str = param("matched", choices=("matched", "standard"))  # x_{T-1} start; see the docstring
    original_sampler: bool = param(False)  # original release's noising (1 - abar) and sampler (1 / alpha)
    eval_samples: int = param(12_800, lo=1)  # post: 100 batches x 128 scored samples
    eval_batch: int = param(1280, lo=1)  # samples per sampling chunk (bounded memory)
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each batch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "timesteps": 50, "eval_samples": 256, "eval_batch": 256},
    # 1280 scored samples: 300 sampler steps make diffusion's evaluation the most expensive of the family.
    "quick": {"steps": 10_000, "inner_steps": 1000, "eval_samples": 1280},
    "full": {},
}


class State(struct.PyTreeNode):
    params: Any
    opt_state: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it
    data_mean: jax.Array  # m: mean data pixel value in [-0.5, 0.5], for the matched prior
    data_var: jax.Array  # v: variance of data pixel values


class Schedule(NamedTuple):
    """Per-timestep constants, each (T,), index t = 0 .. T-1."""

    beta: jax.Array
    alpha: jax.Array
    abar: jax.Array  # cumulative product of alpha
    abar_prev: jax.Array  # abar_{t-1}, with abar_{-1} = 1
    posterior_var: jax.Array  # beta_t (1 - abar_{t-1}) / (1 - abar_t)
    posterior_coef_x0: jax.Array  # sqrt(abar_{t-1}) beta_t / (1 - abar_t)
    posterior_coef_xt: jax.Array  # sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)


def make_schedule(timesteps: int, beta_start: float, beta_end: float) -> Schedule:
    """The linear-beta DDPM schedule and its posterior coefficients.

    Computed in float64 and stored as float32: 1 - abar_0 = beta_0 = 1e-4 loses 3 digits to cancellation in
    float32, which would make the last sampling step return 0.9998 x0_hat instead of x0_hat.
    """
    beta = np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)
    alpha = 1.0 - beta
    abar = np.cumprod(alpha)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    one_minus_abar = -np.expm1(np.cumsum(np.log1p(-beta)))  # 1 - abar without cancellation
    consts = dict(
        beta=beta,
        alpha=alpha,
        abar=abar,
        abar_prev=abar_prev,
        posterior_var=beta * (1.0 - abar_prev) / one_minus_abar,
        posterior_coef_x0=np.sqrt(abar_prev) * beta / one_minus_abar,
        posterior_coef_xt=np.sqrt(alpha) * (1.0 - abar_prev) / one_minus_abar,
    )
    return Schedule(**{name: jnp.asarray(v, jnp.float32) for name, v in consts.items()})


def _per_example(v: jax.Array, like: jax.Array) -> jax.Array:
    """(n,) -> (n, 1, ..., 1) so it broadcasts against a batch shaped like ``like``."""
    return jnp.reshape(v, v.shape + (1,) * (like.ndim - v.ndim))


def q_sample(
    x0: jax.Array, t: jax.Array, noise: jax.Array, schedule: Schedule, original: bool = False
) -> jax.Array:
    """Draw x_t ~ q(x_t | x0) given standard-normal ``noise``; t int (n,) or scalar.

    original=True uses the original release's noise scale (1 - abar_t) instead of sqrt(1 - abar_t).
    """
    abar = _per_example(schedule.abar[t], x0)
    scale = (1.0 - abar) if original else jnp.sqrt(1.0 - abar)
    return jnp.sqrt(abar) * x0 + scale * noise


def q_posterior(
    x0: jax.Array, x_t: jax.Array, t: jax.Array, schedule: Schedule
) -> tuple[jax.Array, jax.Array]:
    """Mean and variance of q(x_{t-1} | x_t, x0) (the variance broadcast to x_t's shape)."""
    mean = (
        _per_example(schedule.posterior_coef_x0[t], x_t) * x0
        + _per_example(schedule.posterior_coef_xt[t], x_t) * x_t
    )
    return mean, jnp.broadcast_to(_per_example(schedule.posterior_var[t], x_t), x_t.shape)


def time_features(s: jax.Array) -> jax.Array:
    """16 sinusoids of normalised time s = t / T: sin(s * pi/2 * 2^(i-4)), i = 0..15; (n,) -> (n, 16)."""
    freqs = (jnp.pi / 2.0) * 2.0 ** (jnp.arange(N_TIME_FEATURES, dtype=jnp.float32) - 4.0)
    return jnp.sin(jnp.asarray(s, jnp.float32)[..., None] * freqs)


class Denoiser(nn.Module):
    """The original DiffusionLinear: (x (n, 28, 28, 3), time features (n, 16)) -> (n, 28, 28, 3)."""

    hidden: int = 256

    @nn.compact
    def __call__(self, x, temb):
        h = nn.Dense(self.hidden)(x.reshape(x.shape[0], -1))  # (n, hidden)
        # The time features join after the first layer and pass through its tanh unweighted, as the original.
        h = jnp.tanh(jnp.concatenate([h, temb], axis=-1))  # (n, hidden + 16)
        h = jnp.tanh(nn.Dense(self.hidden)(h))
        h = jnp.tanh(nn.Dense(self.hidden)(h))
        out = nn.Dense(int(np.prod(common.IMAGE_SHAPE)))(h)  # (n, 2352)
        return out.reshape(x.shape)


load_data = common.load_data


def _schedule(cfg: Config) -> Schedule:
    return make_schedule(cfg.timesteps, cfg.beta_start, cfg.beta_end)


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def _predict_x0(params, cfg: Config, x_t: jax.Array, t: jax.Array) -> jax.Array:
    s = jnp.broadcast_to(jnp.asarray(t, jnp.float32) / cfg.timesteps, x_t.shape[:1])
    return Denoiser(cfg.hidden).apply({"params": params}, x_t, time_features(s))


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


def init(cfg: Config, seed: int, data) -> State:
    return jaxtools.replicate(_init(cfg, jaxtools.key(seed), data), _mesh(cfg))


@functools.partial(jax.jit, static_argnames="cfg")  # one compile instead of dozens of eager ops
def _init(cfg: Config, key: jax.Array, data) -> State:
    k_net, k_data, k_state = jax.random.split(key, 3)
    x = jnp.zeros((1, *common.IMAGE_SHAPE))
    params = Denoiser(cfg.hidden).init(k_net, x, jnp.zeros((1, N_TIME_FEATURES)))["params"]
    x0 = common.draw_batch(k_data, data, PRIOR_IMAGES) - DATA_SHIFT
    return State(
        params=params,
        opt_state=_optimizer(cfg).init(params),
        key=k_state,
        data_mean=jnp.mean(x0),
        data_var=jnp.var(x0),
    )


def loss_fn(params, cfg: Config, x0: jax.Array, key: jax.Array) -> jax.Array:
    """Mean squared x0-prediction error at uniformly drawn timesteps; x0 in [-0.5, 0.5]."""
    k_t, k_noise = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, cfg.timesteps)
    x_t = q_sample(x0, t, jax.random.normal(k_noise, x0.shape), _schedule(cfg), cfg.original_sampler)
    return jnp.mean(jnp.square(_predict_x0(params, cfg, x_t, t) - x0))


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    mesh = _mesh(cfg)

    def batch_loss(params, k):
        k_data, k_loss = jax.random.split(k)
        x0 = jaxtools.shard_batch(common.draw_batch(k_data, data, cfg.batch_size), mesh) - DATA_SHIFT
        return loss_fn(params, cfg, x0, k_loss), {}

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, mesh)


def ddpm_sample(
    denoise_fn, x_last: jax.Array, key: jax.Array, schedule: Schedule, clip: float | None
) -> tuple[jax.Array, jax.Array]:
    """Ancestral sampling with an x0 predictor ``denoise_fn(x_t, t) -> x0_hat``, from x_{T-1} = x_last.

    Returns (x0 sample, x0_hat at every step (T, ...)); ``clip`` bounds x0_hat to [-clip, clip] (None: off).
    """
    timesteps = schedule.beta.shape[0]

    def body(x, inputs):
        t, k = inputs
        x0_hat = denoise_fn(x, t)
        if clip is not None:
            x0_hat = jnp.clip(x0_hat, -clip, clip)
        mean, var = q_posterior(x0_hat, x, t, schedule)
        return mean + jnp.sqrt(var) * jax.random.normal(k, x.shape), x0_hat

    ts = jnp.arange(timesteps - 1, -1, -1)
    return jax.lax.scan(body, x_last, (ts, jax.random.split(key, timesteps)))


def original_sample(
    denoise_fn, x_last: jax.Array, key: jax.Array, schedule: Schedule
) -> tuple[jax.Array, jax.Array]:
    """The original release's sampler (see the module docstring); ``denoise_fn(x, k)`` gets k = T .. 1."""
    timesteps = schedule.beta.shape[0]

    def body(x, inputs):
        k, rng = inputs
        c = jnp.minimum(k, timesteps - 1)
        x0_hat = denoise_fn(x, k)
        e = x - x0_hat
        beta, alpha, abar = schedule.beta[c], schedule.alpha[c], schedule.abar[c]
        z = jax.random.normal(rng, x.shape)
        return (x - beta / jnp.sqrt(1.0 - abar) * e) / alpha + schedule.posterior_var[c] * z, x0_hat

    ks = jnp.arange(timesteps, 0, -1)
    return jax.lax.scan(body, x_last, (ks, jax.random.split(key, timesteps)))


def prior_moments(
    schedule: Schedule, data_mean: jax.Array, data_var: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean and std of q(x_{T-1}) pooled over pixels, for data pixels of mean m and variance v."""
    abar = schedule.abar[-1]
    return jnp.sqrt(abar) * data_mean, jnp.sqrt(1.0 - abar + abar * data_var)


def _run_sampler(state: State, cfg: Config, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    k_init, k_steps = jax.random.split(key)
    schedule = _schedule(cfg)
    x_last = jax.random.normal(k_init, (n, *common.IMAGE_SHAPE))
    if cfg.prior == "matched" and not cfg.original_sampler:
        mean, std = prior_moments(schedule, state.data_mean, state.data_var)
        x_last = mean + std * x_last

    def denoise(x, t):
        return _predict_x0(state.params, cfg, x, t)

    if cfg.original_sampler:
        return original_sample(denoise, x_last, k_steps, schedule)
    return ddpm_sample(denoise, x_last, k_steps, schedule, DATA_SHIFT if cfg.clip_x0 else None)


@functools.partial(jax.jit, static_argnames=("cfg", "n"))
def sample(state: State, cfg: Config, key: jax.Array, n: int) -> jax.Array:
    """n samples (n, 28, 28, 3) in [0, 1]."""
    x0, _ = _run_sampler(state, cfg, key, n)
    return jnp.clip(x0 + DATA_SHIFT, 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("cfg", "n", "frames"))
def sample_trajectory(state: State, cfg: Config, key: jax.Array, n: int, frames: int = 7) -> jax.Array:
    """x0_hat of n chains at ``frames`` evenly spaced sampler steps, first to last: (frames, n, 28, 28, 3)."""
    _, x0_hats = _run_sampler(state, cfg, key, n)
    idx = np.linspace(0, cfg.timesteps - 1, frames).round().astype(int)
    return jnp.clip(x0_hats[idx] + DATA_SHIFT, 0.0, 1.0)


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    return common.evaluate_samples(sample, state, data, cfg, key)


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    key = jaxtools.key(seed)
    return {**common.sample_artifacts(sample, state, data, cfg, key), **_denoising(state, cfg, key)}


def final(state: State, data, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    """evaluate + artifacts from one draw: 12,800 samples x 300 steps is the family's costliest evaluation."""
    key = jaxtools.key(seed)
    metrics, out = common.evaluate_with_artifacts(sample, state, data, cfg, key)
    return metrics, {**out, **_denoising(state, cfg, key)}


def _denoising(state: State, cfg: Config, key: jax.Array) -> dict[str, Any]:
    frames = np.asarray(sample_trajectory(state, cfg, jax.random.fold_in(key, 1), 8))  # (7, 8, 28, 28, 3)
    # One row per chain, one column per snapshot: the prediction of x0 sharpening as t goes T-1 -> 0.
    grid = image_grid(frames.transpose(1, 0, 2, 3, 4).reshape(-1, *common.IMAGE_SHAPE), nrow=frames.shape[0], scale=2)
    return {"denoising": grid}
