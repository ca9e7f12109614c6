"""Variational auto-encoder with the analytic Gaussian KL ("A Brief Examination of Generative Models";
"Deriving the KL divergence loss in variational autoencoders").

Method. An encoder q_phi(z|x) = N(mu(x), diag exp(logvar(x))) (tanh MLP 2352-128-64 -> 16 mu, 16 logvar),
a reparameterised sample z = mu + exp(logvar / 2) * eps with eps ~ N(0, I), and the shared ``Generator``
as the decoder x' = G_theta(z). Per example the loss is

    L = mean_pixels 0.5 * (x' - x)^2  +  kl_weight * mean_dims KL(N(mu, sigma^2) || N(0, 1))
    KL(N(mu, sigma^2) || N(0, 1)) = 0.5 * (-logvar - 1 + exp(logvar) + mu^2)    (per latent dimension)

averaged over the batch, with kl_weight = 0.01, Adam 3e-4, batch 64, 100,000 steps. Samples are G(z) with
z ~ N(0, I).

Weighting (checked against the original ``alg_vae`` notebook): both terms are *means* -- the reconstruction
is optax ``l2_loss`` (0.5 * squared error) averaged over the 2352 pixel values, the KL is averaged over the 16
latent dimensions. Multiplying through by 2352 shows this is 0.5 * sum_pixels (x' - x)^2 + 1.47 * sum_dims KL,
i.e. a beta-VAE with beta = 0.01 * 2352 / 16 = 1.47 under a unit-variance Gaussian decoder. We keep the
original's means so that kl_weight = 0.01 means what it meant there.

``kl_mode`` ("Deriving the KL divergence loss in variational autoencoders"). "element" is the loss above: each
example's posterior is pulled to N(0, 1). "batch" is the misconception the post warns about: fit one Gaussian to the
batch of latent samples (per-dimension batch mean m and variance v of z) and penalise KL(N(m, v) || N(0, 1)). The
batch-wise penalty is satisfied by any encoder whose codes merely *spread* like N(0, 1) across the batch, so each
example can keep a narrow, informative posterior; ``evaluate`` reports the element-wise ``kl`` in either mode so the
two can be compared.

Deviations: the original computes log(1e-8 + sigma^2) from sigma = exp(logvar / 2) and reads mu / logvar from
an interleaved (16, 2) output; we use logvar directly and the first / last 16 outputs, which is the same model
up to a negligible epsilon and a permutation of the last layer's units.

Devices (not in the source): ``devices`` = N > 1 trains data-parallel, each batch split over N devices with the
parameters replicated (``core.jaxtools``: jit with sharded values, gradients all-reduced by XLA); the loss is
unchanged, so ``kl_mode="batch"`` still fits its Gaussian to the whole batch. ``batch_size`` must be a multiple of
N. 1 (the default) is the single-device path, bit-identical to the model without the option.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.systems.generative import common


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(100_000, lo=1)  # alg_vae: range(100*1000)
    inner_steps: int = param(1000, lo=1)  # updates fused per jitted call (speed only)
    batch_size: int = param(64, lo=2)  # alg_vae: batch_size=64 (batch mode needs >= 2 for a variance)
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # alg_vae: create_train_state(model, rng, 3e-4)
    latent_dim: int = param(16, lo=1)  # EncoderLinear: 32 outputs = 16 mu + 16 logvar
    kl_weight: float = param(0.01, lo=0.0)  # alg_vae: kl_multiplier = 0.01
    kl_mode: str = param("element", choices=("element", "batch"))  # the KL post: per-example KL vs batch fit
    eval_samples: int = param(12_800, lo=1)  # post: 100 batches x 128 scored samples
    eval_batch: int = param(1280, lo=2)  # samples per chunk; also the data batch for kl / z statistics
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each batch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_samples": 256, "eval_batch": 128},
    "quick": {"steps": 10_000, "inner_steps": 1000, "eval_every": 5000},
    "full": {"eval_every": 10_000, "ckpt_every": 20_000},  # the source's scale (Config defaults)
}


class State(struct.PyTreeNode):
    params: Any  # {"encoder": ..., "decoder": ...}
    opt_state: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it


class Encoder(nn.Module):
    """x (n, 28, 28, 3) -> (mu (n, latent), logvar (n, latent))."""

    latent_dim: int

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)  # (n, 2352)
        h = jnp.tanh(nn.Dense(128)(h))
        h = jnp.tanh(nn.Dense(64)(h))
        out = nn.Dense(2 * self.latent_dim)(h)  # (n, 2 * latent)
        return out[:, : self.latent_dim], out[:, self.latent_dim :]


_decoder = common.Generator()
load_data = common.load_data


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, 1)) elementwise (the KL post): 0.5 * (-logvar - 1 + exp(logvar) + mu^2)."""
    return 0.5 * (-logvar - 1.0 + jnp.exp(logvar) + jnp.square(mu))


def batch_kl(z: jax.Array) -> jax.Array:
    """The batch-wise misconception: KL of a per-dimension Gaussian fit to the batch of codes z (n, d).

    Returns (d,) values; the fit uses the batch mean and the (biased) batch variance of each dimension.
    """
    return gaussian_kl(jnp.mean(z, axis=0), jnp.log(jnp.var(z, axis=0)))


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def _encode(params, cfg: Config, x: jax.Array):
    return Encoder(cfg.latent_dim).apply({"params": params["encoder"]}, x)


def _decode(params, z: jax.Array) -> jax.Array:
    return _decoder.apply({"params": params["decoder"]}, z)


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


def init(cfg: Config, seed: int, data) -> State:
    mesh = _mesh(cfg)
    key = jaxtools.key(seed)
    k_enc, k_dec, k_state = jax.random.split(key, 3)
    params = {
        "encoder": Encoder(cfg.latent_dim).init(k_enc, jnp.zeros((1, *common.IMAGE_SHAPE)))["params"],
        "decoder": _decoder.init(k_dec, jnp.zeros((1, cfg.latent_dim)))["params"],
    }
    return jaxtools.replicate(State(params=params, opt_state=_optimizer(cfg).init(params), key=k_state), mesh)


def loss_fn(params, cfg: Config, images: jax.Array, key: jax.Array):
    """Scalar loss and its parts for one batch; see the module docstring for the weighting."""
    mu, logvar = _encode(params, cfg, images)  # (n, d) each
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
    recon = jnp.mean(optax.l2_loss(_decode(params, z), images))
    kl = jnp.mean(gaussian_kl(mu, logvar)) if cfg.kl_mode == "element" else jnp.mean(batch_kl(z))
    return recon + cfg.kl_weight * kl, {"recon": recon, "kl_term": kl}


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    mesh = _mesh(cfg)

    def batch_loss(params, k):
        k_data, k_noise = jax.random.split(k)
        images = jaxtools.shard_batch(common.draw_batch(k_data, data, cfg.batch_size), mesh)
        return loss_fn(params, cfg, images, k_noise)

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, mesh)


@functools.partial(jax.jit, static_argnames=("cfg", "n"))
def sample(state: State, cfg: Config, key: jax.Array, n: int) -> jax.Array:
    """Decode n prior draws z ~ N(0, I): the VAE's generative samples (n, 28, 28, 3)."""
    return _decode(state.params, jax.random.normal(key, (n, cfg.latent_dim)))


@functools.partial(jax.jit, static_argnames="cfg")
def posterior_stats(state: State, data, cfg: Config, key: jax.Array) -> dict[str, jax.Array]:
    """Element-wise KL, reconstruction error and aggregate-posterior statistics on cfg.eval_batch images.

    kl: per-example KL summed over latent dims (nats), averaged over examples; recon_mse: mean squared error
    per pixel value of the reconstruction from a posterior sample; z_mean_abs: mean over dims of |batch mean
    of mu|; z_var: mean over dims of the batch variance of posterior samples z.
    """
    k_data, k_noise = jax.random.split(key)
    images = common.draw_batch(k_data, data, cfg.eval_batch)
    mu, logvar = _encode(state.params, cfg, images)
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k_noise, mu.shape)
    return {
        "kl": jnp.mean(jnp.sum(gaussian_kl(mu, logvar), axis=-1)),
        "batch_kl": jnp.sum(batch_kl(z)),
        "recon_mse": jnp.mean(jnp.square(_decode(state.params, z) - images)),
        "z_mean_abs": jnp.mean(jnp.abs(jnp.mean(mu, axis=0))),
        "z_var": jnp.mean(jnp.var(z, axis=0)),
        "posterior_std": jnp.mean(jnp.exp(0.5 * logvar)),
    }


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    k_bins, k_post = jax.random.split(key)
    metrics = common.evaluate_samples(sample, state, data, cfg, k_bins)
    metrics.update({name: float(v) for name, v in posterior_stats(state, data, cfg, k_post).items()})
    return metrics


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    key = jaxtools.key(seed)
    k_bins, _ = jax.random.split(key)
    return common.sample_artifacts(sample, state, data, cfg, k_bins)
