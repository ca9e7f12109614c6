"""GAN: minibatch-discrimination features, batch dependence of the discriminator, update counts, contract."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from athanor.core.config import resolve
from athanor.systems.generative import gan


@pytest.fixture(scope="module")
def tiny():
    return resolve(gan.Config, gan.PRESETS, "tiny")


@pytest.fixture(scope="module")
def data(tiny):
    return gan.load_data(tiny, 0)


def train(cfg, data, seed=0):
    state = gan.init(cfg, seed, data)
    infos = []
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = gan.step(state, data, cfg)
        infos.append(info)
    return state, infos


def brute_force_features(x, T):
    n, _ = x.shape
    m = np.einsum("nf,fok->nok", x, T)
    out = np.zeros((n, T.shape[1]))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i] += np.exp(-np.abs(m[i] - m[j]).sum(axis=-1))
    return out


def test_minibatch_features_match_the_definition():
    rng = np.random.default_rng(0)
    x, T = rng.normal(size=(7, 5)), 0.5 * rng.normal(size=(5, 3, 4))
    got = gan.minibatch_features(jnp.asarray(x, jnp.float32), jnp.asarray(T, jnp.float32))
    np.testing.assert_allclose(got, brute_force_features(x, T), rtol=1e-4, atol=1e-6)


def test_minibatch_features_detect_a_collapsed_batch():
    n = 32
    T = jax.random.normal(jax.random.PRNGKey(0), (64, 8, 4))
    collapsed = jnp.tile(jax.random.normal(jax.random.PRNGKey(1), (1, 64)), (n, 1))
    spread = jax.random.normal(jax.random.PRNGKey(2), (n, 64))
    f_collapsed = gan.minibatch_features(collapsed, T)
    f_spread = gan.minibatch_features(spread, T)
    assert f_collapsed.shape == (n, 8)
    np.testing.assert_allclose(f_collapsed, n - 1.0, rtol=1e-6)  # every other member at distance 0
    assert float(f_spread.max()) < 0.05 * (n - 1)
    assert float(f_spread.min()) >= 0.0


@pytest.mark.parametrize("minibatch", [False, True])
def test_discriminator_batch_dependence(minibatch):
    d = gan.Discriminator(minibatch)
    images = jax.random.uniform(jax.random.PRNGKey(0), (6, 28, 28, 3))
    params = d.init(jax.random.PRNGKey(1), images)["params"]
    assert ("T" in params) == minibatch
    changed = images.at[5].set(jax.random.uniform(jax.random.PRNGKey(2), (28, 28, 3)))
    before, after = d.apply({"params": params}, images), d.apply({"params": params}, changed)
    assert before.shape == (6,)
    others_moved = float(jnp.max(jnp.abs(before[:5] - after[:5])))
    if minibatch:
        assert others_moved > 1e-6
    else:
        assert others_moved == 0.0
    perm = jnp.array([3, 0, 5, 1, 4, 2])  # a batch is a set: permuting it permutes the logits
    np.testing.assert_allclose(d.apply({"params": params}, images[perm]), before[perm], rtol=1e-5, atol=1e-6)


def test_non_saturating_generator_loss(tiny, data):
    """L_G = mean -log sigmoid(D(G(z))) on the same noise the loss draws."""
    state = gan.init(tiny, 0, data)
    key = jax.random.PRNGKey(3)
    fake = gan.common.Generator().apply(
        {"params": state.g_params}, jax.random.normal(key, (tiny.batch_size, tiny.noise_dim))
    )
    logits = np.asarray(gan.discriminator(tiny).apply({"params": state.d_params}, fake), np.float64)
    expected = np.mean(np.log1p(np.exp(-logits)))
    got = float(jax.jit(gan.generator_loss, static_argnames="cfg")(state.g_params, state.d_params, tiny, key))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("minibatch", [False, True])
def test_tiny_contract_determinism_and_update_counts(tiny, data, minibatch):
    cfg = dataclasses.replace(tiny, minibatch=minibatch)
    state, infos = train(cfg, data)
    assert all(np.isfinite(float(i["loss"])) and np.isfinite(float(i["d_loss"])) for i in infos)
    # one iteration = g_steps generator updates, then one discriminator update
    assert int(state.g_opt[0].count) == cfg.steps * cfg.g_steps
    assert int(state.d_opt[0].count) == cfg.steps
    again, _ = train(cfg, data)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(again), strict=True):
        assert np.array_equal(a, b)
    metrics = gan.evaluate(state, data, cfg, 1)
    assert all(type(v) is float for v in metrics.values())
    assert {"tv", "bins_covered", "mean_error", "d_real", "d_fake"} <= set(metrics)
    art = gan.artifacts(state, data, cfg, 1)
    assert art["samples"].dtype == np.uint8 and art["frequency"].values.shape == (6, 5)
    restored = serialization.from_bytes(gan.init(cfg, 9, data), serialization.to_bytes(state))
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(restored), strict=True):
        assert np.array_equal(a, b)


def test_defaults_follow_the_source():
    cfg = gan.Config()
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.d_lr, cfg.g_steps, cfg.noise_dim) == (
        29_000,
        128,
        3e-4,
        6e-5,
        5,
        16,
    )
    assert not cfg.minibatch and (cfg.mbd_outputs, cfg.mbd_kernels) == (8, 4)
    for name in ("tiny", "quick", "full"):
        resolve(gan.Config, gan.PRESETS, name)
    assert resolve(gan.Config, gan.PRESETS, "tiny", experiment={"minibatch": True}).minibatch
