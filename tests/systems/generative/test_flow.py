"""Flow matching: path endpoints, Euler on an exact Gaussian flow, x1 -> velocity, the contract."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from athanor.core.config import resolve
from athanor.systems.generative import flow


@pytest.fixture(scope="module")
def small():
    tiny = resolve(flow.Config, flow.PRESETS, "tiny")
    return dataclasses.replace(tiny, eval_samples=64, eval_batch=32, sample_steps=8)


@pytest.fixture(scope="module")
def data(small):
    return flow.load_data(small, 0)


def train(cfg, data, seed=0):
    state = flow.init(cfg, seed, data)
    infos = []
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = flow.step(state, data, cfg)
        infos.append(info)
    return state, infos


def gaussian_path(m, s):
    """x0 ~ N(0, 1), x1 ~ N(m, s^2) independent: x_t ~ N(t m, (1-t)^2 + t^2 s^2) and the conditional means."""

    def var(t):
        return (1.0 - t) ** 2 + t**2 * s**2

    def e_x1(x, t):  # E[x1 | x_t = x]
        return m + t * s**2 / var(t) * (x - t * m)

    def e_x0(x, t):  # E[x0 | x_t = x]
        return (1.0 - t) / var(t) * (x - t * m)

    return e_x1, e_x0


def test_interpolation_endpoints():
    k0, k1 = jax.random.split(jax.random.PRNGKey(0))
    x0, x1 = jax.random.normal(k0, (5, 28, 28, 3)), jax.random.uniform(k1, (5, 28, 28, 3))
    np.testing.assert_array_equal(flow.interpolate(x0, x1, 0.0), x0)
    np.testing.assert_array_equal(flow.interpolate(x0, x1, 1.0), x1)
    t = jnp.array([0.0, 0.25, 0.5, 1.0, 0.9])  # per example
    mid = flow.interpolate(x0, x1, t)
    np.testing.assert_allclose(
        mid, (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * x1, rtol=1e-6
    )
    np.testing.assert_array_equal(mid[3], x1[3])
    # the path's velocity is x1 - x0 at every t
    np.testing.assert_allclose(
        (flow.interpolate(x0, x1, 0.7) - flow.interpolate(x0, x1, 0.2)) / 0.5, x1 - x0, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("m,s", [(1.5, 0.5), (-0.3, 2.0), (0.2, 0.1)])
def test_euler_with_exact_velocity_transports_to_gaussian_target(m, s):
    e_x1, e_x0 = gaussian_path(m, s)
    n = 100_000
    x0 = jax.random.normal(jax.random.PRNGKey(0), (n,))
    x1, path = flow.euler_sample(lambda x, t: e_x1(x, t) - e_x0(x, t), x0, 200)
    assert path.shape == (200, n)
    np.testing.assert_array_equal(path[0], x0)
    x1 = np.asarray(x1, np.float64)
    assert x1.mean() == pytest.approx(m, abs=0.02 * max(1.0, s))
    assert x1.std() == pytest.approx(s, rel=0.03)
    # an intermediate state follows the marginal N(t m, (1-t)^2 + t^2 s^2)
    mid = np.asarray(path[100], np.float64)
    assert mid.mean() == pytest.approx(0.5 * m, abs=0.02 * max(1.0, s))
    assert mid.std() == pytest.approx(np.sqrt(0.25 + 0.25 * s**2), rel=0.03)


@pytest.mark.parametrize("t", [0.0, 0.3, 0.9, 0.99])
def test_x1_prediction_gives_the_marginal_velocity(t):
    """With the Bayes-optimal x1 prediction, (x1_hat - x_t) / (1 - t) equals E[x1 - x0 | x_t]."""
    m, s = 0.8, 0.3
    e_x1, e_x0 = gaussian_path(m, s)
    x = jnp.linspace(-3.0, 3.0, 13)
    np.testing.assert_allclose(
        flow.velocity_from_x1(e_x1(x, t), x, t), e_x1(x, t) - e_x0(x, t), rtol=1e-4, atol=1e-4
    )


def test_tiny_contract_and_determinism(small, data):
    state, infos = train(small, data)
    assert all(np.isfinite(float(i["loss"])) for i in infos)
    metrics = flow.evaluate(state, data, small, 1)
    assert all(type(v) is float for v in metrics.values())
    assert {"tv", "bins_covered", "mean_error"} <= set(metrics)
    arts = flow.artifacts(state, data, small, 1)
    assert {"samples", "frequency", "error", "frequency_true", "flow"} <= set(arts)
    assert arts["flow"].dtype == np.uint8 and arts["flow"].ndim == 3

    again, _ = train(small, data)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    restored = serialization.from_bytes(
        flow.init(small, 9, data), serialization.to_bytes(state)
    )
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)


def test_x1_sampler_lands_on_clipped_prediction(small, data):
    """The last Euler step from t = 1 - 1/N moves x exactly onto the clipped x1 prediction."""
    state = flow.init(small, 0, data)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 28, 28, 3))
    t = 1.0 - 1.0 / small.sample_steps
    stepped = x + (1.0 / small.sample_steps) * flow.velocity(state.params, small, x, t)
    expected = jnp.clip(flow._net(state.params, small, x, t), -0.5, 0.5)
    np.testing.assert_allclose(stepped, expected, atol=1e-5)


def test_velocity_prediction_flag(small, data):
    cfg = dataclasses.replace(small, prediction="velocity")
    state = flow.init(cfg, 0, data)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 28, 28, 3))
    np.testing.assert_array_equal(
        flow.velocity(state.params, cfg, x, 0.5), flow._net(state.params, cfg, x, 0.5)
    )
    samples = np.asarray(flow.sample(state, cfg, jax.random.PRNGKey(2), 4))
    assert samples.shape == (4, 28, 28, 3) and samples.min() >= 0.0 and samples.max() <= 1.0


@pytest.mark.slow
def test_quick_preset_learns_clean_digits_in_every_bin():
    cfg = resolve(flow.Config, flow.PRESETS, "quick")
    data = flow.load_data(cfg, 0)
    state, _ = train(cfg, data)
    metrics = flow.evaluate(state, data, cfg, 1)
    assert metrics["bins_covered"] >= 24
    assert metrics["tv"] < 0.4
    assert metrics["mean_error"] < 5.0
