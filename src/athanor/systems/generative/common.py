"""Shared pieces of the generative family: the post's generator network, data and mode-coverage scoring.

Every model in the family is scored the same way ("A Brief Examination of Generative Models"): draw ``eval_samples``
images (12,800 in the original notebooks), put each into one of 30 bins (6 digit templates x 5 colours) by nearest
neighbour, and compare the bin frequencies with the true ones; the per-sample error is the number of pixels (of 784)
whose grayscale value differs from the matched template by more than 0.5. The classifier and the metrics live in
``athanor.data.colored_mnist``; this module only draws samples in bounded chunks and routes them there.

Generator (the post's ``GeneratorLinear``, reused by every method): x -> Dense 64 -> tanh -> Dense 128 -> tanh
-> Dense 2352 -> sigmoid -> (N, 28, 28, 3).

Deviations: the original scored samples in 100 batches of 128 with a Python loop per image; here samples are
drawn ``eval_batch`` at a time (bounded memory) and classified vectorised, which gives the same bins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from athanor.core.artifacts import Heatmap
from athanor.data import colored_mnist
from athanor.viz.figures import image_grid

__all__ = ["Generator", "load_data", "draw_batch", "evaluate_samples", "sample_artifacts", "evaluate_with_artifacts"]

IMAGE_SHAPE = (28, 28, 3)
N_GRID = 64  # samples shown in the "samples" figure

SampleFn = Callable[[Any, Any, jax.Array, int], jax.Array]


class Generator(nn.Module):
    """The post's shared decoder MLP: any input vector -> a 28x28 RGB image in (0, 1)."""

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(64)(x))
        x = jnp.tanh(nn.Dense(128)(x))
        x = nn.sigmoid(nn.Dense(int(np.prod(IMAGE_SHAPE)))(x))  # (N, 2352)
        return x.reshape(x.shape[0], *IMAGE_SHAPE)


def load_data(cfg, seed: int) -> dict[str, jax.Array]:
    """The six grayscale digit templates; every batch is generated from them on the fly (from the state's key,
    so the data themselves do not depend on ``seed``)."""
    return {"templates": jnp.asarray(colored_mnist.templates(), dtype=jnp.float32)}  # (6, 28, 28)


def draw_batch(key: jax.Array, data: dict, n: int) -> jax.Array:
    """n images (n, 28, 28, 3) from the true coloured-digit distribution."""
    images, _, _ = colored_mnist.sample(key, data["templates"], n)
    return images


def _chunks(total: int, size: int) -> list[int]:
    full, rest = divmod(total, size)
    return [size] * full + ([rest] if rest else [])


def _classified(sample_fn: SampleFn, state, data, cfg, key) -> tuple[dict[str, Any], np.ndarray]:
    """Draw cfg.eval_samples samples chunk by chunk; return bin_metrics and the first N_GRID images."""
    sizes = _chunks(cfg.eval_samples, cfg.eval_batch)
    keys = jax.random.split(key, len(sizes))
    templates = data["templates"]
    digits, colours, errors, shown = [], [], [], []
    have = 0
    for k, n in zip(keys, sizes, strict=True):
        images = sample_fn(state, cfg, k, n)  # (n, 28, 28, 3)
        digit, colour_bin, error = colored_mnist.classify(images, templates)
        digits.append(np.asarray(digit))
        colours.append(np.asarray(colour_bin))
        errors.append(np.asarray(error))
        if have < N_GRID:
            take = np.asarray(images[: N_GRID - have])
            shown.append(take)
            have += len(take)
    metrics = colored_mnist.bin_metrics(np.concatenate(digits), np.concatenate(colours), np.concatenate(errors))
    return metrics, np.concatenate(shown)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics; an average over an empty group (the error of a digit never drawn) is NaN and is
    left out, so every reported value is a finite float and equal runs compare equal."""
    return {name: float(v) for name, v in metrics.items() if np.ndim(v) == 0 and np.isfinite(v)}


def evaluate_samples(sample_fn: SampleFn, state, data, cfg, key: jax.Array) -> dict[str, float]:
    """Mode-coverage metrics (tv, KLs, bins_covered, mean_error, per-digit/colour) over cfg.eval_samples.

    ``error_digit_<d>`` / ``error_colour_<c>`` are absent when no sample fell in that digit / colour.

    ``sample_fn(state, cfg, key, n)`` must return n images in [0, 1]; jit it with ``cfg`` and ``n`` static so
    the chunks reuse one compiled program.
    """
    metrics, _ = _classified(sample_fn, state, data, cfg, key)
    return _scalars(metrics)


def sample_artifacts(sample_fn: SampleFn, state, data, cfg, key: jax.Array) -> dict[str, Any]:
    """A grid of 64 samples and the frequency / error tables, from the same draw as evaluate_samples."""
    return _artifacts(*_classified(sample_fn, state, data, cfg, key))


def evaluate_with_artifacts(sample_fn: SampleFn, state, data, cfg, key: jax.Array) -> tuple[dict, dict]:
    """evaluate_samples and sample_artifacts from one draw (for models whose sampling is expensive)."""
    metrics, shown = _classified(sample_fn, state, data, cfg, key)
    return _scalars(metrics), _artifacts(metrics, shown)


def _artifacts(metrics: dict[str, Any], shown: np.ndarray) -> dict[str, Any]:
    rows, cols = list(colored_mnist.DIGIT_NAMES), list(colored_mnist.COLOUR_NAMES)
    n = int(np.sum(metrics["count"]))
    return {
        "samples": image_grid(np.clip(shown, 0.0, 1.0), nrow=8),
        "frequency": Heatmap(
            np.asarray(metrics["freq"]),
            rows,
            cols,
            fmt=".3f",
            vmin=0.0,
            title=f"sample frequency per bin ({n} samples)",
        ),
        # empty bins stay NaN and are drawn blank: no samples is not the same as zero error
        "error": Heatmap(
            np.asarray(metrics["error"], dtype=np.float64),
            rows,
            cols,
            fmt=".1f",
            vmin=0.0,
            cmap="magma",
            title="mean wrong-pixel count per bin (of 784)",
        ),
        "frequency_true": Heatmap(
            np.asarray(colored_mnist.true_distribution()),
            rows,
            cols,
            fmt=".3f",
            vmin=0.0,
            title="true frequency per bin",
        ),
    }
