"""Generative adversarial network, optionally with minibatch discrimination
("A Brief Examination of Generative Models").

Method. Generator G = the shared ``Generator`` MLP on noise z ~ N(0, I_16) (the original's ``(batch, 16)``
normal draw). Discriminator D: tanh MLP 2352-128-64 -> [minibatch discrimination] -> 32 (tanh) -> 1 logit.
Losses (binary cross-entropy on logits, sigma = sigmoid):

    L_D = 0.5 * ( E_x[-log sigma(D(x))] + E_z[-log(1 - sigma(D(G(z))))] )
    L_G = E_z[-log sigma(D(G(z)))]                                    (non-saturating)

One training iteration (the original ``train_step``): ``g_steps`` = 5 generator updates, each on a fresh noise
batch of ``batch_size`` = 128, then one discriminator update on 128 real and 128 freshly generated images.
Adam, G lr 3e-4, D lr 6e-5, 29,000 iterations; ``steps`` counts iterations (145,000 generator updates).

Minibatch discrimination (Salimans et al. 2016, as in the original ``MiniBatchDiscrimination`` module): the
64 hidden features f_i of each image are projected by a learned tensor T (64 x 8 x 4) to M_i (8 x 4);
for each of the 8 outputs o, c_o(i, j) = exp(-sum_k |M_i[o,k] - M_j[o,k]|) and the feature is
o_i[o] = sum_{j != i} c_o(i, j). The self term (always exp(0) = 1) is excluded, as the original does by
subtracting 1, so a fully collapsed batch gives batch_size - 1 in every output. The 8 features are
concatenated to f_i. Real and fake images are scored in separate batches, so each batch's statistics are
compared only with its own kind.

Deviations: the original discriminator always includes minibatch discrimination; the post first shows a
plain GAN and then adds it, so ``minibatch`` defaults to False (the post's first experiment) and the
registered ``gan-mbd`` sets it to True. ``info["loss"]`` is the generator loss averaged over the iteration's
generator updates.

Devices (not in the source): ``devices`` = N > 1 trains data-parallel: the noise and real batches are split over N
devices and the parameters replicated (``core.jaxtools``: jit with sharded values). The losses are written as on
one device, so the minibatch-discrimination statistic o_i still sums over all ``batch_size`` examples of the
batch, not over a device's slice: XLA gathers the projected features M_j it needs (tests/core/test_sharding.py
checks the sharded update against the single-device one). ``batch_size`` must be a multiple of N. 1 (the
default) is the single-device path, bit-identical to the model without the option.
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
    steps: int = param(29_000, lo=1)  # alg_gan: range(29*1000) iterations
    inner_steps: int = param(250, lo=1)  # iterations fused per jitted call (speed only)
    batch_size: int = param(128, lo=2)  # alg_gan: batch_size=128 (real and fake)
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # alg_gan: generator optax.adam(3e-4)
    d_lr: float = param(6e-5, lo=0.0, hi=1.0)  # alg_gan: discriminator optax.adam(6e-5)
    g_steps: int = param(5, lo=1)  # alg_gan train_step: 5 generator steps per discriminator step
    noise_dim: int = param(16, lo=1)  # alg_gan: z = normal(rng, (batch_size, 16))
    minibatch: bool = param(False)  # post: plain GAN first, then minibatch discrimination (gan-mbd)
    mbd_outputs: int = param(8, lo=1)  # MiniBatchDiscrimination(out_features=8)
    mbd_kernels: int = param(4, lo=1)  # MiniBatchDiscrimination num_kernels=4
    eval_samples: int = param(12_800, lo=1)  # post: 100 batches x 128 scored samples
    eval_batch: int = param(1280, lo=2)  # samples drawn and classified per chunk (bounded memory)
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each batch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_samples": 256, "eval_batch": 128},
    "quick": {"steps": 3000, "inner_steps": 250, "eval_every": 1000},
    "full": {"eval_every": 2000, "ckpt_every": 5000},  # the source's scale (Config defaults)
}


class State(struct.PyTreeNode):
    g_params: Any
    d_params: Any
    g_opt: Any
    d_opt: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it


def minibatch_features(x: jax.Array, T: jax.Array) -> jax.Array:
    """Minibatch-discrimination features: x (n, f), T (f, outputs, kernels) -> (n, outputs).

    o_i = sum_{j != i} exp(-||M_i - M_j||_1 over kernels), M = x . T; in [0, n - 1] per output.
    """
    m = jnp.einsum("nf,fok->nok", x, T)  # (n, outputs, kernels)
    dist = jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)  # (n, n, outputs)
    return jnp.sum(jnp.exp(-dist), axis=1) - 1.0  # drop the self pair exp(0) = 1


class Discriminator(nn.Module):
    """Image (n, 28, 28, 3) -> real/fake logit (n,); with minibatch=True the logit depends on the batch."""

    minibatch: bool
    mbd_outputs: int = 8
    mbd_kernels: int = 4

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)  # (n, 2352)
        h = jnp.tanh(nn.Dense(128)(h))
        h = jnp.tanh(nn.Dense(64)(h))
        if self.minibatch:
            # fan-in is the 64 features, matching a (64, outputs * kernels) LeCun-normal matrix
            init = nn.initializers.lecun_normal(in_axis=0, out_axis=(1, 2))
            T = self.param("T", init, (h.shape[-1], self.mbd_outputs, self.mbd_kernels))
            h = jnp.concatenate([h, minibatch_features(h, T)], axis=-1)  # (n, 64 + outputs)
        h = jnp.tanh(nn.Dense(32)(h))
        return nn.Dense(1)(h)[:, 0]


_generator = common.Generator()
load_data = common.load_data


def discriminator(cfg: Config) -> Discriminator:
    return Discriminator(cfg.minibatch, cfg.mbd_outputs, cfg.mbd_kernels)


def _g_tx(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def _d_tx(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.d_lr)


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


def init(cfg: Config, seed: int, data) -> State:
    mesh = _mesh(cfg)
    key = jaxtools.key(seed)
    k_g, k_d, k_state = jax.random.split(key, 3)
    g_params = _generator.init(k_g, jnp.zeros((1, cfg.noise_dim)))["params"]
    d_params = discriminator(cfg).init(k_d, jnp.zeros((2, *common.IMAGE_SHAPE)))["params"]
    state = State(
        g_params=g_params,
        d_params=d_params,
        g_opt=_g_tx(cfg).init(g_params),
        d_opt=_d_tx(cfg).init(d_params),
        key=k_state,
    )
    return jaxtools.replicate(state, mesh)


def _generate(g_params, cfg: Config, key: jax.Array, n: int, mesh=None) -> jax.Array:
    z = jaxtools.shard_batch(jax.random.normal(key, (n, cfg.noise_dim)), mesh)
    return _generator.apply({"params": g_params}, z)


def generator_loss(g_params, d_params, cfg: Config, key: jax.Array, mesh=None) -> jax.Array:
    """Non-saturating generator loss on ``batch_size`` fresh samples (split over ``mesh`` when given)."""
    logits = discriminator(cfg).apply({"params": d_params}, _generate(g_params, cfg, key, cfg.batch_size, mesh))
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits)))


def discriminator_loss(d_params, g_params, cfg: Config, real: jax.Array, key: jax.Array, mesh=None):
    """L_D on ``real`` and as many fresh fakes (split over ``mesh`` when given), and the mean D outputs."""
    d = discriminator(cfg)
    logits_fake = d.apply({"params": d_params}, _generate(g_params, cfg, key, real.shape[0], mesh))
    logits_real = d.apply({"params": d_params}, real)
    fake = jnp.mean(optax.sigmoid_binary_cross_entropy(logits_fake, jnp.zeros_like(logits_fake)))
    real_loss = jnp.mean(optax.sigmoid_binary_cross_entropy(logits_real, jnp.ones_like(logits_real)))
    probs = {"d_real": jnp.mean(nn.sigmoid(logits_real)), "d_fake": jnp.mean(nn.sigmoid(logits_fake))}
    return 0.5 * (fake + real_loss), probs


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    g_tx, d_tx = _g_tx(cfg), _d_tx(cfg)
    mesh = _mesh(cfg)
    key, sub = jax.random.split(state.key)

    def g_update(carry, k):
        g_params, g_opt, d_params = carry
        loss, grads = jax.value_and_grad(generator_loss)(g_params, d_params, cfg, k, mesh)
        updates, g_opt = g_tx.update(grads, g_opt, g_params)
        return jaxtools.replicate((optax.apply_updates(g_params, updates), g_opt, d_params), mesh), loss

    def iteration(carry, k):
        g_params, d_params, g_opt, d_opt = carry
        k_g, k_real, k_fake = jax.random.split(k, 3)
        (g_params, g_opt, _), g_losses = jax.lax.scan(
            g_update, (g_params, g_opt, d_params), jax.random.split(k_g, cfg.g_steps)
        )
        real = jaxtools.shard_batch(common.draw_batch(k_real, data, cfg.batch_size), mesh)
        (d_loss, probs), grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
            d_params, g_params, cfg, real, k_fake, mesh
        )
        updates, d_opt = d_tx.update(grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, updates)
        carry = jaxtools.replicate((g_params, d_params, g_opt, d_opt), mesh)
        return carry, {"loss": jnp.mean(g_losses), "d_loss": d_loss, **probs}

    carry = jaxtools.replicate((state.g_params, state.d_params, state.g_opt, state.d_opt), mesh)
    (g_params, d_params, g_opt, d_opt), infos = jax.lax.scan(iteration, carry, jax.random.split(sub, cfg.inner_steps))
    info = jax.tree_util.tree_map(jnp.mean, infos)
    new = state.replace(g_params=g_params, d_params=d_params, g_opt=g_opt, d_opt=d_opt, key=key)
    return new, info


@functools.partial(jax.jit, static_argnames=("cfg", "n"))
def sample(state: State, cfg: Config, key: jax.Array, n: int) -> jax.Array:
    """n generator images (n, 28, 28, 3) from fresh noise."""
    return _generate(state.g_params, cfg, key, n)


@functools.partial(jax.jit, static_argnames="cfg")
def _d_probs(state: State, data, cfg: Config, key: jax.Array) -> dict[str, jax.Array]:
    k_real, k_fake = jax.random.split(key)
    real = common.draw_batch(k_real, data, cfg.batch_size)
    return discriminator_loss(state.d_params, state.g_params, cfg, real, k_fake)[1]


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    k_bins, k_d = jax.random.split(key)
    metrics = common.evaluate_samples(sample, state, data, cfg, k_bins)
    metrics.update({name: float(v) for name, v in _d_probs(state, data, cfg, k_d).items()})
    return metrics


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    key = jaxtools.key(seed)
    k_bins, _ = jax.random.split(key)
    return common.sample_artifacts(sample, state, data, cfg, k_bins)
