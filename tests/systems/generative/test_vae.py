"""VAE: the analytic Gaussian KL against Monte Carlo and calculus, element- vs batch-wise KL, the contract."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization
from scipy.stats import norm

from athanor.core.config import resolve
from athanor.systems.generative import vae


@pytest.fixture(scope="module")
def tiny():
    return resolve(vae.Config, vae.PRESETS, "tiny")


@pytest.fixture(scope="module")
def data(tiny):
    return vae.load_data(tiny, 0)


def train(cfg, data, seed=0):
    state = vae.init(cfg, seed, data)
    infos = []
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = vae.step(state, data, cfg)
        infos.append(info)
    return state, infos


@pytest.mark.parametrize("mu", [-1.5, 0.0, 0.7, 2.0])
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_gaussian_kl_matches_monte_carlo(mu, sigma):
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated with 200k draws z ~ q = N(mu, sigma^2)."""
    z = mu + sigma * np.random.default_rng(0).standard_normal(200_000)
    log_ratio = norm.logpdf(z, mu, sigma) - norm.logpdf(z)  # float64 densities, independent of the code
    estimate, stderr = log_ratio.mean(), log_ratio.std() / np.sqrt(z.size)
    analytic = float(vae.gaussian_kl(jnp.float32(mu), jnp.float32(np.log(sigma**2))))
    assert abs(analytic - estimate) <= 3 * stderr + 1e-5


def test_gaussian_kl_zero_at_prior_and_nonnegative():
    assert float(vae.gaussian_kl(jnp.float32(0.0), jnp.float32(0.0))) == 0.0
    mu, logvar = jnp.meshgrid(jnp.linspace(-3, 3, 41), jnp.linspace(-4, 4, 41))
    kl = vae.gaussian_kl(mu, logvar)
    assert kl.shape == mu.shape  # elementwise, not summed
    assert float(kl.min()) >= 0.0
    off = (jnp.abs(mu) > 1e-3) | (jnp.abs(logvar) > 1e-3)
    assert float(jnp.min(jnp.where(off, kl, jnp.inf))) > 0.0


@pytest.mark.parametrize("mu,sigma", [(0.0, 1.0), (1.3, 0.4), (-2.0, 2.2)])
def test_gaussian_kl_gradients(mu, sigma):
    """Post 06: d/dmu = mu and d/dsigma = sigma - 1/sigma (for KL written in terms of sigma)."""

    def kl_of_sigma(m, s):
        return vae.gaussian_kl(m, jnp.log(s**2))

    g_mu, g_sigma = jax.grad(kl_of_sigma, argnums=(0, 1))(jnp.float32(mu), jnp.float32(sigma))
    assert float(g_mu) == pytest.approx(mu, abs=1e-6)
    assert float(g_sigma) == pytest.approx(sigma - 1.0 / sigma, abs=1e-5)


def test_batch_kl_blind_to_informative_codes():
    """Narrow per-example posteriors spread like N(0, 1): batch-wise KL ~ 0, element-wise KL large."""
    k_mu, k_eps = jax.random.split(jax.random.PRNGKey(0))
    mu = jax.random.normal(k_mu, (8192, 16))  # each example encodes a distinct code
    logvar = jnp.full_like(mu, np.log(0.01))  # sigma = 0.1
    z = mu + 0.1 * jax.random.normal(k_eps, mu.shape)
    batch = vae.batch_kl(z)
    assert batch.shape == (16,)
    assert float(jnp.max(batch)) < 0.01
    element = jnp.mean(vae.gaussian_kl(mu, logvar))
    # 0.5 * (-log 0.01 - 1 + 0.01 + E[mu^2]) = 0.5 * (4.605 - 0.99 + 1) ~ 2.31 per dimension
    assert float(element) == pytest.approx(2.31, abs=0.05)
    # and the batch fit does see a batch that is off the prior
    assert float(jnp.mean(vae.batch_kl(0.2 * z + 1.0))) > 0.5


def test_loss_weighting_matches_the_source(tiny, data):
    """loss = mean 0.5 * squared error + kl_weight * (mean KL over batch and latent dims)."""
    state = vae.init(tiny, 0, data)
    images = vae.common.draw_batch(jax.random.PRNGKey(1), data, 32)
    key = jax.random.PRNGKey(2)
    loss_fn = jax.jit(vae.loss_fn, static_argnames="cfg")
    loss0, parts0 = loss_fn(state.params, dataclasses.replace(tiny, kl_weight=0.0), images, key)
    loss1, parts1 = loss_fn(state.params, dataclasses.replace(tiny, kl_weight=0.5), images, key)
    assert float(loss0) == pytest.approx(float(parts0["recon"]), rel=1e-6)
    assert float(loss1 - loss0) == pytest.approx(0.5 * float(parts1["kl_term"]), rel=1e-4)
    mu, logvar = vae.Encoder(tiny.latent_dim).apply({"params": state.params["encoder"]}, images)
    assert float(parts1["kl_term"]) == pytest.approx(float(jnp.mean(vae.gaussian_kl(mu, logvar))), rel=1e-5)
    assert 0.0 < float(parts0["recon"]) < 0.5  # 0.5 * squared error of values in [0, 1]


@pytest.mark.parametrize("kl_mode", ["element", "batch"])
def test_tiny_contract_and_determinism(tiny, data, kl_mode):
    cfg = dataclasses.replace(tiny, kl_mode=kl_mode)
    state, infos = train(cfg, data)
    assert all(np.isfinite(float(i["loss"])) for i in infos)
    again, _ = train(cfg, data)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(again), strict=True):
        assert np.array_equal(a, b)
    metrics = vae.evaluate(state, data, cfg, 1)
    assert all(type(v) is float for v in metrics.values())
    assert {"tv", "bins_covered", "mean_error", "kl", "recon_mse", "z_mean_abs", "z_var"} <= set(metrics)
    assert metrics["kl"] >= 0.0 and metrics["z_var"] > 0.0
    art = vae.artifacts(state, data, cfg, 1)
    assert art["samples"].dtype == np.uint8 and art["frequency"].values.shape == (6, 5)
    restored = serialization.from_bytes(vae.init(cfg, 9, data), serialization.to_bytes(state))
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored), strict=True):
        assert np.array_equal(a, b)


def test_defaults_follow_the_source():
    cfg = vae.Config()
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.kl_weight, cfg.latent_dim) == (100_000, 64, 3e-4, 0.01, 16)
    assert cfg.kl_mode == "element"
    for name in ("tiny", "quick", "full"):
        resolve(vae.Config, vae.PRESETS, name)


@pytest.mark.slow
def test_batch_kl_training_keeps_informative_posteriors(tiny, data):
    """Post 06's point, trained: batch-wise KL lets each posterior stay narrow (large element-wise KL)
    while the aggregate codes still look like N(0, 1)."""
    results = {}
    for mode in ("element", "batch"):
        cfg = dataclasses.replace(tiny, steps=4000, inner_steps=1000, kl_mode=mode, eval_samples=1280)
        state, _ = train(cfg, data)
        results[mode] = vae.evaluate(state, data, cfg, 3)
    assert results["batch"]["kl"] > 2.0 * results["element"]["kl"]
    assert results["batch"]["posterior_std"] < results["element"]["posterior_std"]
    assert abs(results["batch"]["z_var"] - 1.0) < 0.3
