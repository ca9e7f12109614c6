"""Diffusion: schedule, forward marginals, the DDPM posterior against Bayes, the samplers, the contract."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from athanor.core.config import resolve
from athanor.systems.generative import common, diffusion

T, BETA_1, BETA_T = 300, 1e-4, 0.02


@pytest.fixture(scope="module")
def schedule():
    return diffusion.make_schedule(T, BETA_1, BETA_T)


@pytest.fixture(scope="module")
def small():
    tiny = resolve(diffusion.Config, diffusion.PRESETS, "tiny")
    return dataclasses.replace(tiny, timesteps=40, eval_samples=64, eval_batch=32)


@pytest.fixture(scope="module")
def data(small):
    return diffusion.load_data(small, 0)


def train(cfg, data, seed=0):
    state = diffusion.init(cfg, seed, data)
    infos = []
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = diffusion.step(state, data, cfg)
        infos.append(info)
    return state, infos


def test_schedule_is_linear_beta_and_cumulative_product(schedule):
    beta = np.linspace(BETA_1, BETA_T, T)
    abar = np.cumprod(1.0 - beta)
    np.testing.assert_allclose(schedule.beta, beta, rtol=1e-6)
    np.testing.assert_allclose(schedule.alpha, 1.0 - beta, rtol=1e-6)
    np.testing.assert_allclose(schedule.abar, abar, rtol=1e-5)
    np.testing.assert_allclose(schedule.abar_prev, np.concatenate([[1.0], abar[:-1]]), rtol=1e-5)
    # The source's short schedule does not reach pure noise: abar_{T-1} = 0.048.
    assert float(schedule.abar[-1]) == pytest.approx(0.0481, abs=2e-4)


@pytest.mark.parametrize("t", [0, 30, 120, 299])
def test_q_sample_marginal_mean_and_variance(schedule, t):
    n = 200_000
    x0 = jnp.array([0.4, -0.3, 0.0])  # three "pixels", each replicated n times
    noise = jax.random.normal(jax.random.PRNGKey(t), (n, 3))
    x_t = np.asarray(
        diffusion.q_sample(jnp.broadcast_to(x0, (n, 3)), jnp.full((n,), t), noise, schedule), np.float64
    )
    abar = float(np.cumprod(1.0 - np.linspace(BETA_1, BETA_T, T))[t])
    var = 1.0 - abar
    se_mean, se_var = np.sqrt(var / n), var * np.sqrt(2.0 / n)
    np.testing.assert_allclose(x_t.mean(0), np.sqrt(abar) * np.asarray(x0), atol=5 * se_mean)
    np.testing.assert_allclose(x_t.var(0), var, atol=5 * se_var)


def test_q_sample_original_noise_scale(schedule):
    """The original release scaled the noise by (1 - abar), not sqrt(1 - abar)."""
    x0, noise, t = jnp.full((4, 2), 0.3), jnp.ones((4, 2)), jnp.array([0, 10, 100, 299])
    abar = np.broadcast_to(np.asarray(schedule.abar)[np.asarray(t)][:, None], (4, 2))
    np.testing.assert_allclose(
        diffusion.q_sample(x0, t, noise, schedule, original=True),
        np.sqrt(abar) * 0.3 + (1.0 - abar),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        diffusion.q_sample(x0, t, noise, schedule), np.sqrt(abar) * 0.3 + np.sqrt(1.0 - abar), rtol=1e-5
    )


@pytest.mark.parametrize("t", [1, 5, 80, 299])
@pytest.mark.parametrize("x0,x_t", [(0.4, 0.1), (-0.5, 1.7), (0.0, -2.0)])
def test_posterior_equals_bayes_on_scalars(schedule, t, x0, x_t):
    """q(x_{t-1} | x_t, x0) ~ q(x_t | x_{t-1}) q(x_{t-1} | x0): product of two Gaussians in x_{t-1}."""
    beta = np.linspace(BETA_1, BETA_T, T)
    abar = np.cumprod(1.0 - beta)
    prior_mean, prior_var = np.sqrt(abar[t - 1]) * x0, 1.0 - abar[t - 1]  # q(x_{t-1} | x0)
    # q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t), as a likelihood in x_{t-1}
    precision = 1.0 / prior_var + (1.0 - beta[t]) / beta[t]
    mean = (prior_mean / prior_var + np.sqrt(1.0 - beta[t]) * x_t / beta[t]) / precision
    got_mean, got_var = diffusion.q_posterior(jnp.float32(x0), jnp.float32(x_t), jnp.int32(t), schedule)
    assert float(got_mean) == pytest.approx(mean, rel=1e-4, abs=1e-5)
    assert float(got_var) == pytest.approx(1.0 / precision, rel=1e-4)


def test_posterior_matches_simulated_joint(schedule):
    """Simulate x_{t-1} | x0 then x_t | x_{t-1}; regressing x_{t-1} on x_t recovers the posterior."""
    t, x0, n = 60, 0.35, 400_000
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    prev = diffusion.q_sample(
        jnp.full((n,), x0), jnp.full((n,), t - 1), jax.random.normal(k1, (n,)), schedule
    )
    cur = jnp.sqrt(schedule.alpha[t]) * prev + jnp.sqrt(schedule.beta[t]) * jax.random.normal(k2, (n,))
    prev, cur = np.asarray(prev, np.float64), np.asarray(cur, np.float64)
    slope, intercept = np.polyfit(cur, prev, 1)
    residual_var = np.var(prev - (slope * cur + intercept))
    assert slope == pytest.approx(float(schedule.posterior_coef_xt[t]), rel=0.01)
    assert intercept == pytest.approx(float(schedule.posterior_coef_x0[t]) * x0, abs=0.003)
    assert residual_var == pytest.approx(float(schedule.posterior_var[t]), rel=0.01)


def test_last_posterior_step_returns_x0(schedule):
    mean, var = diffusion.q_posterior(jnp.float32(0.27), jnp.float32(-1.3), jnp.int32(0), schedule)
    assert float(mean) == pytest.approx(0.27, abs=1e-6)
    assert float(var) == 0.0


def test_ddpm_sampler_with_exact_denoiser_on_1d_gaussian(schedule):
    """Data N(m, s^2): E[x0 | x_t] is linear, so the sampler's output law is a computable Gaussian."""
    m, s, n = 0.3, 0.15, 200_000
    abar = np.asarray(schedule.abar, np.float64)

    def gain(t):
        a = np.sqrt(abar[t])
        return a * s**2 / (a**2 * s**2 + 1.0 - abar[t])

    def denoise(x, t):
        a, g = jnp.sqrt(schedule.abar[t]), jnp.asarray(gain(np.arange(T)), jnp.float32)[t]
        return m + g * (x - a * m)

    out, x0_hats = diffusion.ddpm_sample(
        denoise, jax.random.normal(jax.random.PRNGKey(0), (n,)), jax.random.PRNGKey(1), schedule, clip=None
    )
    assert x0_hats.shape == (T, n)
    # Propagate mean and variance through the linear-Gaussian steps, t = T-1 .. 0, from N(0, 1).
    mu, var = 0.0, 1.0
    c0, ct, pv = (
        np.asarray(v, np.float64)
        for v in (schedule.posterior_coef_x0, schedule.posterior_coef_xt, schedule.posterior_var)
    )
    for t in range(T - 1, -1, -1):
        slope = c0[t] * gain(t) + ct[t]
        mu, var = slope * mu + c0[t] * (m - gain(t) * np.sqrt(abar[t]) * m), slope**2 * var + pv[t]
    out = np.asarray(out, np.float64)
    assert out.mean() == pytest.approx(mu, abs=4 * np.sqrt(var / n))
    assert out.std() == pytest.approx(np.sqrt(var), rel=0.01)
    # ... and that law is close to the data: exact mean, std within the fixed-variance sampler's 5%.
    assert mu == pytest.approx(m, abs=1e-3)
    assert np.sqrt(var) == pytest.approx(s, rel=0.05)


def test_ddpm_sampler_clips_x0_prediction(schedule):
    out, x0_hats = diffusion.ddpm_sample(
        lambda x, t: 3.0 * jnp.ones_like(x), jnp.zeros((5,)), jax.random.PRNGKey(0), schedule, clip=0.5
    )
    assert float(jnp.max(x0_hats)) == 0.5
    np.testing.assert_allclose(out, 0.5)  # the last step returns the (clipped) x0 prediction


def test_original_sampler_update():
    """k = T .. 1, schedule index clamped to T-1, x <- (x - beta/sqrt(1-abar) (x - f)) / alpha + var z."""
    sched = diffusion.make_schedule(4, 0.1, 0.3)
    x_last, key = jnp.array([0.8, -0.2]), jax.random.PRNGKey(3)
    seen = []

    def denoise(x, k):
        seen.append(k)
        return 0.5 * x + 0.01 * k

    out, _ = diffusion.original_sample(denoise, x_last, key, sched)
    beta, alpha, abar = (np.asarray(v, np.float64) for v in (sched.beta, sched.alpha, sched.abar))
    post_var = np.asarray(sched.posterior_var, np.float64)
    x = np.asarray(x_last, np.float64)
    for i, k in enumerate(range(4, 0, -1)):
        c = min(k, 3)
        z = np.asarray(jax.random.normal(jax.random.split(key, 4)[i], x.shape), np.float64)
        e = x - (0.5 * x + 0.01 * k)
        x = (x - beta[c] / np.sqrt(1.0 - abar[c]) * e) / alpha[c] + post_var[c] * z
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-6)


def test_matched_prior_has_the_moments_of_the_last_noised_marginal(schedule, data, small):
    """x_{T-1} of real images, pooled over pixels, has the prior's mean and variance (init's estimates)."""
    state = diffusion.init(small, 0, data)
    x0 = common.draw_batch(jax.random.PRNGKey(1), data, 4096) - diffusion.DATA_SHIFT
    assert float(state.data_mean) == pytest.approx(float(jnp.mean(x0)), abs=0.003)
    assert float(state.data_var) == pytest.approx(float(jnp.var(x0)), rel=0.02)
    t = jnp.full((x0.shape[0],), T - 1)
    x_last = np.asarray(
        diffusion.q_sample(x0, t, jax.random.normal(jax.random.PRNGKey(2), x0.shape), schedule)
    )
    mean, std = diffusion.prior_moments(schedule, state.data_mean, state.data_var)
    assert float(mean) == pytest.approx(x_last.mean(), abs=0.002)
    assert float(std) == pytest.approx(x_last.std(), rel=0.005)
    assert float(mean) < -0.09  # the background pulls the marginal well below N(0, I)'s mean


def test_time_features():
    f = diffusion.time_features(jnp.array([0.0, 1.0, 0.25]))
    assert f.shape == (3, diffusion.N_TIME_FEATURES)
    np.testing.assert_allclose(f[0], 0.0)
    assert float(f[1, 4]) == pytest.approx(1.0)  # s = 1, i = 4: sin(pi / 2)
    assert float(f[2, 5]) == pytest.approx(np.sin(np.pi / 4), rel=1e-6)  # s = 1/4, i = 5: sin(pi/2 * 1/4 * 2)


def test_tiny_contract_and_determinism(small, data):
    state, infos = train(small, data)
    assert all(np.isfinite(float(i["loss"])) for i in infos)
    metrics = diffusion.evaluate(state, data, small, 1)
    assert all(type(v) is float for v in metrics.values())
    assert {"tv", "bins_covered", "mean_error"} <= set(metrics)
    arts = diffusion.artifacts(state, data, small, 1)
    assert {"samples", "frequency", "error", "frequency_true", "denoising"} <= set(arts)
    assert arts["denoising"].dtype == np.uint8 and arts["denoising"].ndim == 3

    again, _ = train(small, data)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    restored = serialization.from_bytes(
        diffusion.init(small, 9, data), serialization.to_bytes(state)
    )
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)


def test_original_sampler_flag(small, data):
    """original_sampler switches both the training noise and the sampler; samples stay in [0, 1]."""
    cfg = dataclasses.replace(small, original_sampler=True)
    state = diffusion.init(cfg, 0, data)
    x0 = common.draw_batch(jax.random.PRNGKey(1), data, 16) - diffusion.DATA_SHIFT
    assert np.isfinite(
        float(jax.jit(diffusion.loss_fn, static_argnums=1)(state.params, cfg, x0, jax.random.PRNGKey(2)))
    )
    x = np.asarray(diffusion.sample(state, cfg, jax.random.PRNGKey(0), 8))
    assert x.shape == (8, 28, 28, 3) and x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.slow
def test_quick_preset_learns_clean_digits_in_every_bin():
    """At the quick scale (10k updates) the matched-prior sampler draws clean digits across the bins."""
    cfg = resolve(diffusion.Config, diffusion.PRESETS, "quick")
    data = diffusion.load_data(cfg, 0)
    state, _ = train(cfg, data)
    metrics = diffusion.evaluate(state, data, cfg, 1)
    assert metrics["bins_covered"] >= 24
    assert metrics["tv"] < 0.45
    assert metrics["mean_error"] < 10.0


def test_final_equals_evaluate_plus_artifacts():


    cfg = resolve(diffusion.Config, diffusion.PRESETS, "tiny")
    data = diffusion.load_data(cfg, 0)
    state = diffusion.init(cfg, 0, data)
    metrics, arts = diffusion.final(state, data, cfg, 5)
    assert metrics == diffusion.evaluate(state, data, cfg, 5)
    sep = diffusion.artifacts(state, data, cfg, 5)
    assert set(arts) == set(sep)
    np.testing.assert_array_equal(arts["samples"], sep["samples"])
    np.testing.assert_array_equal(arts["denoising"], sep["denoising"])
