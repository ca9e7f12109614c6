"""Deep variational information bottleneck on permutation-invariant MNIST, its deterministic baseline, and the VAE
as the Y = X case of the same code ("Variational Information Bottleneck Explained"; Alemi, Fischer, Dillon &
Murphy, "Deep Variational Information Bottleneck", 2016).

Model (``mode="vib"``). A stochastic encoder p(z|x) = N(mu(x), diag sigma(x)^2): an MLP 784-1024-1024-2K with
ReLU on the input scaled to [-1, 1] (2x - 1), mu the first K outputs and sigma = softplus(rho - 5) from the last K
(K = 256). A decoder q(y|z): one linear layer K -> 10 and a softmax. The prior r(z) = N(0, I). Per example

    L = -log2 q(y | z)  +  beta * KL(p(z|x) || r(z)) / ln 2,      z = mu + sigma * eps,  eps ~ N(0, I)
    KL(N(mu, sigma^2) || N(0, I)) = sum_k 0.5 * (mu_k^2 + sigma_k^2 - 1) - log sigma_k

averaged over the batch, both terms in bits as in the reference, beta = 1e-3. Prediction averages the softmax
over S = 12 draws of z: p(y|x) ~ (1/S) sum_s q(y | z_s). Evaluation uses an exponential moving average of the
weights (decay 0.999). Adam, learning rate 1e-4 with beta1 = 0.5, multiplied by 0.97 every 2 epochs (staircase),
batch 100; the reference trains 200 epochs (120,000 updates; see PRESETS for ours).

The two information terms, estimated on held-out data at every evaluation (in bits):
- rate R = E_x KL(p(z|x) || r(z)), the variational upper bound on I(Z;X) (it replaces the marginal p(z) by r(z));
- I(Z;Y) >= H(Y) - E_{x,y} E_{z~p(z|x)} [-log2 q(y|z)], the variational lower bound (H(Y) is the entropy of the
  split's label frequencies, 3.32 bits for MNIST); ``ce_bits`` is the expectation, one draw of z per example.

``mode="deterministic"``: the baseline with the same encoder layers and no bottleneck: z = mu(x) (the encoder
outputs K values), no noise, no KL, beta ignored; everything else as above.

``mode="vae"``: Y = X through the same loss code. The decoder q(x|z) has ``decoder_hidden`` ReLU units (0 = one
linear layer, the reference's label decoder) and gives one Bernoulli per pixel, scored against the grey level in
[0, 1] (the usual cross-entropy for MNIST intensities); with beta = 1 the loss is the negative ELBO in bits per
image, distortion D = E[-log2 q(x|z)] plus rate R, exactly the post's remark that the VAE is the information
bottleneck with Y = X and beta = 1.

Attacks (``final`` only; ``mode`` vib and deterministic), on the first ``adv_examples`` test images, pixels kept in
[0, 1] and every perturbation within an L-inf ball of radius eps:
- FGSM: x' = clip(x + eps * sign(grad_x loss), 0, 1);
- PGD (the iterative attack): ``pgd_steps`` signed-gradient steps of eps / 4 from x (no random start), each
  projected back into the eps-ball and [0, 1].
The loss is the cross-entropy of the averaged prediction over the same S draws of eps held fixed while attacking
(the gradient of the classifier as it is evaluated, an expectation over its randomness); the attacked images are
then classified with fresh draws, as a deployed model would be.

Deviations from the reference. Batches are drawn uniformly with replacement instead of shuffled passes (an
"epoch" is 60,000 / 100 = 600 updates, and the schedule counts in those). The weights start from Glorot-uniform
kernels and zero biases (the reference's TensorFlow defaults), not Flax's LeCun-normal. The reference clips rho in
one version of its demo; we do not. Fewer epochs at ``full`` scale (see PRESETS).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from athanor.core import jaxtools
from athanor.core.artifacts import Heatmap
from athanor.core.config import ConfigError, TrainConfig, param

LN2 = math.log(2.0)
PIXELS, CLASSES, EPOCH = 784, 10, 600  # 60,000 training images in batches of 100


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(120_000, lo=1)  # reference: 200 epochs of 600 batches of 100
    inner_steps: int = param(600, lo=1)  # updates fused per jitted call: one epoch (speed only)
    eval_every: int = param(600, lo=0)  # every epoch: the information estimates per epoch
    mode: str = param("vib", choices=("vib", "deterministic", "vae"))  # VIB, its baseline, or Y = X (the VAE)
    beta: float = param(1e-3, lo=0.0)  # reference: BETA = 1e-3
    latent_dim: int = param(256, lo=1)  # reference: K = 256 (K = 2 for the latent-space figures)
    hidden: int = param(1024, lo=1)  # reference encoder: 784-1024-1024-2K
    decoder_hidden: int = param(0, lo=0)  # 0: one linear layer (reference); > 0: a ReLU layer first
    batch_size: int = param(100, lo=1)  # reference: batch 100
    lr: float = param(1e-4, lo=0.0, hi=1.0)  # reference: Adam 1e-4
    adam_b1: float = param(0.5, lo=0.0, hi=1.0)  # reference: beta1 = 0.5
    lr_decay: float = param(0.97, lo=0.0, hi=1.0)  # reference: x0.97 ...
    decay_every: int = param(1200, lo=1)  # ... every 2 epochs of 600 updates
    ema: float = param(0.999, lo=0.0, hi=1.0)  # reference: weight EMA 0.999, used to evaluate
    predict_samples: int = param(12, lo=1)  # reference: softmax averaged over 12 draws of z
    eval_examples: int = param(10_000, lo=1, hi=10_000)  # test (and train) images per evaluation
    adv_examples: int = param(1000, lo=0, hi=10_000)  # test images attacked at the end (0: no attacks)
    adv_eps: str = param("0.1,0.2,0.3")  # L-inf radii on [0, 1] pixels, comma-separated
    pgd_steps: int = param(10, lo=1)  # iterative attack: steps of eps / 4


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 4, "inner_steps": 2, "eval_every": 2, "hidden": 32, "latent_dim": 4, "batch_size": 32,
             "eval_examples": 256, "adv_examples": 32, "pgd_steps": 2, "predict_samples": 2},
    "quick": {"steps": 1800, "eval_every": 600},  # 3 epochs
    "full": {"steps": 6000, "eval_every": 600, "ckpt_every": 3000},  # 10 epochs (the reference: 200)
}


class State(struct.PyTreeNode):
    params: Any  # {"encoder": ..., "decoder": ...}
    ema: Any  # exponential moving average of params (evaluation weights)
    opt_state: Any
    key: jax.Array


def epsilons(cfg: Config) -> tuple[float, ...]:
    """The attack radii of ``adv_eps`` as floats; a ConfigError names a malformed entry."""
    out = []
    for part in cfg.adv_eps.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"config key 'adv_eps' = {cfg.adv_eps!r}: '{part.strip()}' is not a number; "
                              "give radii on [0, 1] pixels separated by commas, e.g. --set adv_eps=0.1,0.2") from None
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"config key 'adv_eps': each radius must be in (0, 1], got {value}")
        out.append(value)
    return tuple(out)


def _dense(n: int) -> nn.Dense:
    return nn.Dense(n, kernel_init=nn.initializers.xavier_uniform())


class Encoder(nn.Module):
    """x (n, 784) in [0, 1] -> (mu, sigma) (n, K) each; sigma is None for the deterministic baseline."""

    hidden: int
    latent_dim: int
    stochastic: bool

    @nn.compact
    def __call__(self, x):
        h = nn.relu(_dense(self.hidden)(2.0 * x - 1.0))
        h = nn.relu(_dense(self.hidden)(h))
        if not self.stochastic:
            return _dense(self.latent_dim)(h), None
        out = _dense(2 * self.latent_dim)(h)
        return out[:, : self.latent_dim], jax.nn.softplus(out[:, self.latent_dim:] - 5.0)


class Decoder(nn.Module):
    """z (..., K) -> logits (..., out): q(y|z) over the classes, or one Bernoulli per pixel (mode vae)."""

    hidden: int
    out: int

    @nn.compact
    def __call__(self, z):
        if self.hidden:
            z = nn.relu(_dense(self.hidden)(z))
        return _dense(self.out)(z)


def _modules(cfg: Config) -> tuple[Encoder, Decoder]:
    return (Encoder(cfg.hidden, cfg.latent_dim, cfg.mode != "deterministic"),
            Decoder(cfg.decoder_hidden, PIXELS if cfg.mode == "vae" else CLASSES))


def gaussian_kl(mu: jax.Array, sigma: jax.Array) -> jax.Array:
    """KL(N(mu, diag sigma^2) || N(0, I)) in nats, summed over the last axis."""
    return jnp.sum(0.5 * (jnp.square(mu) + jnp.square(sigma) - 1.0) - jnp.log(sigma), axis=-1)


def encode(params, cfg: Config, x: jax.Array):
    return _modules(cfg)[0].apply({"params": params["encoder"]}, x)


def decode(params, cfg: Config, z: jax.Array) -> jax.Array:
    return _modules(cfg)[1].apply({"params": params["decoder"]}, z)


def sample_z(mu: jax.Array, sigma: jax.Array | None, noise: jax.Array) -> jax.Array:
    """z = mu + sigma * noise for noise (..., n, K) broadcast over leading sample axes; mu (broadcast to the
    noise's shape) when deterministic."""
    return jnp.broadcast_to(mu, noise.shape) if sigma is None else mu + sigma * noise


def _bernoulli_bits(logits: jax.Array, x: jax.Array) -> jax.Array:
    """-log2 q(x|z) per image for Bernoulli pixels scored against grey levels x in [0, 1]."""
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=-1) / LN2


def _class_bits(logits: jax.Array, y: jax.Array) -> jax.Array:
    """-log2 q(y|z) for integer labels y."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, y) / LN2


def loss_fn(params, cfg: Config, x: jax.Array, y: jax.Array, key: jax.Array):
    """The batch loss in bits and its two terms (see the module docstring); y is ignored in mode vae."""
    mu, sigma = encode(params, cfg, x)
    z = sample_z(mu, sigma, jax.random.normal(key, mu.shape))
    logits = decode(params, cfg, z)
    distortion = jnp.mean(_bernoulli_bits(logits, x) if cfg.mode == "vae" else _class_bits(logits, y))
    rate = jnp.zeros(()) if sigma is None else jnp.mean(gaussian_kl(mu, sigma)) / LN2
    return distortion + cfg.beta * rate, {"distortion_bits": distortion, "rate_bits": rate}


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    schedule = optax.exponential_decay(cfg.lr, cfg.decay_every, cfg.lr_decay, staircase=True)
    return optax.adam(schedule, b1=cfg.adam_b1)


def load_data(cfg: Config, seed: int) -> dict[str, Any]:
    """The shipped MNIST, flattened, as uint8 (scaled to [0, 1] per batch), and the label entropies H(Y)."""
    from athanor.data.mnist import load_mnist

    raw = load_mnist()
    data = {k: jnp.asarray(raw[k].reshape(len(raw[k]), -1)) for k in ("x_train", "x_test")}
    for split in ("train", "test"):
        labels = raw[f"y_{split}"]
        data[f"y_{split}"] = jnp.asarray(labels, dtype=jnp.int32)
        p = np.bincount(labels, minlength=CLASSES) / len(labels)
        data[f"h_y_{split}"] = float(-np.sum(p[p > 0] * np.log2(p[p > 0])))
    return data


def _pixels(x: jax.Array) -> jax.Array:
    return x.astype(jnp.float32) / 255.0


def init(cfg: Config, seed: int, data) -> State:
    k_enc, k_dec, k_state = jax.random.split(jaxtools.key(seed), 3)
    enc, dec = _modules(cfg)
    params = {"encoder": enc.init(k_enc, jnp.zeros((1, PIXELS)))["params"],
              "decoder": dec.init(k_dec, jnp.zeros((1, cfg.latent_dim)))["params"]}
    return State(params=params, ema=params, opt_state=_optimizer(cfg).init(params), key=k_state)


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    """``cfg.inner_steps`` Adam updates in one ``lax.scan``, the EMA weights following after each."""
    n = data["x_train"].shape[0]

    def batch_loss(params, key):
        k_idx, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, n)
        return loss_fn(params, cfg, _pixels(data["x_train"][idx]), data["y_train"][idx], k_noise)

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, ema=cfg.ema)


def predict_log_probs(params, cfg: Config, x: jax.Array, noise: jax.Array) -> jax.Array:
    """log of the averaged prediction (1/S) sum_s q(y | z_s) for noise (S, n, K) -> (n, 10)."""
    mu, sigma = encode(params, cfg, x)
    log_q = jax.nn.log_softmax(decode(params, cfg, sample_z(mu, sigma, noise)), axis=-1)  # (S, n, 10)
    return jax.nn.logsumexp(log_q, axis=0) - jnp.log(noise.shape[0])


@functools.partial(jax.jit, static_argnames="cfg")
def _batch_stats(params, cfg: Config, x_u8: jax.Array, y: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    """Sums over one chunk of examples (divided by the count in ``_stats``)."""
    x = _pixels(x_u8)
    mu, sigma = encode(params, cfg, x)
    k_pred, k_one = jax.random.split(key)
    rate = jnp.zeros(()) if sigma is None else jnp.sum(gaussian_kl(mu, sigma)) / LN2
    z = sample_z(mu, sigma, jax.random.normal(k_one, mu.shape))
    logits = decode(params, cfg, z)
    if cfg.mode == "vae":
        return {"distortion_bits": jnp.sum(_bernoulli_bits(logits, x)), "rate_bits": rate}
    noise = jax.random.normal(k_pred, (cfg.predict_samples, *mu.shape))
    pred = jnp.argmax(predict_log_probs(params, cfg, x, noise), axis=-1)
    return {"errors": jnp.sum(pred != y), "errors_mean": jnp.sum(jnp.argmax(decode(params, cfg, mu), -1) != y),
            "ce_bits": jnp.sum(_class_bits(logits, y)), "rate_bits": rate}


def _stats(params, cfg: Config, x: jax.Array, y: jax.Array, key: jax.Array, chunk: int = 1000) -> dict[str, float]:
    n = min(cfg.eval_examples, x.shape[0])
    totals: dict[str, float] = {}
    for i, start in enumerate(range(0, n, chunk)):
        stop = min(n, start + chunk)
        part = _batch_stats(params, cfg, x[start:stop], y[start:stop], jax.random.fold_in(key, i))
        for k, v in part.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return {k: v / n for k, v in totals.items()}


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    """Test (and train) error of the averaged prediction, and the information estimates, with the EMA weights.

    vib / deterministic: ``test_error``, ``test_error_mean`` (the decoder on z = mu), ``ce_bits``,
    ``izy_bits`` = H(Y) - ce_bits (lower bound on I(Z;Y)), ``rate_bits`` (upper bound on I(Z;X); vib only), and
    ``train_error``, ``train_izy_bits``, ``train_rate_bits`` on the first ``eval_examples`` training images.
    vae: ``distortion_bits``, ``rate_bits`` and ``elbo_bits`` = -(distortion + rate), per test image.
    """
    k_test, k_train = jax.random.split(jaxtools.key(seed))
    test = _stats(state.ema, cfg, data["x_test"], data["y_test"], k_test)
    if cfg.mode == "vae":
        return {**test, "elbo_bits": -(test["distortion_bits"] + test["rate_bits"])}
    train = _stats(state.ema, cfg, data["x_train"], data["y_train"], k_train)
    out = {"test_error": test["errors"], "test_error_mean": test["errors_mean"], "ce_bits": test["ce_bits"],
           "izy_bits": data["h_y_test"] - test["ce_bits"], "train_error": train["errors"],
           "train_izy_bits": data["h_y_train"] - train["ce_bits"]}
    if cfg.mode == "vib":
        out.update(rate_bits=test["rate_bits"], train_rate_bits=train["rate_bits"])
    return out


@functools.partial(jax.jit, static_argnames=("cfg", "steps"))
def attack(params, cfg: Config, x: jax.Array, y: jax.Array, noise: jax.Array, eps: float, steps: int) -> jax.Array:
    """Adversarial images within the eps L-inf ball of x (in [0, 1]): FGSM for steps = 0, else PGD (docstring)."""

    def loss(xa):
        return -jnp.mean(jnp.take_along_axis(predict_log_probs(params, cfg, xa, noise), y[:, None], axis=1))

    grad = jax.grad(loss)
    if steps == 0:
        return jnp.clip(x + eps * jnp.sign(grad(x)), 0.0, 1.0)

    def body(_, xa):
        xa = xa + 0.25 * eps * jnp.sign(grad(xa))
        return jnp.clip(jnp.clip(xa, x - eps, x + eps), 0.0, 1.0)

    return jax.lax.fori_loop(0, steps, body, x)


def robustness(state: State, data, cfg: Config, seed: int, chunk: int = 500) -> tuple[dict[str, float], np.ndarray]:
    """Accuracy under FGSM and PGD at every radius of ``adv_eps`` (``fgsm_acc_<eps>``, ``pgd_acc_<eps>``,
    ``clean_acc`` on the same images), and the FGSM images of the first 10 examples (radius-major)."""
    n = cfg.adv_examples
    key = jax.random.fold_in(jaxtools.key(seed), 11)
    correct: dict[str, float] = {}
    shown = []
    for i, start in enumerate(range(0, n, chunk)):
        x = _pixels(data["x_test"][start:min(n, start + chunk)])
        y = data["y_test"][start:min(n, start + chunk)]
        k_att, k_eval = jax.random.split(jax.random.fold_in(key, i))
        latent = (cfg.predict_samples, x.shape[0], cfg.latent_dim)
        noise, fresh = jax.random.normal(k_att, latent), jax.random.normal(k_eval, latent)

        batch = {"clean_acc": x}
        for eps in epsilons(cfg):
            batch[f"fgsm_acc_{eps:g}"] = attack(state.ema, cfg, x, y, noise, eps, 0)
            batch[f"pgd_acc_{eps:g}"] = attack(state.ema, cfg, x, y, noise, eps, cfg.pgd_steps)
            if i == 0:
                shown.append(np.asarray(batch[f"fgsm_acc_{eps:g}"][:10]))
        for name, xa in batch.items():
            pred = jnp.argmax(predict_log_probs(state.ema, cfg, xa, fresh), axis=-1)
            correct[name] = correct.get(name, 0.0) + float(jnp.sum(pred == y))
        if i == 0:
            shown.insert(0, np.asarray(x[:10]))
    images = np.concatenate(shown).reshape(-1, 28, 28) if shown else np.zeros((0, 28, 28))
    return {k: v / n for k, v in correct.items()}, images


def _confusion(state: State, data, cfg: Config, seed: int) -> Heatmap:
    n = min(cfg.eval_examples, data["x_test"].shape[0])
    x, y = _pixels(data["x_test"][:n]), np.asarray(data["y_test"][:n])
    noise = jax.random.normal(jaxtools.key(seed), (cfg.predict_samples, n, cfg.latent_dim))
    pred = np.asarray(jnp.argmax(predict_log_probs(state.ema, cfg, x, noise), axis=-1))
    table = np.zeros((CLASSES, CLASSES))
    np.add.at(table, (y, pred), 1.0)
    digits = [str(d) for d in range(CLASSES)]
    return Heatmap(table, [f"true {d}" for d in digits], [f"pred {d}" for d in digits],
                   f"confusion on {n} test images", fmt=".0f", vmin=0.0)


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    """vib / deterministic: the confusion table, and for K = 2 the test means coloured by class; vae: test
    images above their reconstructions (Bernoulli means), and decoded prior draws."""
    from athanor.viz.figures import image_grid, scatter2d

    key = jaxtools.key(seed)
    if cfg.mode == "vae":
        x = _pixels(data["x_test"][:16])
        mu, _ = encode(state.ema, cfg, x)
        recon = jax.nn.sigmoid(decode(state.ema, cfg, mu))
        prior = jax.nn.sigmoid(decode(state.ema, cfg, jax.random.normal(key, (32, cfg.latent_dim))))
        grid = np.concatenate([np.asarray(x), np.asarray(recon)]).reshape(-1, 28, 28)
        return {"reconstructions": image_grid(grid, nrow=16, scale=2),
                "samples": image_grid(np.asarray(prior).reshape(-1, 28, 28), nrow=16, scale=2)}
    out: dict[str, Any] = {"confusion": _confusion(state, data, cfg, seed)}
    if cfg.latent_dim == 2:
        n = min(cfg.eval_examples, 5000)
        mu, _ = encode(state.ema, cfg, _pixels(data["x_test"][:n]))
        out["latent"] = scatter2d(np.asarray(mu), labels=np.asarray(data["y_test"][:n]),
                                  title=f"test means of p(z|x), K = 2, beta = {cfg.beta:g}", xlabel="z1",
                                  ylabel="z2", size=(4.2, 3.6))
    return out


def final(state: State, data, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The evaluation, the attacks (vib and deterministic) and the figures, adversarial examples among them."""
    from athanor.viz.figures import image_grid

    metrics, arts = evaluate(state, data, cfg, seed), artifacts(state, data, cfg, seed)
    if cfg.mode != "vae" and cfg.adv_examples > 0:
        robust, images = robustness(state, data, cfg, seed)
        metrics.update(robust)
        if len(images):
            arts["fgsm_examples"] = image_grid(images, nrow=min(10, cfg.adv_examples), scale=2)
    return metrics, arts
