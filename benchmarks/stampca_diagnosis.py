"""Why the `stampca` experiment's claims came out as they did: growth past the horizon, learning curves, and a
conventional decoder with the same code and budget.

    python benchmarks/stampca_diagnosis.py EMOJI_RUN_DIR MNIST_RUN_DIR [--emoji 256] [--digits 500]
                                           [--out benchmarks/results/stampca-diagnosis-s<seed>.json]

``EMOJI_RUN_DIR`` is a ``stampca`` run, ``MNIST_RUN_DIR`` a ``stampca-gan`` run (the experiment's ``emoji_sN`` and
``mnist_sN``); each is read at its last checkpoint. Measured:

- ``error_vs_steps``: one rollout from the seed per design, measured every ``STRIDE`` steps (every
  gcd(STRIDE, T) steps, so that T and 2T are among them) up to 4T, T = grow_max being the longest rollout
  trained: the grown designs' mean error against their targets, for ``--emoji`` training emoji spread over the
  sort order and every held-out emoji (beside the best constant image's error), and for ``--digits`` fresh
  latents against the generator's image (with the scoring classifier's confidence, class entropy and agreement
  with the generator's class on the grown ink). ``mass`` is the grown alpha summed over the world over the
  target's: below 1 a design fades, above 1 it overgrows. A design held past T keeps its error; one that was
  only trained to be right at T drifts away. ``mse_other`` is each grown design's error against another
  design's target (the next in its batch), and ``own_over_other_T`` the ratio of the two at T: about 1 when the
  grown designs are all alike (whatever the seed says, the same picture grows), near 0 when each grows its own.
- ``learning_curve``: the training loss (``metrics.jsonl``) in windows of ``WINDOW`` updates (for ``stampca-gan``
  its NCA stage only). A loss still falling at the end says the budget, not the model, sets the error.
- ``decoder_reference`` (emoji): the run's encoder (same architecture, same code size) with a transposed-
  convolution decoder in place of the NCA, trained from scratch on the same split with the same batch, number of
  updates and optimiser: the error a one-shot decoder reaches with this code and budget, i.e. how much of the
  NCA's error the task itself explains.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from athanor.core import config as C
from athanor.core.rundir import write_json
from athanor.core.runs import load_run, read_meta, read_metrics
from athanor.systems import get_system
from athanor.systems.stampca import autoencoder, mnist_gan, nca

STRIDE = 8  # steps between measurements of one rollout
HORIZONS = 4  # measure up to this many times T
WINDOW = 250  # updates per learning-curve window
KEY = 20261204  # the fixed key of every measurement here (none of them reuses a run's evaluation randomness)


def _load(run_dir: Path, module):
    meta = read_meta(run_dir)
    system = get_system(meta["system"]).bind()
    cfg = C.from_dict(system.Config, meta["config"])
    data = module.load_data(cfg, meta["seed"])
    _, state = load_run(run_dir, system, template=jax.eval_shape(lambda: module.init(cfg, meta["seed"], data)))
    summary = json.loads((run_dir / "summary.json").read_text())
    return meta, cfg, data, state, summary.get("final") or {}


@functools.partial(jax.jit, static_argnames=("cfg", "steps"))
def _advance(rule_params, cfg, x: jax.Array, key: jax.Array, steps: int) -> jax.Array:
    return nca.grow(nca.UpdateRule(cfg.channels, cfg.hidden), rule_params, x, key, steps, fire_rate=cfg.fire_rate)


def rollout_curve(rule_params, cfg, x0: jax.Array, targets: jax.Array, key: jax.Array, measure, batch: int):
    """(steps, {name: (len(steps), n)}): per-world measurements every gcd(STRIDE, grow_max) steps (so T and 2T are
    among them) up to HORIZONS x grow_max, along one rollout per world.

    ``measure(x, targets)`` returns {name: (b,)} for a batch of worlds; ``x0`` (n, h, w, C) are the start worlds."""
    stride = math.gcd(STRIDE, cfg.grow_max)
    steps = list(range(stride, HORIZONS * cfg.grow_max + 1, stride))
    out: dict[str, list[list[np.ndarray]]] = {}
    for b, start in enumerate(range(0, x0.shape[0], batch)):
        x, tgt = x0[start:start + batch], targets[start:start + batch]
        for i, _ in enumerate(steps):
            x = _advance(rule_params, cfg, x, jax.random.fold_in(jax.random.fold_in(key, b), i), stride)
            for name, v in measure(x, tgt).items():
                out.setdefault(name, [[] for _ in steps])[i].append(np.asarray(v))
    return steps, {name: np.stack([np.concatenate(vs) for vs in rows]) for name, rows in out.items()}


def _mass(x: jax.Array, targets: jax.Array) -> jax.Array:
    """Grown alpha over the target's, summed over each world: (n,)."""
    return jnp.sum(jnp.clip(x[..., 3], 0.0, 1.0), axis=(1, 2)) / jnp.maximum(jnp.sum(targets[..., 3], axis=(1, 2)),
                                                                             1e-6)


def _other(x: jax.Array, targets: jax.Array) -> jax.Array:
    """Each grown design's error against the next world's target in the batch (another design): (n,)."""
    return nca.visible_mse(x, jnp.roll(targets, 1, axis=0))


def _summarise(steps, curves: dict[str, np.ndarray], grow_max: int, error: str = "mse") -> dict:
    mean = {name: v.mean(axis=1) for name, v in curves.items()}
    best = int(np.argmin(mean[error]))
    t, t2 = steps.index(grow_max), steps.index(2 * grow_max)
    return {"steps": steps, **{name: [round(float(v), 5) for v in m] for name, m in mean.items()},
            "best_step": steps[best], f"{error}_best": round(float(mean[error][best]), 5),
            f"{error}_T": round(float(mean[error][t]), 5), f"{error}_2T": round(float(mean[error][t2]), 5),
            f"{error}_4T": round(float(mean[error][-1]), 5),
            "drift_2T_over_T": round(float(mean[error][t2] / mean[error][t]), 3),
            "own_over_other_T": round(float(mean[error][t] / mean[f"{error}_other"][t]), 3)}


def learning_curve(run_dir: Path, after: int = 0) -> dict:
    """Mean training loss per WINDOW updates (updates > ``after``) and the last window's drop from the one before."""
    recs = [r for r in read_metrics(run_dir) if r.get("kind", "train") == "train" and "loss" in r
            and r["step"] > after]
    ends, means = [], []
    for end in range(after + WINDOW, recs[-1]["step"] + 1, WINDOW) if recs else []:
        window = [r["loss"] for r in recs if end - WINDOW < r["step"] <= end]
        if window:
            ends.append(end)
            means.append(round(float(np.mean(window)), 5))
    drop = round((means[-2] - means[-1]) / means[-2], 4) if len(means) > 1 else None
    return {"window": WINDOW, "ends": ends, "loss": means, "last_window_drop": drop}


class Decoder(nn.Module):
    """A code (n, d) -> premultiplied RGBA (n, 32, 32, 4): Dense to 4 x 4 x 128, three stride-2 transposed
    convolutions (64, 32, 4 channels, ReLU between, sigmoid out); the encoder's mirror image."""

    @nn.compact
    def __call__(self, code):
        h = nn.relu(nn.Dense(4 * 4 * 128)(code)).reshape(-1, 4, 4, 128)
        for width in (64, 32):
            h = nn.relu(nn.ConvTranspose(width, (3, 3), strides=(2, 2))(h))  # 8, then 16 cells a side
        return nn.sigmoid(nn.ConvTranspose(nca.RGBA, (3, 3), strides=(2, 2))(h))  # 32 cells a side


def decoder_reference(cfg: autoencoder.Config, data, key: jax.Array, updates: int | None = None) -> dict:
    """Train encoder + Decoder on the training emoji (batch, updates and optimiser of ``cfg``) and return the
    per-split mean error and its ratio to the best constant image's."""
    updates = updates or cfg.steps
    enc, dec = autoencoder.Encoder(cfg.channels - nca.RGBA), Decoder()
    k_e, k_d, k_train = jax.random.split(key, 3)
    params = {"encoder": enc.init(k_e, jnp.zeros((1, autoencoder.SIZE, autoencoder.SIZE, nca.RGBA)))["params"],
              "decoder": dec.init(k_d, jnp.zeros((1, cfg.channels - nca.RGBA)))["params"]}
    tx = nca.optimizer(cfg.lr, updates, cfg.lr_decay_at)
    images, train = data["images"], data["train"]

    def apply(p, y):
        return dec.apply({"params": p["decoder"]}, enc.apply({"params": p["encoder"]}, y))

    def update(carry, k):
        p, opt = carry
        y = images[jax.random.choice(k, train, (cfg.batch_size,))]
        loss, g = jax.value_and_grad(lambda q: jnp.mean(nca.visible_mse(apply(q, y), y)))(p)
        u, opt = tx.update(g, opt, p)
        return (optax.apply_updates(p, u), opt), loss

    (params, _), losses = jax.jit(lambda c, ks: jax.lax.scan(update, c, ks))((params, tx.init(params)),
                                                                            jax.random.split(k_train, updates))
    out: dict = {"updates": updates, "final_train_loss": round(float(losses[-WINDOW:].mean()), 5)}
    constant = data["constant"]
    for split in ("train", "heldout"):
        idx = np.asarray(data[split])
        y = images[idx]
        grown = jnp.concatenate([apply(params, y[s:s + 256]) for s in range(0, len(idx), 256)])
        err, other = np.asarray(nca.visible_mse(grown, y)), np.asarray(_other(grown, y))
        const = np.asarray(nca.visible_mse(jnp.broadcast_to(constant, y.shape), y))
        out[split] = {"mse": round(float(err.mean()), 5), "ratio": round(float(err.mean() / const.mean()), 3),
                      "own_over_other": round(float(err.mean() / other.mean()), 3)}
    return out


def emoji_diagnosis(run_dir: Path, n_emoji: int, decoder: bool = True) -> dict:
    meta, cfg, data, state, final = _load(run_dir, autoencoder)
    key = jax.random.PRNGKey(KEY)
    out: dict = {"run": run_dir.name, "seed": meta["seed"], "grow_max": cfg.grow_max,
                 "run_final": {k: final[k] for k in ("train_ratio", "heldout_ratio", "train_mse", "heldout_mse",
                                                     "train_mse_2x") if k in final}}
    for i, split in enumerate(("train", "heldout")):
        idx = autoencoder.spread(data[split], n_emoji if split == "train" else 0)
        targets = data["images"][idx]
        x0 = nca.centred(autoencoder.seeds(state.params, cfg, targets), (autoencoder.SIZE, autoencoder.SIZE))
        steps, curves = rollout_curve(state.params["rule"], cfg, x0, targets, jax.random.fold_in(key, i),
                                      lambda x, t: {"mse": nca.visible_mse(x, t), "mse_other": _other(x, t),
                                                    "mass": _mass(x, t)},
                                      cfg.eval_batch)
        const = float(nca.visible_mse(jnp.broadcast_to(data["constant"], targets.shape), targets).mean())
        summary = _summarise(steps, curves, cfg.grow_max)
        summary["ratio"] = [round(v / const, 3) for v in summary["mse"]]
        out[split] = {"emoji": len(idx), "constant_mse": round(const, 5), **summary}
    out["learning_curve"] = learning_curve(run_dir)
    if decoder:
        out["decoder_reference"] = decoder_reference(cfg, data, jax.random.fold_in(key, 9))
    return out


def mnist_diagnosis(run_dir: Path, n_digits: int) -> dict:
    meta, cfg, data, state, final = _load(run_dir, mnist_gan)
    key = jax.random.PRNGKey(KEY)
    z = jax.random.normal(key, (n_digits, cfg.latent_dim))
    targets = mnist_gan.ink_to_rgba(mnist_gan.generate(state.gen, z))
    gan_probs = np.asarray(mnist_gan._class_probs(data["classifier"], targets[..., 3]))

    def measure(x, t):
        return {"mse": nca.visible_mse(x, t), "mse_other": _other(x, t), "mass": _mass(x, t),
                "probs": mnist_gan._class_probs(data["classifier"], x[..., 3])}

    x0 = nca.centred(mnist_gan.seeds(cfg, z), (mnist_gan.SIDE, mnist_gan.SIDE))
    steps, curves = rollout_curve(state.rule, cfg, x0, targets, jax.random.fold_in(key, 1), measure, cfg.eval_batch)
    probs = curves.pop("probs")  # (steps, n, 10)
    summary = _summarise(steps, curves, cfg.grow_max)
    scores = [mnist_gan._scores(p, "nca") for p in probs]  # the run's own scoring, at every measured step
    summary["confidence"] = [round(sc["nca_confidence"], 5) for sc in scores]
    summary["class_entropy"] = [round(sc["nca_class_entropy"], 3) for sc in scores]
    summary["agrees_with_gan"] = [round(float(np.mean(p.argmax(-1) == gan_probs.argmax(-1))), 3) for p in probs]
    gan = mnist_gan._scores(gan_probs, "gan")
    return {"run": run_dir.name, "seed": meta["seed"], "grow_max": cfg.grow_max, "digits": n_digits,
            "run_final": {k: final[k] for k in ("nca_confidence", "nca_class_entropy", "gan_confidence",
                                                "gan_class_entropy", "real_confidence", "nca_agrees_with_gan",
                                                "nca_mse", "nca_mse_2x") if k in final},
            "gan_confidence": round(gan["gan_confidence"], 4), "gan_class_entropy": round(gan["gan_class_entropy"], 3),
            **summary, "learning_curve": learning_curve(run_dir, after=cfg.gan_steps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("emoji_run", type=Path)
    ap.add_argument("mnist_run", type=Path)
    ap.add_argument("--emoji", type=int, default=256, help="training emoji measured (held-out: all)")
    ap.add_argument("--digits", type=int, default=500)
    ap.add_argument("--out", help="default: benchmarks/results/stampca-diagnosis-s<the emoji run's seed>.json")
    args = ap.parse_args()
    emoji = emoji_diagnosis(args.emoji_run, args.emoji)
    print(json.dumps({k: v for k, v in emoji.items() if k not in ("train", "heldout")}), flush=True)
    digits = mnist_diagnosis(args.mnist_run, args.digits)
    out = {"command": f"python benchmarks/stampca_diagnosis.py EMOJI_RUN_DIR MNIST_RUN_DIR --emoji {args.emoji} "
                      f"--digits {args.digits}", "emoji": emoji, "mnist": digits}
    path = Path(args.out or f"benchmarks/results/stampca-diagnosis-s{emoji['seed']}.json")
    write_json(path, out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
