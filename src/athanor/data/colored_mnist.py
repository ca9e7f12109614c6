"""Coloured-MNIST mode-coverage benchmark: the generator, the nearest-template bin classifier, the metrics.

Source: "A Brief Examination of Generative Models" and its original code release.

Generator. Six grayscale MNIST training images (values in [0, 1]) serve as templates, named
0A, 0B, 1, 2, 3, 4 (training-set indices 1, 21, 3, 5, 7, 2; labels 0, 0, 1, 2, 3, 4). A sample draws

    digit d ~ Categorical(4, 4, 4, 4, 2, 1) / 19
    u ~ U(0, 1);  t = 1 - p_green
    colour = 1.5 * (u * red + (t - u) * blue)   if u < t      (a red-blue blend, R + B = 1.5 t, G = 0)
           = green = (0, 1, 0)                  otherwise
    image = template[d] (28, 28, 1) * colour (1, 1, 3)          in [0, 1]

With the original code's p_green = 0.34 (t = 0.66, R + B = 0.99); the post says 1/3, for which R + B = 1.
``P_GREEN`` defaults to the code's value; pass ``p_green=1/3`` for the post's.

Classifier (nearest neighbour, no learned network), for an image x (28, 28, 3):
    gray = sum_c x[..., c]                          summed over RGB, *not* clipped to [0, 1]: a pixel whose
                                                    channels sum past 1.5 over a template value of 1 is an
                                                    error, as in the original, since real data never exceed 1
    err_k = #{pixels : |gray - template_k| > 0.5}   (0..784)
    digit = argmin_k err_k,  error = min_k err_k    (ties go to the lower index, i.e. 0A before 0B)
    s = sum over pixels of x, per channel;  s_hat = s / max(sum_c s, eps)
    colour_bin = argmin_j ||s_hat - prototype_j||_2 over Red (.875, 0, .125), RedBlue (.625, 0, .375),
                 BlueRed (.375, 0, .625), Blue (.125, 0, .875), Green (0, 1, 0)
The eps guard makes an all-black image classify as RedBlue (s_hat = 0 is equidistant from RedBlue and
BlueRed and the lower index wins) instead of producing NaN.

True bin probabilities. For a blend, s_hat = (u / t, 0, 1 - u / t) with u / t ~ U(0, 1), so the four
red-blue bins split [0, 1] of the red fraction at the midpoints of the prototypes' red fractions
(0.25, 0.5, 0.75); each gets (1 - p_green) / 4, and Green gets p_green. ``true_distribution`` derives those
interval lengths from ``COLOUR_PROTOTYPES`` rather than hard-coding them.

Metrics (``bin_metrics``), over 6 x 5 = 30 bins with model frequencies f and true probabilities p:
    tv = 0.5 * sum |f - p|
    kl_model_true = sum_{f > 0} f log(f / p)                      (finite: every p > 0)
    kl_true_model = sum p log(p / f_s),  f_s = (count + 0.5) / (n + 0.5 * 30)
                    (model counts smoothed by half a count per bin so that missed bins stay finite)
    bins_covered = #{bins : count >= 0.1 * n * p}    a bin is covered when the model puts at least 10% of the
                   samples there that the true distribution expects
plus the mean wrong-pixel error overall, per bin, per digit and per colour, and the per-digit and
per-colour frequencies. The original evaluation used 12,800 samples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from athanor.core.errors import DataError
from athanor.data.mnist import load_mnist

DIGIT_NAMES = ("0A", "0B", "1", "2", "3", "4")
TEMPLATE_INDICES = (1, 21, 3, 5, 7, 2)  # MNIST training-set indices (the original code)
TEMPLATE_LABELS = (0, 0, 1, 2, 3, 4)  # the MNIST labels of those images
DIGIT_WEIGHTS = (4, 4, 4, 4, 2, 1)  # relative frequencies, /19 (post: "3" half, "4" a quarter as likely)
COLOUR_NAMES = ("Red", "RedBlue", "BlueRed", "Blue", "Green")
COLOUR_PROTOTYPES = np.array(
    [[0.875, 0.0, 0.125], [0.625, 0.0, 0.375], [0.375, 0.0, 0.625], [0.125, 0.0, 0.875], [0.0, 1.0, 0.0]]
)  # normalised RGB of each colour bin (original code)
P_GREEN = 0.34  # original code; the post says 1/3
COLOUR_SCALE = 1.5  # the blend's 1.5 factor (original code)
WRONG_PIXEL_THRESHOLD = 0.5  # |gray - template| above this counts as a wrong pixel
COVERAGE_FRACTION = 0.1  # bins_covered: count >= this fraction of the true expected count
SMOOTHING_COUNT = 0.5  # pseudo-count per bin for KL(true || model)
N_DIGITS, N_COLOURS = len(DIGIT_NAMES), len(COLOUR_NAMES)
_RED, _GREEN, _BLUE = np.eye(3, dtype=np.float32)


def templates(mnist: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The six templates (6, 28, 28) float32 in [0, 1] of the MNIST training set (default: shipped)."""
    if mnist is None:
        mnist = load_mnist()
    labels = tuple(int(y) for y in np.asarray(mnist["y_train"])[list(TEMPLATE_INDICES)])
    if labels != TEMPLATE_LABELS:
        raise DataError(
            f"coloured-MNIST templates: training images {TEMPLATE_INDICES} have labels {labels}, expected "
            f"{TEMPLATE_LABELS}; the MNIST training set is not the original order. Rebuild it with "
            "`python scripts/build_mnist.py`."
        )
    return np.asarray(mnist["x_train"])[list(TEMPLATE_INDICES)].astype(np.float32) / 255.0


def sample_latents(key: jax.Array, n: int, p_green: float = P_GREEN) -> tuple[jax.Array, jax.Array]:
    """Draw (digit int32 (n,), colour float32 (n, 3)) by the generator rule, without rendering images."""
    k_digit, k_colour = jax.random.split(key)
    logits = jnp.log(jnp.asarray(DIGIT_WEIGHTS, jnp.float32))
    digit = jax.random.categorical(k_digit, logits, shape=(n,)).astype(jnp.int32)
    u = jax.random.uniform(k_colour, (n, 1))
    threshold = 1.0 - p_green
    blend = COLOUR_SCALE * (u * _RED + (threshold - u) * _BLUE)  # (n, 3)
    colour = jnp.where(u < threshold, blend, _GREEN).astype(jnp.float32)
    return digit, colour


def render(templates: jax.Array, digit: jax.Array, colour: jax.Array) -> jax.Array:
    """image = template[digit] * colour: (n, 28, 28, 3) float32."""
    return jnp.asarray(templates, jnp.float32)[digit][..., None] * colour[:, None, None, :]


@functools.partial(jax.jit, static_argnames=("n",))
def sample(
    key: jax.Array, templates: jax.Array, n: int, p_green: float = P_GREEN
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """n ground-truth samples: (images (n, 28, 28, 3) in [0, 1], digit int32 (n,), colour float32 (n, 3))."""
    digit, colour = sample_latents(key, n, p_green)
    return render(templates, digit, colour), digit, colour


def colour_bin_of_sums(sums: jax.Array) -> jax.Array:
    """Nearest colour prototype to per-channel sums (..., 3) normalised to sum 1; int32 (...)."""
    total = jnp.sum(sums, axis=-1, keepdims=True)
    normalised = sums / jnp.maximum(total, 1e-8)
    prototypes = jnp.asarray(COLOUR_PROTOTYPES, sums.dtype)
    distance = jnp.sum((normalised[..., None, :] - prototypes) ** 2, axis=-1)  # (..., 5)
    return jnp.argmin(distance, axis=-1).astype(jnp.int32)


@jax.jit
def classify(images: jax.Array, templates: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Bin images (n, 28, 28, 3): (digit int32 (n,), colour_bin int32 (n,), wrong-pixel error int32 (n,))."""
    images = jnp.asarray(images, jnp.float32)
    gray = jnp.sum(images, axis=-1)  # (n, 28, 28)
    wrong = jnp.abs(gray[:, None] - jnp.asarray(templates, jnp.float32)[None]) > WRONG_PIXEL_THRESHOLD
    counts = jnp.sum(wrong, axis=(2, 3), dtype=jnp.int32)  # (n, 6)
    digit = jnp.argmin(counts, axis=1).astype(jnp.int32)
    error = jnp.min(counts, axis=1).astype(jnp.int32)
    colour_bin = colour_bin_of_sums(jnp.sum(images, axis=(1, 2)))
    return digit, colour_bin, error


def colour_bin_probabilities(p_green: float = P_GREEN) -> np.ndarray:
    """Exact P(colour bin) (5,) float64 of the generator, from the u thresholds and the prototypes."""
    red_fraction = COLOUR_PROTOTYPES[:4, 0] / COLOUR_PROTOTYPES[:4, [0, 2]].sum(axis=1)  # descending
    # A blend's red fraction u / t is uniform on [0, 1); the nearest prototype along that line owns the
    # interval between the midpoints to its neighbours.
    midpoints = (red_fraction[:-1] + red_fraction[1:]) / 2.0
    upper = np.concatenate([[1.0], midpoints])
    lower = np.concatenate([midpoints, [0.0]])
    return np.concatenate([(1.0 - p_green) * (upper - lower), [p_green]])


def true_distribution(p_green: float = P_GREEN) -> np.ndarray:
    """Exact joint bin probabilities (6, 5) float64 of the generator: P(digit) x P(colour bin)."""
    if not 0.0 <= p_green <= 1.0:
        raise ValueError(f"p_green={p_green} is not a probability; use a value in [0, 1] (default {P_GREEN})")
    p_digit = np.asarray(DIGIT_WEIGHTS, np.float64) / np.sum(DIGIT_WEIGHTS)
    return np.outer(p_digit, colour_bin_probabilities(p_green))


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def bin_metrics(digit, colour_bin, error, p_green: float = P_GREEN) -> dict:
    """Mode-coverage and quality metrics of classified samples (numpy in; see the module docstring)."""
    digit = np.asarray(digit).astype(np.int64).reshape(-1)
    colour_bin = np.asarray(colour_bin).astype(np.int64).reshape(-1)
    error = np.asarray(error).astype(np.float64).reshape(-1)
    n = digit.size
    if n == 0 or colour_bin.size != n or error.size != n:
        raise ValueError(
            f"bin_metrics needs equally long, non-empty digit/colour_bin/error arrays; got sizes "
            f"{digit.size}, {colour_bin.size}, {error.size}"
        )
    if digit.min() < 0 or digit.max() >= N_DIGITS or colour_bin.min() < 0 or colour_bin.max() >= N_COLOURS:
        raise ValueError(
            f"digit must lie in [0, {N_DIGITS}) and colour_bin in [0, {N_COLOURS}); use classify()"
        )

    count = np.zeros((N_DIGITS, N_COLOURS), np.int64)
    np.add.at(count, (digit, colour_bin), 1)
    error_sum = np.zeros((N_DIGITS, N_COLOURS), np.float64)
    np.add.at(error_sum, (digit, colour_bin), error)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_error = np.where(count > 0, error_sum / count, np.nan)

    freq = count / n
    p = true_distribution(p_green)
    seen = count > 0
    smoothed = (count + SMOOTHING_COUNT) / (n + SMOOTHING_COUNT * count.size)
    support = p > 0
    out = {
        "freq": freq,
        "count": count,
        "error": bin_error,
        "tv": float(0.5 * np.abs(freq - p).sum()),
        "kl_model_true": float(np.sum(freq[seen] * np.log(freq[seen] / p[seen]))),
        "kl_true_model": float(np.sum(p[support] * np.log(p[support] / smoothed[support]))),
        "bins_covered": float(np.sum((count >= COVERAGE_FRACTION * n * p) & support)),
        "mean_error": float(error.mean()),
    }
    for d, name in enumerate(DIGIT_NAMES):
        out[f"error_digit_{name}"] = _masked_mean(error, digit == d)
    for c, name in enumerate(COLOUR_NAMES):
        out[f"error_colour_{name}"] = _masked_mean(error, colour_bin == c)
    for d, name in enumerate(DIGIT_NAMES):
        out[f"freq_digit_{name}"] = float(freq[d].sum())
    for c, name in enumerate(COLOUR_NAMES):
        out[f"freq_colour_{name}"] = float(freq[:, c].sum())
    return out
