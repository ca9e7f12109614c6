"""Autoregressive pixel sampler over 512 colour bins from a 64-pixel context ("A Brief Examination of
Generative Models", section "Auto-Regressive").

Tokens. Each channel value v in [0, 1] is quantised to 8 levels, q = clip(floor(8 v), 0, 7), and a pixel's
token is bin = r + 8 g + 64 b in 0..511. Images are flattened in raster order, position p = 28 row + col.

Context. The model predicts pixel t from the previous C = 64 pixels (positions t-64 .. t-1), each described
by 8 features (original ``process_data_bins``):

    [r_dec, g_dec, b_dec, row / 27, col / 27, 1 - row / 27, 1 - col / 27, col == 27]

where *_dec is the decoded bin value and the last flag marks the right edge, which tells the model a row is
about to wrap. The original names row / 27 "x" and col / 27 "y" (meshgrid with ij indexing). 64 x 8 = 512
inputs.

Model and loss. A tanh MLP 512 -> 64 -> 64 -> 64 -> 512 logits (original ``GeneratorRNNFlat``) gives
p(bin_t | context). Default loss: softmax cross-entropy, -log softmax(logits)[bin_t], as the post describes
("a probability distribution over these 512 bins") and as the original samples (categorical over the logits).
The original code trained with sigmoid binary cross-entropy against the one-hot bin, averaged over the 512
outputs; ``loss="sigmoid"`` reproduces that. Training draws one position per image, t ~ U{C .. 783}, from a
fresh batch of 64 images; Adam 3e-4, 100,000 steps (``alg_rnn_flat``). The original's upper bound excluded the
last pixel (t <= 782; the corner is always background), here every pixel after the hint is a target.

Sampling. The first C = 64 pixels of every sample are copied from a real image (the original's "hint"; these
are the top 2.3 rows, which are background for all six templates, so they carry no digit or colour). Pixels
t = 64 .. 783 are then drawn one at a time in raster order, batched over samples inside one ``lax.scan`` of
720 steps: logits -> softmax -> inverse-CDF draw with one uniform per sample (a categorical draw like the
original's, but 512x fewer random numbers than Gumbel-max). Positions before the image start never occur
(t >= C); ``context_features`` pads them with zero vectors for completeness.

Decoding (``bin_decode``). "centre" (default) maps level q >= 1 to its bin centre (q + 0.5) / 8 and level 0
to 0: level 0 holds the black background (96% of its values are exactly 0, mean 0.002), while the other
levels' empirical means lie within 0.01 of their centres. "lower" is the original's q / 8 (biased down by
1/16). The same decoding gives the context features and the output image.

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
from flax import linen as nn
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.systems.generative import common

LEVELS = 8  # per-channel quantisation levels (post: "8 possible options")
N_BINS = LEVELS**3  # 512 logits
N_FEATURES = 8  # per context pixel
SIDE = 28
N_PIXELS = SIDE * SIDE


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(100_000, lo=1)  # alg_rnn_flat: range(100*1000)
    inner_steps: int = param(1000, lo=1)  # updates fused per jitted call (speed only)
    batch_size: int = param(64, lo=1)  # alg_rnn_flat: batch_size = 64 (one position per image)
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # alg_rnn_flat: create_train_state(model, rng, 3e-4)
    context: int = param(64, lo=1, hi=N_PIXELS - 1)  # TIME_HORIZON = HINT_SIZE = 64
    hidden: int = param(64, lo=1)  # GeneratorRNNFlat: Dense(64) x 3
    loss: str = param("softmax", choices=("softmax", "sigmoid"))  # post: softmax; code: sigmoid BCE
    bin_decode: str = param("centre", choices=("centre", "lower"))  # level -> value; original: q / 8
    eval_samples: int = param(12_800, lo=1)  # post: 100 batches x 128 scored samples
    eval_batch: int = param(1280, lo=1)  # samples per sampling chunk (bounded memory)
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each batch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_samples": 256, "eval_batch": 256},
    "quick": {"steps": 20_000, "inner_steps": 1000, "eval_samples": 2560},
    "full": {},
}


class State(struct.PyTreeNode):
    params: Any
    opt_state: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it


class PixelMLP(nn.Module):
    """context features (n, C * 8) -> logits over the 512 bins of the next pixel (n, 512)."""

    hidden: int = 64

    @nn.compact
    def __call__(self, x):
        for _ in range(3):
            x = jnp.tanh(nn.Dense(self.hidden)(x))
        return nn.Dense(N_BINS)(x)


load_data = common.load_data


def to_bins(images: jax.Array) -> jax.Array:
    """(n, 28, 28, 3) in [0, 1] -> raster-order tokens (n, 784) int32, bin = r + 8 g + 64 b."""
    q = jnp.clip(jnp.floor(images * LEVELS), 0, LEVELS - 1).astype(jnp.int32)
    q = q.reshape(images.shape[0], N_PIXELS, 3)
    return q[..., 0] + LEVELS * q[..., 1] + LEVELS**2 * q[..., 2]


def decode_bins(bins: jax.Array, mode: str = "centre") -> jax.Array:
    """tokens (...) -> RGB values (..., 3) in [0, 1] (see ``bin_decode`` in the module docstring)."""
    q = jnp.stack([bins % LEVELS, (bins // LEVELS) % LEVELS, bins // LEVELS**2], axis=-1).astype(jnp.float32)
    if mode == "lower":
        return q / LEVELS
    return jnp.where(q > 0, (q + 0.5) / LEVELS, 0.0)


def _position_table() -> np.ndarray:
    """(784, 5) [row/27, col/27, 1-row/27, 1-col/27, right-edge flag] per raster position."""
    row, col = np.divmod(np.arange(N_PIXELS), SIDE)
    x, y = row / (SIDE - 1), col / (SIDE - 1)
    return np.stack([x, y, 1.0 - x, 1.0 - y, (col == SIDE - 1).astype(float)], axis=1).astype(np.float32)


def context_features(bins: jax.Array, t: jax.Array, context: int = 64, decode: str = "centre") -> jax.Array:
    """Features of pixels t-C .. t-1 of one image's tokens (784,): flat (C * 8,), oldest pixel first."""
    pos = t - context + jnp.arange(context)  # (C,)
    valid = (pos >= 0)[:, None]
    safe = jnp.clip(pos, 0, N_PIXELS - 1)
    colour = decode_bins(bins[safe], decode)  # (C, 3)
    feats = jnp.concatenate([colour, jnp.asarray(_position_table())[safe]], axis=-1)  # (C, 8)
    return jnp.where(valid, feats, 0.0).reshape(-1)


def logits_at(params, cfg: Config, bins: jax.Array, t: jax.Array) -> jax.Array:
    """Logits (n, 512) for pixel t (scalar or (n,)) of token images bins (n, 784)."""
    # A shared scalar t keeps the position features unbatched (one table lookup for the whole batch).
    t_axis = 0 if jnp.ndim(t) else None
    ctx = jax.vmap(context_features, in_axes=(0, t_axis, None, None))(bins, t, cfg.context, cfg.bin_decode)
    return PixelMLP(cfg.hidden).apply({"params": params}, ctx)


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


def init(cfg: Config, seed: int, data) -> State:
    return jaxtools.replicate(_init(cfg, jaxtools.key(seed), data), _mesh(cfg))


@functools.partial(jax.jit, static_argnames="cfg")  # one compile instead of dozens of eager ops
def _init(cfg: Config, key: jax.Array, data) -> State:
    k_net, k_state = jax.random.split(key)
    params = PixelMLP(cfg.hidden).init(k_net, jnp.zeros((1, cfg.context * N_FEATURES)))["params"]
    return State(params=params, opt_state=_optimizer(cfg).init(params), key=k_state)


def loss_fn(params, cfg: Config, bins: jax.Array, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Next-pixel loss at one random position t ~ U{C .. 783} per image; bins (n, 784)."""
    t = jax.random.randint(key, bins.shape[:1], cfg.context, N_PIXELS)
    logits = logits_at(params, cfg, bins, t)  # (n, 512)
    target = jnp.take_along_axis(bins, t[:, None], axis=1)[:, 0]  # (n,)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, target)
    if cfg.loss == "sigmoid":
        loss = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jax.nn.one_hot(target, N_BINS)))
    else:
        loss = jnp.mean(nll)
    return loss, {"nll": jnp.mean(nll), "accuracy": jnp.mean(jnp.argmax(logits, -1) == target)}


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    mesh = _mesh(cfg)

    def batch_loss(params, k):
        k_data, k_pos = jax.random.split(k)
        images = jaxtools.shard_batch(common.draw_batch(k_data, data, cfg.batch_size), mesh)
        return loss_fn(params, cfg, to_bins(images), k_pos)

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, mesh)


def categorical_icdf(logits: jax.Array, u: jax.Array, group: int = LEVELS**2) -> jax.Array:
    """Draw from softmax(logits) (n, K) by inverting its CDF at uniforms u (n,) in [0, 1): int32 (n,).

    Two-level search, exact up to rounding: find the group of ``group`` consecutive bins whose cumulative mass
    first exceeds u * total, then the bin inside it. This avoids a 512-long cumulative sum per sample, which
    dominated the sampler's time on CPU.
    """
    n, k = logits.shape
    p = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True)).reshape(n, k // group, group)
    group_cdf = jnp.cumsum(jnp.sum(p, axis=-1), axis=-1)  # (n, K / group)
    target = u * group_cdf[:, -1]  # (n,)
    g = jnp.minimum(jnp.sum(group_cdf < target[:, None], axis=-1), k // group - 1)  # (n,)
    below = jnp.where(g > 0, jnp.take_along_axis(group_cdf, jnp.maximum(g - 1, 0)[:, None], 1)[:, 0], 0.0)
    row_cdf = jnp.cumsum(jnp.take_along_axis(p, g[:, None, None], 1)[:, 0], axis=-1)  # (n, group)
    j = jnp.minimum(jnp.sum(row_cdf < (target - below)[:, None], axis=-1), group - 1)
    return (group * g + j).astype(jnp.int32)


def sample_bins(params, cfg: Config, hint: jax.Array, key: jax.Array) -> jax.Array:
    """Complete token images hint (n, 784), whose first C tokens are kept, pixel by pixel in raster order."""

    def body(bins, inputs):
        t, k = inputs
        u = jax.random.uniform(k, bins.shape[:1])
        new = categorical_icdf(logits_at(params, cfg, bins, t), u)  # (n,)
        return jax.lax.dynamic_update_slice(bins, new[:, None], (0, t)), None

    ts = jnp.arange(cfg.context, N_PIXELS)
    bins, _ = jax.lax.scan(body, hint, (ts, jax.random.split(key, ts.shape[0])))
    return bins


@functools.partial(jax.jit, static_argnames=("cfg", "n"))
def _sample(state: State, cfg: Config, key: jax.Array, n: int, templates: jax.Array) -> jax.Array:
    k_hint, k_draw = jax.random.split(key)
    hint = to_bins(common.draw_batch(k_hint, {"templates": templates}, n))
    bins = sample_bins(state.params, cfg, hint, k_draw)
    return decode_bins(bins, cfg.bin_decode).reshape(n, SIDE, SIDE, 3)


def sample(state: State, cfg: Config, key: jax.Array, n: int, data=None) -> jax.Array:
    """n samples (n, 28, 28, 3) in [0, 1], each seeded with the first C pixels of a real image.

    The hint images come from ``data`` (``load_data``'s templates), loaded here when not given.
    """
    data = common.load_data(cfg, 0) if data is None else data  # the templates do not depend on a seed
    return _sample(state, cfg, key, n, data["templates"])


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    return common.evaluate_samples(functools.partial(sample, data=data), state, data, cfg, key)


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    key = jaxtools.key(seed)
    return common.sample_artifacts(functools.partial(sample, data=data), state, data, cfg, key)
