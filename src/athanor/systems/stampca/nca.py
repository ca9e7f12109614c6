"""The neural cellular automaton that StampCA conditions ("StampCA: Growing Emoji with Conditional Neural Cellular
Automata"; the NCA itself follows "Growing Neural Cellular Automata", Mordvintsev et al. 2020).

A world is a grid x of cells, (batch, H, W, C) with C = 64 by default: channels 0-3 are RGBA with the colour
premultiplied by alpha, the rest are hidden state. One step, for every cell at once:

    perception   p = [x, sobel_x(x), sobel_y(x)]                     (..., 3C)  per channel, zero padding
                 sobel_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8 (correlation; x to the right, y down),
                 sobel_y = its transpose
    update       dx = W2 relu(W1 p + b1) + b2                         a per-cell MLP (a 1x1 convolution) with
                                                                      W2, b2 initialised to zero
    fire mask    x' = x + dx * m,  m ~ Bernoulli(fire_rate) per cell  (asynchronous, stochastic updates)
    alive mask   x'' = x' * [maxpool3x3(alpha(x)) > 0.1] * [maxpool3x3(alpha(x')) > 0.1]

so a cell is alive while it or a neighbour is visibly present, and a dead cell's state is exactly zero. ``grow``
iterates this with ``lax.scan``. Training (in the systems that use this module) backpropagates through the
whole rollout, with each parameter's gradient divided by its own L2 norm before Adam
(``normalized_gradients``), as the growing-NCA work does to keep the long recurrence trainable.

Light cone. Perception and the update see the 3x3 neighbourhood, so without the alive mask a cell after k steps
depends only on cells within Chebyshev distance k. The second (post-update) alive mask looks at the neighbours'
*updated* alpha, which itself saw their neighbours, so with the mask the bound is 2k (only through a boolean,
rarely active away from a growing front). tests/systems/stampca check both bounds by perturbation. Seeds
placed further apart than 2 x (steps) x 2 cells can never interact; the experiment measures how close they
can come in practice.

Perception is written with array slices, not ``lax.conv``: for these shapes (3x3 depthwise filters, many
channels) the slices are faster on CPU and the code states the stencil literally.

Deviations from the growing-NCA reference: none in the step. ``alive_threshold`` and ``fire_rate`` are
arguments (0.1 and 0.5 there). ``stamp`` (several seeds in one world) is StampCA's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

__all__ = ["UpdateRule", "perceive", "alive_mask", "nca_step", "grow", "stamp", "centred", "visible_mse", "render",
           "video", "normalized_gradients", "optimizer", "RGBA", "ALIVE_THRESHOLD"]

RGBA = 4  # visible channels: premultiplied RGB and alpha
ALIVE_THRESHOLD = 0.1  # growing-NCA reference


def _shifts(xp: jax.Array, h: int, w: int):
    """The nine 3x3-neighbourhood views of a 1-padded grid xp (b, h+2, w+2, c): view[dy][dx] has the value of
    the neighbour at offset (dy - 1, dx - 1) at every cell."""
    return [[xp[:, dy:dy + h, dx:dx + w, :] for dx in range(3)] for dy in range(3)]


def perceive(x: jax.Array) -> jax.Array:
    """[x, sobel_x(x), sobel_y(x)] per channel with zero padding: (b, h, w, c) -> (b, h, w, 3c)."""
    _, h, w, _ = x.shape
    v = _shifts(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), h, w)
    right = v[0][2] + 2.0 * v[1][2] + v[2][2]
    left = v[0][0] + 2.0 * v[1][0] + v[2][0]
    down = v[2][0] + 2.0 * v[2][1] + v[2][2]
    up = v[0][0] + 2.0 * v[0][1] + v[0][2]
    return jnp.concatenate([x, (right - left) / 8.0, (down - up) / 8.0], axis=-1)


def _maxpool3(a: jax.Array) -> jax.Array:
    """3x3 max over the neighbourhood, padding with -inf: (b, h, w, 1) -> (b, h, w, 1)."""
    _, h, w, _ = a.shape
    v = _shifts(jnp.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf), h, w)
    return jnp.max(jnp.stack([view for row in v for view in row]), axis=0)


def alive_mask(x: jax.Array, threshold: float = ALIVE_THRESHOLD) -> jax.Array:
    """(b, h, w, 1) bool: some cell in the 3x3 neighbourhood has alpha > threshold."""
    return _maxpool3(x[..., 3:4]) > threshold


class UpdateRule(nn.Module):
    """The per-cell update: perception (..., 3C) -> dx (..., C); the last layer starts at zero, so an untrained
    rule leaves every world unchanged."""

    channels: int
    hidden: int = 128

    @nn.compact
    def __call__(self, p: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(self.hidden)(p))
        return nn.Dense(self.channels, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros)(h)


def nca_step(rule: UpdateRule, params: Any, x: jax.Array, key: jax.Array, *, fire_rate: float = 0.5,
             alive_threshold: float | None = ALIVE_THRESHOLD) -> jax.Array:
    """One NCA step of the worlds x (b, h, w, C); ``alive_threshold=None`` switches the alive mask off."""
    p = perceive(x)  # (b, h, w, 3C)
    # the rule sees the cells as rows of one matrix: with 4-D input XLA's backward pass transposes the gradients
    # of both layers at every step before their weight products (measured: the whole update about 1.3x slower on CPU)
    dx = rule.apply({"params": params}, p.reshape(-1, p.shape[-1])).reshape(x.shape)  # (b, h, w, C)
    fire = jax.random.uniform(key, x.shape[:-1] + (1,)) < fire_rate  # (b, h, w, 1)
    new = x + dx * fire
    if alive_threshold is None:
        return new
    keep = alive_mask(x, alive_threshold) & alive_mask(new, alive_threshold)
    return new * keep


def grow(rule: UpdateRule, params: Any, x: jax.Array, key: jax.Array, steps: int, *, fire_rate: float = 0.5,
         alive_threshold: float | None = ALIVE_THRESHOLD, active: jax.Array | None = None,
         frames: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``steps`` NCA steps from x (b, h, w, C) in one ``lax.scan``.

    active: an int scalar <= steps (may be traced): only the first ``active`` steps change the world, the rest
        pass it through (``lax.cond``, so they cost nothing), which lets a jitted training step draw the rollout
        length per batch. Default: all ``steps``.
    frames: also return the visible channels after every step, (steps, b, h, w, 4).
    """
    keys = jax.random.split(key, steps)

    def body(state, inputs):
        t, k = inputs
        advance = lambda s: nca_step(rule, params, s, k, fire_rate=fire_rate,  # noqa: E731
                                     alive_threshold=alive_threshold)
        state = advance(state) if active is None else jax.lax.cond(t < active, advance, lambda s: s, state)
        return state, (state[..., :RGBA] if frames else None)

    x, seen = jax.lax.scan(body, x, (jnp.arange(steps), keys))
    return (x, seen) if frames else x


def stamp(seeds: jax.Array, positions, shape: tuple[int, int]) -> jax.Array:
    """A world (1, H, W, C) that is empty but for one seed cell per row of ``seeds`` (n, C) at the (row, col)
    ``positions`` (n, 2). Later seeds overwrite earlier ones at the same position."""
    seeds = jnp.asarray(seeds)
    pos = jnp.asarray(positions, dtype=jnp.int32).reshape(-1, 2)
    if pos.shape[0] != seeds.shape[0]:
        raise ValueError(f"stamp(): {seeds.shape[0]} seeds but {pos.shape[0]} positions")
    world = jnp.zeros((1, *shape, seeds.shape[-1]), seeds.dtype)
    return world.at[0, pos[:, 0], pos[:, 1]].set(seeds)


def centred(seed_cells: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """One empty world per seed cell (n, C), the seed in the centre cell (h // 2, w // 2): (n, h, w, C)."""
    world = jnp.zeros((seed_cells.shape[0], *shape, seed_cells.shape[-1]), seed_cells.dtype)
    return world.at[:, shape[0] // 2, shape[1] // 2].set(seed_cells)


def visible_mse(x: jax.Array, targets: jax.Array) -> jax.Array:
    """Per-world mean squared error of the visible channels of x (n, h, w, C) against RGBA targets: (n,)."""
    return jnp.mean(jnp.square(x[..., :RGBA] - targets), axis=(1, 2, 3))


def render(rgba: jax.Array, background: float = 1.0) -> jax.Array:
    """Premultiplied RGBA (..., 4) -> RGB in [0, 1] over a grey ``background`` (white by default)."""
    rgba = jnp.clip(rgba, 0.0, 1.0)
    return jnp.clip(rgba[..., :3] + background * (1.0 - rgba[..., 3:4]), 0.0, 1.0)


def video(frames: jax.Array, scale: int = 4) -> np.ndarray:
    """Visible frames (T, h, w, 4) -> a uint8 video (T, h * scale, w * scale, 3) over white."""
    rgb = np.asarray(render(frames))
    rgb = np.repeat(np.repeat(rgb, scale, axis=1), scale, axis=2)
    return np.round(rgb * 255).astype(np.uint8)


def normalized_gradients(eps: float = 1e-8) -> optax.GradientTransformation:
    """Each gradient leaf divided by its own L2 norm (+ eps): the growing-NCA gradient normalisation."""

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g: g / (jnp.linalg.norm(g) + eps), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def optimizer(lr: float, updates: int, decay_at: float) -> optax.GradientTransformation:
    """The growing-NCA optimiser: normalised gradients, then Adam at ``lr`` dropping to lr / 10 after the fraction
    ``decay_at`` of ``updates``."""
    boundary = max(1, int(decay_at * updates))
    return optax.chain(normalized_gradients(), optax.adam(optax.piecewise_constant_schedule(lr, {boundary: 0.1})))
