"""Coloured-MNIST benchmark: generator rule, classifier vs a numpy oracle, exact bin odds, metrics."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from athanor.core.errors import DataError
from athanor.data import colored_mnist as cm
from athanor.data.mnist import load_mnist

N_EVAL = 12_800  # the original evaluation's sample count


@pytest.fixture(scope="module")
def templates():
    return cm.templates()


@pytest.fixture(scope="module")
def eval_set(templates):
    images, digit, colour = cm.sample(jax.random.key(0), templates, N_EVAL)
    pred = cm.classify(images, templates)
    return [np.asarray(a) for a in (images, digit, colour, *pred)]


def true_colour_bin(colour: np.ndarray) -> np.ndarray:
    """Bin of a generator colour, from the blend's red fraction (independent of classify)."""
    red_fraction = colour[:, 0] / np.maximum(colour[:, 0] + colour[:, 2], 1e-12)
    blend_bin = np.select([red_fraction > 0.75, red_fraction > 0.5, red_fraction > 0.25], [0, 1, 2], 3)
    return np.where(colour[:, 1] > 0, 4, blend_bin)


def oracle_classify(images: np.ndarray, templates: np.ndarray):
    """Loop-by-loop numpy version of the original code's rule."""
    digits, bins, errors = [], [], []
    for image in images.astype(np.float64):
        gray = image.sum(axis=-1)
        counts = [int(np.sum(np.abs(gray - t) > 0.5)) for t in templates.astype(np.float64)]
        sums = image.sum(axis=(0, 1))
        normalised = sums / max(sums.sum(), 1e-8)
        distances = [np.sum((normalised - proto) ** 2) for proto in cm.COLOUR_PROTOTYPES]
        digits.append(int(np.argmin(counts)))
        errors.append(min(counts))
        bins.append(int(np.argmin(distances)))
    return np.array(digits), np.array(bins), np.array(errors)


def test_templates_are_the_listed_training_images(templates):
    data = load_mnist()
    assert templates.shape == (6, 28, 28) and templates.dtype == np.float32
    assert tuple(data["y_train"][list(cm.TEMPLATE_INDICES)]) == (0, 0, 1, 2, 3, 4)
    np.testing.assert_array_equal(templates * 255.0, data["x_train"][list(cm.TEMPLATE_INDICES)])
    assert templates.min() == 0.0 and templates.max() == 1.0
    # The two zeros are alike (the post's point) yet far more than zero wrong pixels apart.
    assert np.sum(np.abs(templates[0] - templates[1]) > 0.5) > 20


def test_templates_refuse_a_reordered_training_set():
    data = load_mnist()
    shuffled = {"x_train": data["x_train"][::-1], "y_train": data["y_train"][::-1]}
    with pytest.raises(DataError, match=r"build_mnist\.py"):
        cm.templates(shuffled)


def test_sample_frequencies_match_weights_and_p_green():
    n = 100_000
    digit, colour = (np.asarray(a) for a in cm.sample_latents(jax.random.key(1), n))
    p_digit = np.array(cm.DIGIT_WEIGHTS) / 19.0
    freq = np.bincount(digit, minlength=6) / n
    assert np.all(np.abs(freq - p_digit) < 5 * np.sqrt(p_digit * (1 - p_digit) / n))
    green = colour[:, 1] > 0
    assert abs(green.mean() - cm.P_GREEN) < 5 * math.sqrt(cm.P_GREEN * (1 - cm.P_GREEN) / n)


@pytest.mark.parametrize(("p_green", "blend_sum"), [(cm.P_GREEN, 0.99), (1.0 / 3.0, 1.0)])
def test_colour_rule(p_green, blend_sum):
    colour = np.asarray(cm.sample_latents(jax.random.key(2), 20_000, p_green)[1])
    green = colour[:, 1] > 0
    np.testing.assert_array_equal(colour[green], np.tile([0.0, 1.0, 0.0], (green.sum(), 1)))
    blend = colour[~green]
    assert np.all(blend[:, 1] == 0.0)
    np.testing.assert_allclose(blend[:, 0] + blend[:, 2], blend_sum, atol=1e-6)
    red_fraction = blend[:, 0] / blend.sum(axis=1)
    # u | u < t is uniform, so the red fraction u / t is U(0, 1): mean 1/2, variance 1/12.
    assert abs(red_fraction.mean() - 0.5) < 0.01 and abs(red_fraction.var() - 1 / 12) < 0.005
    assert colour.min() >= 0.0 and colour.max() <= 1.0


def test_pixels_are_template_times_colour_exactly(templates):
    images, digit, colour = (np.asarray(a) for a in cm.sample(jax.random.key(3), templates, 256))
    assert images.shape == (256, 28, 28, 3) and images.dtype == np.float32 and digit.dtype == np.int32
    np.testing.assert_array_equal(images, templates[digit][..., None] * colour[:, None, None, :])
    assert images.min() >= 0.0 and images.max() <= 1.0
    same_digit, same_colour = cm.sample_latents(jax.random.key(3), 256)
    np.testing.assert_array_equal(digit, same_digit)
    np.testing.assert_array_equal(colour, same_colour)


def test_sample_is_deterministic_per_key(templates):
    a = cm.sample(jax.random.key(4), templates, 64)
    b = cm.sample(jax.random.key(4), templates, 64)
    c = cm.sample(jax.random.key(5), templates, 64)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])


def test_classifier_labels_ground_truth_perfectly(eval_set):
    _, digit, colour, pred_digit, pred_bin, error = eval_set
    assert pred_digit.dtype == np.int32 and pred_bin.dtype == np.int32 and error.dtype == np.int32
    np.testing.assert_array_equal(pred_digit, digit)
    np.testing.assert_array_equal(pred_bin, true_colour_bin(colour))
    assert error.max() == 0
    assert set(np.unique(pred_bin)) == set(range(5)) and set(np.unique(pred_digit)) == set(range(6))


def test_classifier_matches_numpy_oracle_on_off_distribution_images(templates):
    noise = np.asarray(jax.random.uniform(jax.random.key(6), (24, 28, 28, 3))) ** 3
    corrupted = templates[np.arange(24) % 6][..., None] * np.array([0.6, 0.1, 0.3], np.float32)
    corrupted = np.clip(corrupted + 0.6 * (noise > 0.9), 0.0, 1.0)
    white = np.repeat(templates[:, :, :, None], 3, axis=-1)  # gray = 3 * template: no clipping
    black = np.zeros((1, 28, 28, 3), np.float32)
    images = np.concatenate([noise, corrupted, white, black]).astype(np.float32)
    got = [np.asarray(a) for a in cm.classify(images, templates)]
    want = oracle_classify(images, templates)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    # An all-black image is a defined, finite bin (RedBlue) with the error of the emptiest template.
    assert got[1][-1] == 1
    expected_black_error = min(int(np.sum(t > 0.5)) for t in templates)
    assert got[2][-1] == expected_black_error
    # A white digit: |3t - t| = 2t > 0.5 wherever t > 0.25, counted as wrong because gray is not clipped.
    white_errors = got[2][48:54]
    np.testing.assert_array_equal(white_errors, [np.sum(t > 0.25) for t in templates])


def test_classifier_error_counts_flipped_pixels(templates):
    image = templates[3].copy()
    background = np.flatnonzero(image.reshape(-1) == 0.0)[:37]
    image.reshape(-1)[background] = 0.9
    digit, colour_bin, error = cm.classify(image[None, :, :, None] * np.array([0.0, 1.0, 0.0]), templates)
    assert int(digit[0]) == 3 and int(colour_bin[0]) == 4 and int(error[0]) == 37


def test_true_distribution_closed_form_and_monte_carlo():
    p = cm.true_distribution()
    assert p.shape == (6, 5) and p.dtype == np.float64
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    expected = np.outer(np.array([4, 4, 4, 4, 2, 1]) / 19, [0.165, 0.165, 0.165, 0.165, 0.34])
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(cm.true_distribution(1 / 3).sum(axis=0), [1 / 6] * 4 + [1 / 3], rtol=1e-12)

    n = 100_000
    digit, colour = (np.asarray(a) for a in cm.sample_latents(jax.random.key(7), n))
    counts = np.zeros((6, 5))
    np.add.at(counts, (digit, true_colour_bin(colour)), 1)
    freq = counts / n
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n))
    # E[TV] at this n is about 0.007.
    assert 0.5 * np.abs(freq - p).sum() < 0.012


def test_bin_metrics_on_true_samples(eval_set):
    *_, pred_digit, pred_bin, error = eval_set
    m = cm.bin_metrics(pred_digit, pred_bin, error)
    assert m["count"].sum() == N_EVAL and math.isclose(m["freq"].sum(), 1.0)
    # Sampling noise alone gives E[TV] ~ 0.5 * sum_i sqrt(2 p_i / (pi n)) ~ 0.019 at n = 12,800
    # (standard deviation ~ 0.003), so the bound sits several deviations above that.
    assert m["tv"] < 0.03
    assert m["bins_covered"] == 30
    assert 0 <= m["kl_model_true"] < 0.005 and 0 <= m["kl_true_model"] < 0.005
    assert m["mean_error"] == 0.0 and np.all(m["error"] == 0.0)
    for name, weight in zip(cm.DIGIT_NAMES, cm.DIGIT_WEIGHTS, strict=True):
        assert abs(m[f"freq_digit_{name}"] - weight / 19) < 0.015
        assert m[f"error_digit_{name}"] == 0.0
    for name in cm.COLOUR_NAMES:
        assert m[f"error_colour_{name}"] == 0.0
    scalars = {k: v for k, v in m.items() if k not in ("freq", "count", "error")}
    assert all(type(v) is float for v in scalars.values())


def test_bin_metrics_on_a_collapsed_sample_set():
    n = 500
    m = cm.bin_metrics(np.full(n, 5), np.full(n, 4), np.full(n, 7))
    p = cm.true_distribution()
    p_bin = p[5, 4]
    assert m["bins_covered"] == 1
    assert m["tv"] == pytest.approx(1.0 - p_bin, rel=1e-12, abs=0)
    assert m["kl_model_true"] == pytest.approx(-math.log(p_bin), rel=1e-12)
    smoothed = np.full((6, 5), 0.5) / (n + 15)
    smoothed[5, 4] = (n + 0.5) / (n + 15)
    assert m["kl_true_model"] == pytest.approx(float(np.sum(p * np.log(p / smoothed))), rel=1e-12)
    assert m["error"][5, 4] == 7.0 and np.isnan(m["error"][0, 0]) and np.isnan(m["error_digit_0A"])
    assert m["error_digit_4"] == 7.0 and m["error_colour_Green"] == 7.0 and m["freq_digit_4"] == 1.0


def test_bin_metrics_hand_computed_errors():
    digit = np.array([0, 0, 2, 2, 2])
    colour_bin = np.array([1, 1, 1, 3, 3])
    error = np.array([10, 20, 30, 40, 60])
    m = cm.bin_metrics(digit, colour_bin, error)
    assert m["count"][0, 1] == 2 and m["count"][2, 1] == 1 and m["count"][2, 3] == 2
    assert m["error"][0, 1] == 15.0 and m["error"][2, 1] == 30.0 and m["error"][2, 3] == 50.0
    assert m["mean_error"] == 32.0
    assert (
        m["error_digit_0A"] == 15.0
        and m["error_digit_1"] == pytest.approx(130 / 3)
        and np.isnan(m["error_digit_0B"])
    )
    assert m["error_colour_RedBlue"] == 20.0 and m["error_colour_Blue"] == 50.0
    assert np.isnan(m["error_colour_Green"])
    assert m["freq_digit_1"] == pytest.approx(0.6)


def test_bins_covered_threshold_is_ten_percent_of_expected_count():
    n = 190_000  # every n * p is an integer: 10,000 * weight * colour share
    expected = np.rint(n * cm.true_distribution()).astype(int)
    assert expected.sum() == n and expected[5, 0] == 1650  # so the bar for bin (4, Red) is 165

    def covered(kept: int) -> float:
        counts = expected.copy()
        counts[0, 4] += counts[5, 0] - kept
        counts[5, 0] = kept
        cells = np.repeat(np.arange(30), counts.reshape(-1))
        return cm.bin_metrics(cells // 5, cells % 5, np.zeros(n))["bins_covered"]

    assert covered(165) == 30 and covered(164) == 29


def test_bin_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        cm.bin_metrics(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="equally long"):
        cm.bin_metrics(np.array([0, 1]), np.array([0]), np.array([0, 0]))
    with pytest.raises(ValueError, match="classify"):
        cm.bin_metrics(np.array([6]), np.array([0]), np.array([0]))


def test_sample_and_classify_compose_under_jit(templates):
    @jax.jit
    def pipeline(key):
        images, digit, _ = cm.sample(key, templates, 32)
        return cm.classify(images, templates)[0] == digit

    assert bool(np.all(np.asarray(pipeline(jax.random.key(8)))))
