"""Shared generative pieces: the post's generator net, data batches, and chunked mode-coverage scoring."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.core.artifacts import Heatmap
from athanor.data import colored_mnist
from athanor.systems.generative import common


@dataclasses.dataclass(frozen=True)
class EvalCfg:
    eval_samples: int = 3000
    eval_batch: int = 1280


@pytest.fixture(scope="module")
def data():
    return common.load_data(None, 0)


def true_sampler(state, cfg, key, n):
    """A perfect model: the data distribution itself."""
    return colored_mnist.sample(key, state, n)[0]


def collapsed_sampler(state, cfg, key, n):
    """A fully collapsed model: template "2" in pure blue, every time."""
    image = state[3][..., None] * jnp.array([0.0, 0.0, 1.0])
    return jnp.broadcast_to(image, (n, 28, 28, 3))


def test_generator_shape_range_and_sizes():
    net = common.Generator()
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 16)))["params"]
    out = net.apply({"params": params}, 5.0 * jax.random.normal(jax.random.PRNGKey(1), (7, 16)))
    assert out.shape == (7, 28, 28, 3)
    assert float(out.min()) > 0.0 and float(out.max()) < 1.0  # sigmoid output
    widths = [params[f"Dense_{i}"]["kernel"].shape for i in range(3)]
    assert widths == [(16, 64), (64, 128), (128, 2352)]


def test_load_data_and_draw_batch(data):
    assert data["templates"].shape == (6, 28, 28) and data["templates"].dtype == jnp.float32
    images = common.draw_batch(jax.random.PRNGKey(0), data, 50)
    assert images.shape == (50, 28, 28, 3)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert np.array_equal(images, common.draw_batch(jax.random.PRNGKey(0), data, 50))


def test_true_distribution_scores_as_perfect(data):
    m = common.evaluate_samples(true_sampler, data["templates"], data, EvalCfg(), jax.random.PRNGKey(0))
    assert all(isinstance(v, float) for v in m.values())
    assert m["mean_error"] == 0.0  # real images are exactly their templates
    assert m["bins_covered"] == 30.0
    # sampling noise only: sum over 30 bins of |f - p| / 2 at n = 3000 is ~0.04 in expectation
    assert m["tv"] < 0.07
    assert abs(m["freq_digit_4"] - 1 / 19) < 0.015


def test_collapsed_model_covers_one_bin(data):
    m = common.evaluate_samples(collapsed_sampler, data["templates"], data, EvalCfg(300, 128), jax.random.PRNGKey(0))
    p = colored_mnist.true_distribution()
    assert m["bins_covered"] == 1.0
    assert m["freq_digit_2"] == 1.0 and m["mean_error"] == 0.0
    assert m["tv"] == pytest.approx(1.0 - p[3, 3], abs=1e-9)
    assert "error_digit_4" not in m  # undefined (no samples) rather than NaN


def test_chunks_are_bounded_and_cover_all_samples(data):
    sizes = []

    def counting(state, cfg, key, n):
        sizes.append(n)
        return true_sampler(state, cfg, key, n)

    cfg = EvalCfg(eval_samples=300, eval_batch=128)
    common.evaluate_samples(counting, data["templates"], data, cfg, jax.random.PRNGKey(0))
    assert sizes == [128, 128, 44]
    art = common.sample_artifacts(counting, data["templates"], data, cfg, jax.random.PRNGKey(0))
    assert art["frequency"].values.sum() == pytest.approx(1.0)
    counts = art["frequency"].values * 300
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)  # whole counts out of all 300


def test_artifacts_come_from_the_same_draw(data):
    cfg = EvalCfg(eval_samples=500, eval_batch=200)
    key = jax.random.PRNGKey(7)
    m = common.evaluate_samples(true_sampler, data["templates"], data, cfg, key)
    art = common.sample_artifacts(true_sampler, data["templates"], data, cfg, key)
    assert set(art) == {"samples", "frequency", "error", "frequency_true"}
    grid = art["samples"]
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    assert grid.shape[0] == grid.shape[1] == 2 + 8 * 30  # 8 x 8 cells of 28 px with 2 px padding
    for name in ("frequency", "error", "frequency_true"):
        assert isinstance(art[name], Heatmap) and art[name].values.shape == (6, 5)
    freq = art["frequency"].values
    for d, name in enumerate(colored_mnist.DIGIT_NAMES):
        assert freq[d].sum() == pytest.approx(m[f"freq_digit_{name}"], abs=1e-12)
    np.testing.assert_allclose(art["frequency_true"].values, colored_mnist.true_distribution())
    errors = art["error"].values
    assert np.all(errors[freq > 0] == 0.0) and np.all(np.isnan(errors[freq == 0]))
    # the grid shows the first samples of that draw
    first = true_sampler(data["templates"], cfg, jax.random.split(key, 3)[0], 200)[:64]
    cell = grid[2:30, 2:30].astype(np.float64) / 255.0
    np.testing.assert_allclose(cell, np.asarray(first[0]), atol=1 / 255 + 1e-6)


def test_same_key_same_metrics_other_key_differs(data):
    cfg = EvalCfg(eval_samples=400, eval_batch=256)
    a = common.evaluate_samples(true_sampler, data["templates"], data, cfg, jax.random.PRNGKey(1))
    b = common.evaluate_samples(true_sampler, data["templates"], data, cfg, jax.random.PRNGKey(1))
    c = common.evaluate_samples(true_sampler, data["templates"], data, cfg, jax.random.PRNGKey(2))
    assert a == b and a["tv"] != c["tv"]


def test_evaluate_with_artifacts_matches_the_two_separate_calls(data):
    cfg = EvalCfg(eval_samples=300, eval_batch=128)
    key = jax.random.PRNGKey(3)
    metrics, art = common.evaluate_with_artifacts(collapsed_sampler, data["templates"], data, cfg, key)
    assert metrics == common.evaluate_samples(collapsed_sampler, data["templates"], data, cfg, key)
    sep = common.sample_artifacts(collapsed_sampler, data["templates"], data, cfg, key)
    np.testing.assert_array_equal(art["samples"], sep["samples"])
    np.testing.assert_array_equal(art["frequency"].values, sep["frequency"].values)
    assert metrics["bins_covered"] == 1.0
