"""StampCA, the emoji autoencoder: one conditional NCA grows any emoji from a single seed cell
("StampCA: Growing Emoji with Conditional Neural Cellular Automata").

Method. An encoder E maps a target emoji y (32 x 32 premultiplied RGBA in [0, 1]) to a vector e = E(y) of
C - 4 numbers. The seed cell is s = [0, 0, 0, 1, e] (opaque, colourless, the code in the hidden channels); it is
placed in the centre of an empty 32 x 32 world, and the shared NCA (``nca.py``: Sobel perception, per-cell MLP,
stochastic updates, alive masking) runs N steps. The loss is the mean squared error over the visible channels,

    L = mean_{pixels, RGBA} (x_N[..., :4] - y)^2,      N ~ Uniform{grow_min, ..., grow_max} per batch,

backpropagated through the whole rollout into both the NCA and the encoder. Each parameter's gradient is divided
by its own norm, then Adam at 2e-3, dropping to 2e-4 after a quarter of training (the growing-NCA schedule).
Encoder: 3 stride-2 3x3 convolutions (32, 64, 128 channels, ReLU) -> Dense 256 ReLU -> Dense C - 4.

The post gives the world (32 x 32), the cells (64 channels, RGBA + hidden), the 3 x 3 neighbourhood, 32 steps,
the seed = encoding idea and the autoencoder loss; its notebooks were not published, so everything else comes
from the growing-NCA reference it builds on (``nca.py``) or is a choice stated here:
- N is drawn from [grow_min, grow_max] = [32, 48] instead of fixed at 32, as in the growing-NCA line of work,
  so that the design is held over a range of times rather than hit at one step.
- Scale: the post trained for about 4 hours on a GPU (its step count is not given). ``full`` here is 3,000
  updates of batch 8 (not yet timed whole; BENCHMARKS.md has one update's speed); RESULTS.md reports the
  quality that reaches.
- Sample pool (beyond the post; ``pool_size`` > 0): worlds persist across updates. Each update draws
  ``batch_size`` pool entries, replaces the ``pool_fresh`` of them with the highest loss by new seeds of random
  training emoji (only these carry gradient into the encoder), optionally cuts a random disc out of the
  ``damage`` lowest-loss ones, grows all, and writes the grown worlds back. The growing-NCA reference replaces one
  entry per batch; the conditional model replaces half, because only fresh seeds train the encoder.
- Devices (not in the source): ``devices`` = N > 1 splits each batch of worlds over N devices with the
  parameters and the pool replicated (``core.jaxtools``, as the generative models do); 1 is the single-device
  path, bit-identical to the model without the option.
- The data are the shipped Noto Color Emoji set (``athanor.data.emoji``: about 1,900 base emoji, 32 x 32),
  trained on its fixed 90% split; the held-out 10% measures generalisation to emoji never seen in training.

Evaluation grows every evaluated emoji for T = grow_max steps (the training horizon) and again to 2T, and
compares the per-emoji error with the best constant image (the per-pixel mean of the training emoji, the
constant that minimises the mean squared error over them).
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
from athanor.systems.stampca import nca, worlds

SIZE = 32  # the post's world and emoji size


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(3_000, lo=1)  # not stated (the post trained ~4 GPU-hours); sized for 2 CPU cores
    inner_steps: int = param(50, lo=1)  # updates fused per jitted call (speed only)
    batch_size: int = param(8, lo=1)  # growing-NCA: 8
    channels: int = param(64, lo=5)  # post: 64-length cell state, RGBA + 60 hidden
    hidden: int = param(128, lo=1)  # growing-NCA: 128 ReLU units in the update rule
    fire_rate: float = param(0.5, lo=0.0, hi=1.0)  # growing-NCA: stochastic update rate 0.5
    grow_min: int = param(32, lo=1)  # post: 32 steps; here the low end of the drawn range
    grow_max: int = param(48, lo=1)  # growing-NCA draws from a range too (64-96 for its larger images)
    lr: float = param(2e-3, lo=0.0, hi=1.0)  # growing-NCA: Adam 2e-3
    lr_decay_at: float = param(0.25, lo=0.0, hi=1.0)  # growing-NCA: x0.1 after 2,000 of 8,000 updates
    pool_size: int = param(256, lo=0)  # beyond the post (growing-NCA: 1,024); 0 = every world grows from a seed
    pool_fresh: int = param(4, lo=1)  # fresh seeds per batch when pooling (see the docstring)
    damage: int = param(0, lo=0)  # pooled worlds per batch that get a disc cut out (regeneration training)
    max_emoji: int = param(0, lo=0)  # 0 = the whole set; else n of each split, spread over the sort order
    eval_emoji: int = param(0, lo=0)  # 0 = every emoji of each split; else n of each, spread likewise
    eval_batch: int = param(64, lo=1)  # worlds grown at once when evaluating
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each batch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 4, "inner_steps": 2, "batch_size": 2, "channels": 8, "hidden": 16, "grow_min": 4,
             "grow_max": 6, "pool_size": 4, "pool_fresh": 1, "damage": 1, "max_emoji": 8, "eval_emoji": 4,
             "eval_batch": 4},
    "quick": {"steps": 500, "inner_steps": 50, "eval_every": 250, "eval_emoji": 128},
    "full": {"ckpt_every": 500},  # one evaluation, at the end: every emoji grown to T and 2T takes minutes
}


class State(struct.PyTreeNode):
    params: Any  # {"encoder": ..., "rule": ...}
    opt_state: Any
    pool_x: jax.Array  # (pool_size, 32, 32, C) persisted worlds
    pool_t: jax.Array  # (pool_size,) int32: index of each world's target emoji
    key: jax.Array


class Encoder(nn.Module):
    """Premultiplied RGBA (n, 32, 32, 4) -> codes (n, code_dim)."""

    code_dim: int

    @nn.compact
    def __call__(self, y):
        h = y
        for width in (32, 64, 128):
            h = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2))(h))  # 16, 8, 4 cells a side
        h = nn.relu(nn.Dense(256)(h.reshape(h.shape[0], -1)))
        return nn.Dense(self.code_dim)(h)


def _rule(cfg: Config) -> nca.UpdateRule:
    return nca.UpdateRule(cfg.channels, cfg.hidden)


def _check(cfg: Config) -> None:
    from athanor.core.errors import ConfigError

    if cfg.grow_min > cfg.grow_max:
        raise ConfigError(f"grow_min={cfg.grow_min} exceeds grow_max={cfg.grow_max}; set grow_min <= grow_max")
    if cfg.pool_size and cfg.pool_size < cfg.batch_size:
        raise ConfigError(f"pool_size={cfg.pool_size} is smaller than batch_size={cfg.batch_size}; "
                          "use pool_size=0 (no pool) or at least batch_size")
    if cfg.pool_size and cfg.pool_fresh + cfg.damage > cfg.batch_size:
        raise ConfigError(f"pool_fresh + damage = {cfg.pool_fresh + cfg.damage} exceeds batch_size="
                          f"{cfg.batch_size}; lower one of them")


def load_data(cfg: Config, seed: int) -> dict[str, Any]:
    """The emoji (premultiplied float RGBA) and the index sets of the fixed split; the data do not depend on seed."""
    from athanor.data.emoji import load_emoji

    _check(cfg)
    emoji = load_emoji()
    train, heldout = emoji.train_indices(), emoji.heldout_indices()
    if cfg.max_emoji:
        train, heldout = spread(train, cfg.max_emoji), spread(heldout, cfg.max_emoji)
    keep = np.concatenate([train, heldout])
    images = emoji.rgba_float()[keep]  # (n, 32, 32, 4)
    return {
        "images": jnp.asarray(images),
        "train": jnp.arange(len(train), dtype=jnp.int32),
        "heldout": jnp.arange(len(train), len(keep), dtype=jnp.int32),
        "emoji_index": jnp.asarray(keep, dtype=jnp.int32),  # row of each image in the shipped set (its names)
        "constant": jnp.asarray(images[: len(train)].mean(axis=0)),  # the best constant image on training emoji
    }


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return nca.optimizer(cfg.lr, cfg.steps, cfg.lr_decay_at)


def seeds(params, cfg: Config, targets: jax.Array) -> jax.Array:
    """Seed cells (n, C) = [0, 0, 0, 1, E(target)] for targets (n, 32, 32, 4)."""
    code = Encoder(cfg.channels - nca.RGBA).apply({"params": params["encoder"]}, targets)
    visible = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0]), (code.shape[0], nca.RGBA))
    return jnp.concatenate([visible, code], axis=-1)


def init(cfg: Config, seed: int, data) -> State:
    _check(cfg)
    mesh = _mesh(cfg)
    k_enc, k_rule, k_pool, k_state = jax.random.split(jaxtools.key(seed), 4)
    c = cfg.channels
    params = {
        "encoder": Encoder(c - nca.RGBA).init(k_enc, jnp.zeros((1, SIZE, SIZE, nca.RGBA)))["params"],
        "rule": _rule(cfg).init(k_rule, jnp.zeros((1, 1, 1, 3 * c)))["params"],
    }
    pool_t = jax.random.choice(k_pool, data["train"], (cfg.pool_size,))
    pool_x = nca.centred(seeds(params, cfg, data["images"][pool_t]), (SIZE, SIZE)) if cfg.pool_size else \
        jnp.zeros((0, SIZE, SIZE, c))
    return jaxtools.replicate(State(params=params, opt_state=_optimizer(cfg).init(params), pool_x=pool_x,
                                    pool_t=pool_t.astype(jnp.int32), key=k_state), mesh)


def damage_disc(x: jax.Array, key: jax.Array) -> jax.Array:
    """Zero a disc of radius 3-8 cells at a random place near the centre of each world (n, 32, 32, C)."""
    k_c, k_r = jax.random.split(key)
    centre = jax.random.uniform(k_c, (x.shape[0], 1, 1, 2), minval=SIZE * 0.25, maxval=SIZE * 0.75)
    radius = jax.random.uniform(k_r, (x.shape[0], 1, 1), minval=3.0, maxval=8.0)
    yy, xx = jnp.meshgrid(jnp.arange(SIZE), jnp.arange(SIZE), indexing="ij")
    dist2 = (yy - centre[..., 0]) ** 2 + (xx - centre[..., 1]) ** 2  # (n, 32, 32)
    return x * (dist2 > radius ** 2)[..., None]


def _draw_batch(state: State, data, cfg: Config, key: jax.Array):
    """(pool slots or None, start worlds without the fresh seeds, targets, fresh mask) for one update."""
    k_pick, k_fresh, k_damage = jax.random.split(key, 3)
    images = data["images"]
    if not cfg.pool_size:
        t = jax.random.choice(k_fresh, data["train"], (cfg.batch_size,))
        return None, jnp.zeros((cfg.batch_size, SIZE, SIZE, cfg.channels)), t, jnp.ones(cfg.batch_size, bool)
    slots = jax.random.choice(k_pick, cfg.pool_size, (cfg.batch_size,), replace=False)
    x, t = state.pool_x[slots], state.pool_t[slots]
    order = jnp.argsort(-nca.visible_mse(x, images[t]))  # worst first
    x, t, slots = x[order], t[order], slots[order]
    fresh = jnp.arange(cfg.batch_size) < cfg.pool_fresh
    t = jnp.where(fresh, jax.random.choice(k_fresh, data["train"], (cfg.batch_size,)), t)
    if cfg.damage:
        hurt = jnp.arange(cfg.batch_size) >= cfg.batch_size - cfg.damage  # the best ones
        x = jnp.where(hurt[:, None, None, None], damage_disc(x, k_damage), x)
    return slots, jnp.where(fresh[:, None, None, None], 0.0, x), t, fresh


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks that batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    tx, rule, mesh = _optimizer(cfg), _rule(cfg), _mesh(cfg)

    def update(carry, key):
        params, opt_state, pool_x, pool_t = carry
        k_batch, k_len, k_grow = jax.random.split(key, 3)
        slots, start, t, fresh = _draw_batch(state.replace(pool_x=pool_x, pool_t=pool_t), data, cfg, k_batch)
        start, targets, fresh = jaxtools.shard_batch((start, data["images"][t], fresh), mesh)
        n_steps = jax.random.randint(k_len, (), cfg.grow_min, cfg.grow_max + 1)

        def loss_fn(p):
            x0 = jnp.where(fresh[:, None, None, None], nca.centred(seeds(p, cfg, targets), (SIZE, SIZE)), start)
            x = nca.grow(rule, p["rule"], x0, k_grow, cfg.grow_max, fire_rate=cfg.fire_rate,
                         active=None if cfg.grow_min == cfg.grow_max else n_steps)
            per_world = nca.visible_mse(x, targets)
            return jnp.mean(per_world), x

        (loss, x), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        if slots is not None:
            pool_x, pool_t = pool_x.at[slots].set(jax.lax.stop_gradient(x)), pool_t.at[slots].set(t)
        info = {"loss": loss, "grow_steps": n_steps.astype(jnp.float32)}
        return jaxtools.replicate((optax.apply_updates(params, updates), opt_state, pool_x, pool_t), mesh), info

    k, sub = jax.random.split(state.key)
    carry = jaxtools.replicate((state.params, state.opt_state, state.pool_x, state.pool_t), mesh)
    (params, opt_state, pool_x, pool_t), infos = jax.lax.scan(update, carry, jax.random.split(sub, cfg.inner_steps))
    state = state.replace(params=params, opt_state=opt_state, pool_x=pool_x, pool_t=pool_t, key=k)
    return state, jax.tree_util.tree_map(jnp.mean, infos)


@functools.partial(jax.jit, static_argnames=("cfg", "steps", "frames"))
def grow_from(params, cfg: Config, targets: jax.Array, key: jax.Array, steps: int, frames: bool = False):
    """Grow each target (n, 32, 32, 4) from its own seed for ``steps`` steps (with the visible frames if asked)."""
    x0 = nca.centred(seeds(params, cfg, targets), (SIZE, SIZE))
    return nca.grow(_rule(cfg), params["rule"], x0, key, steps, fire_rate=cfg.fire_rate, frames=frames)


@functools.partial(jax.jit, static_argnames=("cfg", "steps"))
def _errors_at(params, cfg: Config, targets: jax.Array, key: jax.Array, steps: int):
    """Per-emoji error after ``steps`` and after 2 x ``steps`` (the same rollout continued): ((n,), (n,))."""
    k1, k2 = jax.random.split(key)
    x = grow_from(params, cfg, targets, k1, steps)
    x2 = nca.grow(_rule(cfg), params["rule"], x, k2, steps, fire_rate=cfg.fire_rate)
    return nca.visible_mse(x, targets), nca.visible_mse(x2, targets)


def spread(idx: jax.Array, n: int) -> jax.Array:
    """n indices evenly spaced through ``idx`` (all of them when n is 0 or too large), so that a subset covers
    every category of the sort order instead of the first few smileys."""
    if n == 0 or n >= len(idx):
        return idx
    return idx[np.unique(np.linspace(0, len(idx) - 1, n).round().astype(int))]


def per_emoji_errors(state: State, data, cfg: Config, idx: jax.Array, key: jax.Array) -> tuple[np.ndarray, ...]:
    """(error at T, error at 2T, constant-image error) per emoji of ``idx``, T = grow_max, in eval_batch chunks."""
    at_t, at_2t = [], []
    for i, start in enumerate(range(0, len(idx), cfg.eval_batch)):
        targets = data["images"][idx[start:start + cfg.eval_batch]]
        e1, e2 = _errors_at(state.params, cfg, targets, jax.random.fold_in(key, i), cfg.grow_max)
        at_t.append(np.asarray(e1))
        at_2t.append(np.asarray(e2))
    const = np.asarray(nca.visible_mse(jnp.broadcast_to(data["constant"], (len(idx), SIZE, SIZE, 4)),
                                       data["images"][idx]))
    return np.concatenate(at_t), np.concatenate(at_2t), const


def _split_errors(state: State, data, cfg: Config, seed: int) -> dict[str, tuple[np.ndarray, ...]]:
    """split -> (indices, error at T, error at 2T, constant error) over the evaluated emoji of each split."""
    key = jaxtools.key(seed)
    out = {}
    for i, split in enumerate(("train", "heldout")):
        idx = spread(data[split], cfg.eval_emoji)
        if len(idx):
            out[split] = (np.asarray(idx), *per_emoji_errors(state, data, cfg, idx, jax.random.fold_in(key, i)))
    return out


def _metrics(errors) -> dict[str, float]:
    out: dict[str, float] = {}
    for split, (_, err, err2, const) in errors.items():
        out[f"{split}_mse"] = float(err.mean())
        out[f"{split}_mse_2x"] = float(err2.mean())
        out[f"{split}_constant_mse"] = float(const.mean())
        if const.mean() > 0:  # zero only when a split holds one emoji, which is its own mean
            out[f"{split}_ratio"] = float(err.mean() / const.mean())
        out[f"{split}_below_constant"] = float(np.mean(err < const))
    return out


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    """Mean per-emoji error at T and 2T, against the best constant image, on the training and held-out emoji."""
    return _metrics(_split_errors(state, data, cfg, seed))


def _category_table(errors, data):
    from athanor.core.artifacts import Heatmap
    from athanor.data.emoji import load_emoji

    categories = np.asarray(load_emoji().categories)[np.asarray(data["emoji_index"])]
    cats = list(dict.fromkeys(categories))
    cols = [f"{split} {what}" for split in errors for what in ("MSE", "/ constant")]
    table = np.full((len(cats), len(cols)), np.nan)
    for j, (idx, err, _, const) in enumerate(errors.values()):
        names = categories[idx]
        for i, c in enumerate(cats):
            sel = names == c
            if sel.any():
                table[i, 2 * j], table[i, 2 * j + 1] = err[sel].mean(), err[sel].mean() / const[sel].mean()
    return Heatmap(table, cats, cols, title="per-category error of the grown emoji (T = grow_max)", fmt=".3f",
                   vmin=0.0)


def final(state: State, data, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The evaluation, the interference-vs-spacing measurement, and every figure and video."""
    errors = _split_errors(state, data, cfg, seed)
    metrics = _metrics(errors)
    key = jax.random.fold_in(jaxtools.key(seed), 7)
    grower = worlds.Grower(lambda t: seeds(state.params, cfg, t), _rule(cfg), state.params["rule"], cfg.fire_rate)
    nine = data["images"][np.resize(np.asarray(spread(data["train"], 9)), 9)]  # repeated if fewer (tiny runs)
    spacing = worlds.interference_curve(grower, nine, cfg.grow_max, key, size=SIZE)
    metrics.update(spacing.metrics())
    out = {**artifacts(state, data, cfg, seed), "interference": spacing.figure(),
           "category_errors": _category_table(errors, data)}
    out.update(_world_videos(grower, nine, cfg, key))
    out.update(_regeneration(state, data, cfg, key))
    return metrics, out


def _world_videos(grower: worlds.Grower, nine: jax.Array, cfg: Config, key: jax.Array) -> dict[str, np.ndarray]:
    """Growth videos of a 3 x 3 world at a safe spacing (40) and at a crowded one (16), and of seeds placed one
    design apart along a circle and along the outlines of the word "HI"."""
    from athanor.viz.figures import text_outlines

    out = {}
    for name, d in (("world", 40), ("world_too_close", 16)):
        pos, shape = worlds.grid_layout(3, 3, d, SIZE // 2)
        _, frames = grower.grow(grower.world(nine, pos, shape), key, 2 * cfg.grow_max, frames=True)
        out[name] = nca.video(frames[:, 0], scale=2)
    centre, radius = (3 * SIZE, 3 * SIZE), 2 * SIZE
    ring = worlds.path_layout(worlds.circle_points(centre, radius), spacing=2 * np.pi * radius / 12)[:12]
    paths = {"circle": (ring, (6 * SIZE, 6 * SIZE))}
    letters = [worlds.path_layout(line, spacing=SIZE) for line in text_outlines("HI", 6 * SIZE)]
    word = np.concatenate(letters) + SIZE // 2
    paths["word"] = (word, tuple(int(v) for v in word.max(axis=0) + SIZE // 2 + 1))
    for name, (pos, shape) in paths.items():
        codes = nine[np.arange(len(pos)) % len(nine)]
        _, frames = grower.grow(grower.world(codes, pos, shape), key, 2 * cfg.grow_max, frames=True)
        out[name] = nca.video(frames[:, 0], scale=2)
    return out


def _regeneration(state: State, data, cfg: Config, key: jax.Array) -> dict[str, np.ndarray]:
    """Grow four emoji for T steps, cut a disc out of each, and grow T more: a video and before / cut / after."""
    from athanor.viz.figures import image_grid

    targets = data["images"][spread(data["train"], 4)]
    k1, k2, k3 = jax.random.split(key, 3)
    x = grow_from(state.params, cfg, targets, k1, cfg.grow_max)
    cut = damage_disc(x, k2)
    healed, frames = nca.grow(_rule(cfg), state.params["rule"], cut, k3, cfg.grow_max, fire_rate=cfg.fire_rate,
                              frames=True)
    rows = jnp.stack([targets, x[..., :4], cut[..., :4], healed[..., :4]], axis=1).reshape(-1, SIZE, SIZE, 4)
    tiled = frames.transpose(0, 2, 1, 3, 4).reshape(frames.shape[0], SIZE, -1, nca.RGBA)  # (T, 32, 4 * 32, 4)
    return {"regeneration": image_grid(np.asarray(nca.render(rows)), nrow=4, scale=3),
            "regeneration_video": nca.video(tiled)}


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    """Target and grown emoji side by side (training and held-out) and one emoji's growth over 2T steps."""
    from athanor.viz.figures import image_grid

    key = jaxtools.key(seed)
    out: dict[str, Any] = {}
    for i, split in enumerate(("train", "heldout")):
        idx = spread(data[split], 16)
        if len(idx) == 0:
            continue
        targets = data["images"][idx]
        grown = grow_from(state.params, cfg, targets, jax.random.fold_in(key, i), cfg.grow_max)[..., : nca.RGBA]
        pairs = jnp.stack([targets, grown], axis=1).reshape(-1, SIZE, SIZE, nca.RGBA)  # target, grown, ...
        out[f"{split}_target_vs_grown"] = image_grid(np.asarray(nca.render(pairs)), nrow=8, scale=3)
    first = data["images"][data["train"][:1]]
    _, frames = grow_from(state.params, cfg, first, jax.random.fold_in(key, 2), 2 * cfg.grow_max, frames=True)
    out["growth"] = nca.video(frames[:, 0])
    return out
