"""StampCA on MNIST, the post's route: a feed-forward GAN first, then an NCA that grows the GAN's digit from the
same latent placed in its seed cell ("StampCA: Growing Emoji with Conditional Neural Cellular Automata").

The post found an NCA trained directly as a GAN generator too unstable (its early rollouts are noise, so the
generator and discriminator never balance) and used a two-stage "hack", reproduced here:

Stage 1, the generator (``gan_steps`` updates). G: z ~ N(0, I_latent) -> Dense 256 -> Dense 512 -> Dense 784
(leaky ReLU 0.2 between, sigmoid out) -> a 28 x 28 ink image; D: 784 -> 512 -> 256 -> 1 logit (leaky ReLU).
Non-saturating losses with s = sigmoid:
    L_D = E_x[-log s(D(x))] + E_z[-log(1 - s(D(G(z))))],   L_G = E_z[-log s(D(G(z)))]
one D and one G update per step, Adam 2e-4 (beta1 = 0.5), batches of 64 real and 64 generated digits.

Stage 2, the NCA (the remaining ``steps - gan_steps`` updates; G is frozen). The seed cell is
s = [0, 0, 0, 1, z, 0, ...]: opaque, with the latent itself in the first hidden channels (the post places "the
same latent" in the seed, so there is no learned encoder here). The NCA (``nca.py``) grows it in an empty
28 x 28 world for N ~ Uniform{grow_min..grow_max} steps; the target is G(z) drawn as black ink, i.e. the
premultiplied RGBA (0, 0, 0, G(z)), and the loss is the mean squared error over RGBA, with the same normalised
gradients and Adam schedule (2e-3 -> 2e-4 after a quarter of the stage) as the emoji model.

Scoring (beyond the post, which shows samples only). A small classifier (784 -> 256 ReLU -> 10, Adam 1e-3,
``classifier_steps`` batches of 128 from the shipped MNIST training set, the same fixed key for every run: about
97-98% test accuracy in a few seconds) reads the grown ink (alpha channel): ``nca_confidence`` is its mean top
probability on digits grown from fresh latents, ``nca_class_entropy`` the entropy (bits, at most log2 10 = 3.32)
of the predicted-class histogram, ``nca_agrees_with_gan`` how often it gives the NCA's digit the class it gives the
generator's digit for the same latent. The generator's and real test digits' scores are the references.

Choices the post leaves open: the network sizes, optimiser and step counts above (30,000 GAN updates, then 2,000
NCA updates of batch 8, sized for 2 CPU cores, not yet timed whole); dropout 0.3 in D, without which D wins within a few
hundred updates and the generator's digits stay speckled and collapse onto a few classes; ``latent_dim`` = 32 (it
must fit in the C - 4 hidden channels). N ~ Uniform{32..48}, as for the emoji.
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

SIDE = 28  # MNIST digits and the NCA world


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(32_000, lo=1)  # stage 1 + stage 2 updates (not stated in the post)
    gan_steps: int = param(30_000, lo=1)  # stage 1: generator updates (~32 epochs of batch 64)
    inner_steps: int = param(50, lo=1)  # updates fused per jitted call (speed only)
    latent_dim: int = param(32, lo=1)  # GAN latent, placed in the seed's hidden channels
    gan_batch: int = param(64, lo=1)  # stage 1 batch (real and generated)
    gan_lr: float = param(2e-4, lo=0.0, hi=1.0)  # stage 1 Adam, beta1 0.5 (DCGAN practice)
    d_dropout: float = param(0.3, lo=0.0, hi=0.9)  # dropout in D's hidden layers (common MLP-GAN practice)
    batch_size: int = param(8, lo=1)  # stage 2 batch (growing-NCA: 8)
    channels: int = param(64, lo=5)  # post: 64-channel cells
    hidden: int = param(128, lo=1)  # growing-NCA update rule width
    fire_rate: float = param(0.5, lo=0.0, hi=1.0)  # growing-NCA
    grow_min: int = param(32, lo=1)  # post: 32 steps; low end of the drawn range
    grow_max: int = param(48, lo=1)  # growing-NCA draws from a range too
    lr: float = param(2e-3, lo=0.0, hi=1.0)  # growing-NCA: Adam 2e-3
    lr_decay_at: float = param(0.25, lo=0.0, hi=1.0)  # x0.1 after this fraction of stage 2
    classifier_steps: int = param(2_000, lo=1)  # scoring classifier updates (batch 128)
    eval_samples: int = param(1_000, lo=1)  # digits grown from fresh latents for the scores
    eval_batch: int = param(100, lo=1)


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 6, "gan_steps": 2, "inner_steps": 2, "latent_dim": 3, "gan_batch": 8, "batch_size": 2,
             "channels": 8, "hidden": 16, "grow_min": 4, "grow_max": 6, "classifier_steps": 20,
             "eval_samples": 8, "eval_batch": 4},
    "quick": {"steps": 3_500, "gan_steps": 3_000, "eval_every": 500},
    "full": {"eval_every": 30_000, "ckpt_every": 500},  # an evaluation when the GAN is done, and at the end
}


class Generator(nn.Module):
    @nn.compact
    def __call__(self, z):
        h = nn.leaky_relu(nn.Dense(256)(z), 0.2)
        h = nn.leaky_relu(nn.Dense(512)(h), 0.2)
        return nn.sigmoid(nn.Dense(SIDE * SIDE)(h)).reshape(-1, SIDE, SIDE)  # (n, 28, 28) ink in (0, 1)


class Discriminator(nn.Module):
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, key=None):
        """Logits (n,) for images (n, 28, 28); with a ``key``, dropout after each hidden layer."""
        h = x.reshape(x.shape[0], -1)
        for i, width in enumerate((512, 256)):
            h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
            if key is not None and self.dropout > 0:
                keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - self.dropout, h.shape)
                h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
        return nn.Dense(1)(h)[:, 0]


class Classifier(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(256)(x.reshape(x.shape[0], -1))))  # (n, 10) logits


class State(struct.PyTreeNode):
    gen: Any
    disc: Any
    rule: Any
    gen_opt: Any
    disc_opt: Any
    rule_opt: Any
    updates: jax.Array  # int32: updates done, which decides the stage
    key: jax.Array


def _check(cfg: Config) -> None:
    from athanor.core.errors import ConfigError

    if cfg.gan_steps >= cfg.steps:
        raise ConfigError(f"gan_steps={cfg.gan_steps} leaves no NCA updates in steps={cfg.steps}; "
                          "set gan_steps < steps")
    if cfg.gan_steps % cfg.inner_steps:
        raise ConfigError(f"gan_steps={cfg.gan_steps} is not a multiple of inner_steps={cfg.inner_steps}, so a "
                          "jitted call would straddle the two stages; make it one")
    if cfg.latent_dim > cfg.channels - nca.RGBA:
        raise ConfigError(f"latent_dim={cfg.latent_dim} does not fit in the {cfg.channels - nca.RGBA} hidden "
                          f"channels of channels={cfg.channels}; lower latent_dim or raise channels")
    if cfg.grow_min > cfg.grow_max:
        raise ConfigError(f"grow_min={cfg.grow_min} exceeds grow_max={cfg.grow_max}; set grow_min <= grow_max")


@functools.lru_cache(maxsize=4)
def train_classifier(steps: int) -> tuple[Any, float]:
    """The scoring classifier's parameters and its MNIST test accuracy (same fixed key for every run)."""
    from athanor.data.mnist import load_mnist

    mnist = load_mnist()
    x = jnp.asarray(mnist["x_train"], jnp.float32) / 255.0
    y = jnp.asarray(mnist["y_train"], jnp.int32)
    model, tx = Classifier(), optax.adam(1e-3)
    k_init, k_data = jax.random.split(jax.random.PRNGKey(20210801))
    params = model.init(k_init, x[:1])["params"]

    def update(carry, k):
        p, o = carry
        i = jax.random.randint(k, (128,), 0, x.shape[0])
        loss_fn = lambda q: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
            model.apply({"params": q}, x[i]), y[i]).mean()
        u, o = tx.update(jax.grad(loss_fn)(p), o, p)
        return (optax.apply_updates(p, u), o), None

    (params, _), _ = jax.jit(lambda c, ks: jax.lax.scan(update, c, ks))((params, tx.init(params)),
                                                                        jax.random.split(k_data, steps))
    test = model.apply({"params": params}, jnp.asarray(mnist["x_test"], jnp.float32) / 255.0)
    return params, float(jnp.mean(jnp.argmax(test, -1) == jnp.asarray(mnist["y_test"])))


def load_data(cfg: Config, seed: int) -> dict[str, Any]:
    """MNIST training digits (uint8) and the scoring classifier; nothing here depends on ``seed``."""
    from athanor.data.mnist import load_mnist

    _check(cfg)
    classifier, accuracy = train_classifier(cfg.classifier_steps)
    mnist = load_mnist()
    return {"x": jnp.asarray(mnist["x_train"]), "x_test": jnp.asarray(mnist["x_test"][:cfg.eval_samples]),
            "classifier": classifier, "classifier_accuracy": jnp.float32(accuracy)}


def _gan_tx(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.gan_lr, b1=0.5)


def _rule_tx(cfg: Config) -> optax.GradientTransformation:
    return nca.optimizer(cfg.lr, cfg.steps - cfg.gan_steps, cfg.lr_decay_at)


def _rule(cfg: Config) -> nca.UpdateRule:
    return nca.UpdateRule(cfg.channels, cfg.hidden)


def init(cfg: Config, seed: int, data) -> State:
    _check(cfg)
    k_g, k_d, k_r, k_state = jax.random.split(jaxtools.key(seed), 4)
    gen = Generator().init(k_g, jnp.zeros((1, cfg.latent_dim)))["params"]
    disc = Discriminator().init(k_d, jnp.zeros((1, SIDE, SIDE)))["params"]
    rule = _rule(cfg).init(k_r, jnp.zeros((1, 1, 1, 3 * cfg.channels)))["params"]
    return State(gen=gen, disc=disc, rule=rule, gen_opt=_gan_tx(cfg).init(gen), disc_opt=_gan_tx(cfg).init(disc),
                 rule_opt=_rule_tx(cfg).init(rule), updates=jnp.zeros((), jnp.int32), key=k_state)


def generate(gen_params, z: jax.Array) -> jax.Array:
    """The generator's ink images (n, 28, 28) for latents z (n, latent)."""
    return Generator().apply({"params": gen_params}, z)


def seeds(cfg: Config, z: jax.Array) -> jax.Array:
    """Seed cells (n, C) = [0, 0, 0, 1, z, 0, ...]."""
    n = z.shape[0]
    pad = jnp.zeros((n, cfg.channels - nca.RGBA - cfg.latent_dim))
    return jnp.concatenate([jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0]), (n, nca.RGBA)), z, pad], axis=-1)


def ink_to_rgba(ink: jax.Array) -> jax.Array:
    """Ink (n, 28, 28) -> premultiplied black-ink RGBA (n, 28, 28, 4) = (0, 0, 0, ink)."""
    return jnp.concatenate([jnp.zeros(ink.shape + (3,)), ink[..., None]], axis=-1)


def _bce(logits: jax.Array, label: float) -> jax.Array:
    return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)).mean()


@functools.partial(jax.jit, static_argnames="cfg")
def _gan_step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    tx, disc = _gan_tx(cfg), Discriminator(cfg.d_dropout)

    def update(carry, key):
        gen, dis, g_opt, d_opt = carry
        k_real, k_z1, k_z2, k_drop1, k_drop2 = jax.random.split(key, 5)
        real = data["x"][jax.random.randint(k_real, (cfg.gan_batch,), 0, data["x"].shape[0])] / 255.0
        fake = generate(gen, jax.random.normal(k_z1, (cfg.gan_batch, cfg.latent_dim)))

        def d_loss(p):
            both = disc.apply({"params": p}, jnp.concatenate([real, fake]), k_drop1)
            return _bce(both[: cfg.gan_batch], 1.0) + _bce(both[cfg.gan_batch:], 0.0)

        ld, gd = jax.value_and_grad(d_loss)(dis)
        u, d_opt = tx.update(gd, d_opt, dis)
        dis = optax.apply_updates(dis, u)

        def g_loss(p):
            fake = generate(p, jax.random.normal(k_z2, (cfg.gan_batch, cfg.latent_dim)))
            return _bce(disc.apply({"params": dis}, fake, k_drop2), 1.0)

        lg, gg = jax.value_and_grad(g_loss)(gen)
        u, g_opt = tx.update(gg, g_opt, gen)
        return (optax.apply_updates(gen, u), dis, g_opt, d_opt), {"loss": lg, "d_loss": ld}

    k, sub = jax.random.split(state.key)
    carry = (state.gen, state.disc, state.gen_opt, state.disc_opt)
    (gen, dis, g_opt, d_opt), infos = jax.lax.scan(update, carry, jax.random.split(sub, cfg.inner_steps))
    state = state.replace(gen=gen, disc=dis, gen_opt=g_opt, disc_opt=d_opt, updates=state.updates + cfg.inner_steps,
                          key=k)
    return state, jax.tree_util.tree_map(jnp.mean, infos)


@functools.partial(jax.jit, static_argnames="cfg")
def _nca_step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    tx, rule = _rule_tx(cfg), _rule(cfg)

    def update(carry, key):
        params, opt = carry
        k_z, k_len, k_grow = jax.random.split(key, 3)
        z = jax.random.normal(k_z, (cfg.batch_size, cfg.latent_dim))
        targets = ink_to_rgba(generate(state.gen, z))
        n_steps = jax.random.randint(k_len, (), cfg.grow_min, cfg.grow_max + 1)

        def loss_fn(p):
            x = nca.grow(rule, p, nca.centred(seeds(cfg, z), (SIDE, SIDE)), k_grow, cfg.grow_max,
                         fire_rate=cfg.fire_rate,
                         active=None if cfg.grow_min == cfg.grow_max else n_steps)
            return jnp.mean(nca.visible_mse(x, targets))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        u, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, u), opt), {"loss": loss, "grow_steps": n_steps.astype(jnp.float32)}

    k, sub = jax.random.split(state.key)
    keys = jax.random.split(sub, cfg.inner_steps)
    (rule_params, opt), infos = jax.lax.scan(update, (state.rule, state.rule_opt), keys)
    state = state.replace(rule=rule_params, rule_opt=opt, updates=state.updates + cfg.inner_steps, key=k)
    return state, jax.tree_util.tree_map(jnp.mean, infos)


def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    """A stage-1 (GAN) or stage-2 (NCA) call, by the number of updates already done."""
    if int(state.updates) < cfg.gan_steps:
        return _gan_step(state, data, cfg)
    return _nca_step(state, data, cfg)


@functools.partial(jax.jit, static_argnames=("cfg", "steps", "frames"))
def grow_digits(rule_params, cfg: Config, z: jax.Array, key: jax.Array, steps: int, frames: bool = False):
    """Grow the digits of latents z (n, latent) for ``steps`` steps: worlds (n, 28, 28, C) (and visible frames)."""
    return nca.grow(_rule(cfg), rule_params, nca.centred(seeds(cfg, z), (SIDE, SIDE)), key, steps,
                    fire_rate=cfg.fire_rate, frames=frames)


@jax.jit
def _class_probs(classifier, ink: jax.Array) -> jax.Array:
    return jax.nn.softmax(Classifier().apply({"params": classifier}, jnp.clip(ink, 0.0, 1.0)))


def _scores(probs: np.ndarray, prefix: str) -> dict[str, float]:
    counts = np.bincount(probs.argmax(-1), minlength=10) / len(probs)
    nz = counts[counts > 0]
    return {f"{prefix}_confidence": float(probs.max(-1).mean()),
            f"{prefix}_class_entropy": float(-(nz * np.log2(nz)).sum()) + 0.0}  # + 0.0: no "-0.0"


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    key = jaxtools.key(seed)
    k_z, k_grow = jax.random.split(key)
    z_all = jax.random.normal(k_z, (cfg.eval_samples, cfg.latent_dim))
    gen_p, nca_p, mse, mse2 = [], [], [], []
    for i, start in enumerate(range(0, cfg.eval_samples, cfg.eval_batch)):
        z = z_all[start:start + cfg.eval_batch]
        ink = generate(state.gen, z)
        k1, k2 = jax.random.split(jax.random.fold_in(k_grow, i))
        x = grow_digits(state.rule, cfg, z, k1, cfg.grow_max)
        x2 = nca.grow(_rule(cfg), state.rule, x, k2, cfg.grow_max, fire_rate=cfg.fire_rate)
        mse.append(np.asarray(nca.visible_mse(x, ink_to_rgba(ink))))
        mse2.append(np.asarray(nca.visible_mse(x2, ink_to_rgba(ink))))
        gen_p.append(np.asarray(_class_probs(data["classifier"], ink)))
        nca_p.append(np.asarray(_class_probs(data["classifier"], x[..., 3])))
    gen_p, nca_p = np.concatenate(gen_p), np.concatenate(nca_p)
    real_p = np.asarray(_class_probs(data["classifier"], data["x_test"] / 255.0))
    return {"nca_mse": float(np.concatenate(mse).mean()), "nca_mse_2x": float(np.concatenate(mse2).mean()),
            **_scores(nca_p, "nca"), **_scores(gen_p, "gan"), **_scores(real_p, "real"),
            "nca_agrees_with_gan": float(np.mean(nca_p.argmax(-1) == gen_p.argmax(-1))),
            "classifier_accuracy": float(data["classifier_accuracy"])}


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    from athanor.viz.figures import image_grid

    key = jax.random.fold_in(jaxtools.key(seed), 3)
    z = jax.random.normal(key, (32, cfg.latent_dim))
    x, frames = grow_digits(state.rule, cfg, z, key, 2 * cfg.grow_max, frames=True)
    ink = ink_to_rgba(generate(state.gen, z))
    pairs = jnp.stack([ink, x[..., : nca.RGBA]], axis=1).reshape(-1, SIDE, SIDE, nca.RGBA)  # generator, grown
    n_show = min(8, z.shape[0])
    tiled = frames[:, :n_show].transpose(0, 2, 1, 3, 4).reshape(frames.shape[0], SIDE, n_show * SIDE, nca.RGBA)
    grower = worlds.Grower(lambda codes: seeds(cfg, codes), _rule(cfg), state.rule, cfg.fire_rate)
    pos, shape = worlds.grid_layout(4, 4, SIDE + 4, SIDE // 2)
    _, world_frames = grower.grow(grower.world(z[:16], pos, shape), key, 2 * cfg.grow_max, frames=True)
    return {"generator_vs_grown": image_grid(np.asarray(nca.render(pairs)), nrow=8, scale=3),
            "growth": nca.video(tiled), "world": nca.video(world_frames[:, 0], scale=2)}
