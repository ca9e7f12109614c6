"""The StampCA systems around the NCA: seed cells, the sample pool, damage, worlds and interference, the GAN stages."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.core.errors import ConfigError
from athanor.systems.stampca import autoencoder as A
from athanor.systems.stampca import mnist_gan as M
from athanor.systems.stampca import nca, worlds


def _tiny(module, **over):
    return dataclasses.replace(module.Config(), **{**module.PRESETS["tiny"], **over})


def _started(module):
    """(tiny config, data, initial state) of a system."""
    cfg = _tiny(module)
    data = module.load_data(cfg, 0)
    return cfg, data, module.init(cfg, 0, data)


@pytest.fixture(scope="module")
def emoji():
    return _started(A)


def test_seed_cell_is_opaque_with_the_code_in_the_hidden_channels(emoji):
    cfg, data, state = emoji
    targets = data["images"][:3]
    s = A.seeds(state.params, cfg, targets)
    assert s.shape == (3, cfg.channels)
    np.testing.assert_array_equal(s[:, :4], np.tile([0.0, 0.0, 0.0, 1.0], (3, 1)))
    code = A.Encoder(cfg.channels - 4).apply({"params": state.params["encoder"]}, targets)
    np.testing.assert_array_equal(s[:, 4:], code)
    x = nca.centred(s, (A.SIZE, A.SIZE))
    assert int(jnp.count_nonzero(jnp.any(x != 0, axis=-1))) <= 3  # one seed cell per world (a zero code aside)
    np.testing.assert_array_equal(x[:, 16, 16], s)


def test_untrained_model_grows_nothing_so_its_error_is_the_empty_worlds(emoji):
    cfg, data, state = emoji
    targets = data["images"][:2]
    x = A.grow_from(state.params, cfg, targets, jax.random.PRNGKey(0), cfg.grow_max)  # zero-initialised rule
    np.testing.assert_array_equal(x, nca.centred(A.seeds(state.params, cfg, targets), (A.SIZE, A.SIZE)))
    empty = jnp.zeros_like(targets).at[:, 16, 16, 3].set(1.0)
    np.testing.assert_allclose(nca.visible_mse(x, targets), jnp.mean((empty - targets) ** 2, axis=(1, 2, 3)),
                               rtol=1e-6)


def test_constant_baseline_is_the_training_mean(emoji):
    _, data, _ = emoji
    train = data["images"][data["train"]]
    np.testing.assert_allclose(data["constant"], train.mean(axis=0), rtol=1e-6)
    # the mean minimises the summed squared error over the training emoji among constant images
    base = float(jnp.sum((train - data["constant"]) ** 2))
    for delta in (0.01, -0.01):
        assert float(jnp.sum((train - (data["constant"] + delta)) ** 2)) > base


def test_pool_gives_fresh_seeds_to_the_worst_worlds_and_damages_the_best(emoji):
    cfg, data, state = emoji
    cfg = dataclasses.replace(cfg, batch_size=4, pool_size=4, pool_fresh=1, damage=1)
    # pool worlds with known errors: world i is the target plus i * 0.1 everywhere
    t = data["train"][:4]
    targets = data["images"][t]
    pool = jnp.ones((4, A.SIZE, A.SIZE, cfg.channels)).at[..., :4].set(  # error of world i: (0.1 i)^2
        targets + 0.1 * jnp.arange(4.0)[:, None, None, None])
    st = state.replace(pool_x=pool, pool_t=t)
    slots, start, new_t, fresh = A._draw_batch(st, data, cfg, jax.random.PRNGKey(1))
    assert int(slots[0]) == 3  # the worst world first ...
    assert bool(fresh[0]) and not bool(fresh[1:].any())  # ... gets the fresh seed
    np.testing.assert_array_equal(start[0], 0.0)
    assert int(slots[-1]) == 0  # the best world is the damaged one
    assert float(jnp.mean(start[-1][..., 4] == 0)) > 0.02  # the hidden channels were all 1: the disc shows
    np.testing.assert_array_equal(start[1:3], pool[np.asarray(slots[1:3])])
    np.testing.assert_array_equal(new_t[1:], t[np.asarray(slots[1:])])


def test_step_writes_grown_worlds_back_into_the_pool(emoji):
    cfg, data, state = emoji
    new, info = A.step(state, data, cfg)
    assert np.isfinite(float(info["loss"]))
    assert cfg.grow_min <= float(info["grow_steps"]) <= cfg.grow_max
    assert new.pool_x.shape == state.pool_x.shape
    assert bool(jnp.any(new.pool_x != state.pool_x))
    assert set(np.asarray(new.pool_t).tolist()) <= set(np.asarray(data["train"]).tolist())


def test_damage_cuts_a_disc_and_nothing_else():
    x = jnp.ones((3, A.SIZE, A.SIZE, 5))
    cut = A.damage_disc(x, jax.random.PRNGKey(2))
    for world in np.asarray(cut[..., 0]):
        hole = np.argwhere(world == 0)
        assert 9 <= len(hole) <= 220  # a disc of radius 3-8 cells
        centre = hole.mean(axis=0)
        radius = np.hypot(*(hole - centre).T).max()
        assert np.all(np.hypot(*(np.argwhere(world == 1) - centre).T) >= radius - 1.0)  # convex: nothing else cut


def test_spread_covers_the_whole_index_range():
    idx = jnp.arange(100, 200)
    np.testing.assert_array_equal(A.spread(idx, 5), [100, 125, 150, 174, 199])
    np.testing.assert_array_equal(A.spread(idx, 0), idx)


@pytest.mark.parametrize("module, over, match", [
    (A, {"grow_min": 9, "grow_max": 6}, "grow_min"),
    (A, {"pool_size": 1, "batch_size": 2}, "pool_size"),
    (M, {"gan_steps": 6, "steps": 6}, "gan_steps"),
    (M, {"gan_steps": 3, "inner_steps": 2}, "multiple"),
    (M, {"latent_dim": 5, "channels": 8}, "latent_dim"),
])
def test_bad_configs_are_named(module, over, match):
    with pytest.raises(ConfigError, match=match):
        module._check(_tiny(module, **over))


# ------------------------------------------------------------------------------------------------------ worlds


def test_layouts():
    pos, shape = worlds.grid_layout(2, 3, 10, 16)
    assert shape == (42, 52)
    np.testing.assert_array_equal(pos, [[16, 16], [16, 26], [16, 36], [26, 16], [26, 26], [26, 36]])
    path = worlds.path_layout(np.array([[0, 0], [0, 10], [10, 10]]), spacing=5)
    np.testing.assert_array_equal(path, [[0, 0], [0, 5], [0, 10], [5, 10], [10, 10]])
    rng = np.random.default_rng(0)
    pts = worlds.random_layout(20, (100, 100), 15.0, 10, rng)
    assert 1 <= len(pts) <= 20 and np.all((pts >= 10) & (pts < 90))
    d = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
    assert np.all(d[~np.eye(len(pts), dtype=bool)] >= 15.0)
    ring = worlds.path_layout(worlds.circle_points((50, 50), 20), spacing=2 * np.pi * 20 / 8)[:8]
    np.testing.assert_allclose(np.hypot(*(ring - 50).T), 20, atol=1.0)


def _grower(channels=6, scale=0.0):
    rule = nca.UpdateRule(channels, hidden=8)
    params = rule.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 1, 3 * channels)))["params"]
    params = jax.tree_util.tree_map(lambda p: p + scale, params)

    def seed_fn(codes):
        return jnp.concatenate([jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0]), (codes.shape[0], 4)),
                                codes.reshape(codes.shape[0], -1)[:, : channels - 4]], axis=-1)

    return worlds.Grower(seed_fn, rule, params, 0.5)


def test_interference_is_nil_for_an_inert_rule_once_windows_stop_overlapping():
    targets = jax.random.uniform(jax.random.PRNGKey(3), (9, 8, 8, 4))
    curve = worlds.interference_curve(_grower(), targets, 3, jax.random.PRNGKey(4), size=8, spacings=(4, 8, 12))
    m = curve.metrics()
    assert set(m) == {f"{k}_mse_d{d}" for k in ("world", "alone") for d in (4, 8, 12)}
    for d in (8, 12):  # windows do not overlap: with a rule that does nothing, the neighbours change nothing
        assert m[f"world_mse_d{d}"] == m[f"alone_mse_d{d}"]
    assert m["world_mse_d4"] != m["alone_mse_d4"]  # overlapping windows hold the neighbours' seeds


def test_a_live_rule_interferes_only_within_its_light_cone():
    grower = _grower(scale=0.05)
    steps, size = 3, 8
    targets = jax.random.uniform(jax.random.PRNGKey(5), (4, size, size, 4))
    far = size + 2 * 2 * steps + 1  # beyond twice the 2-per-step light cone plus the window
    curve = worlds.interference_curve(grower, targets, steps, jax.random.PRNGKey(6), size=size, spacings=(far,))
    assert curve.world == curve.alone
    assert curve.figure().ndim == 3


# --------------------------------------------------------------------------------------------------- MNIST route


@pytest.fixture(scope="module")
def mnist():
    return _started(M)


def test_mnist_seed_holds_the_latent_itself(mnist):
    cfg, _, _ = mnist
    z = jnp.arange(2 * cfg.latent_dim, dtype=jnp.float32).reshape(2, -1)
    s = M.seeds(cfg, z)
    assert s.shape == (2, cfg.channels)
    np.testing.assert_array_equal(s[:, :4], [[0, 0, 0, 1]] * 2)
    np.testing.assert_array_equal(s[:, 4:4 + cfg.latent_dim], z)
    np.testing.assert_array_equal(s[:, 4 + cfg.latent_dim:], 0.0)


def test_ink_is_black_on_white():
    ink = jnp.array([[[0.0, 1.0, 0.25]]])
    rgba = M.ink_to_rgba(ink)
    np.testing.assert_array_equal(rgba[..., :3], 0.0)
    np.testing.assert_array_equal(rgba[..., 3], ink)
    np.testing.assert_allclose(nca.render(rgba)[0, 0, :, 0], [1.0, 0.0, 0.75])


def test_stages_train_only_their_own_networks(mnist):
    cfg, data, state = mnist
    s1, _ = M.step(state, data, cfg)  # stage 1: the GAN
    assert int(s1.updates) == cfg.inner_steps
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), s1.rule, state.rule))
    assert not bool(jnp.all(s1.gen["Dense_0"]["kernel"] == state.gen["Dense_0"]["kernel"]))
    s2 = s1
    while int(s2.updates) < cfg.gan_steps:
        s2, _ = M.step(s2, data, cfg)
    s3, info = M.step(s2, data, cfg)  # stage 2: the NCA, with the generator frozen
    assert "grow_steps" in info
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), s3.gen, s2.gen))
    assert not bool(jnp.all(s3.rule["Dense_1"]["kernel"] == s2.rule["Dense_1"]["kernel"]))


def test_scores_on_known_histograms():
    uniform = np.eye(10)[np.arange(100) % 10]  # confident and evenly spread
    s = M._scores(uniform, "x")
    assert s["x_confidence"] == pytest.approx(1.0)
    assert s["x_class_entropy"] == pytest.approx(np.log2(10))
    collapsed = np.full((50, 10), 0.1)
    s = M._scores(collapsed, "x")
    assert s["x_confidence"] == pytest.approx(0.1) and s["x_class_entropy"] == 0.0
    assert str(s["x_class_entropy"]) == "0.0"


def test_classifier_is_cached_and_reads_real_digits(mnist):
    _, data, _ = mnist
    again, acc = M.train_classifier(_tiny(M).classifier_steps)
    assert again is data["classifier"]
    assert acc == pytest.approx(float(data["classifier_accuracy"]))
    assert acc > 0.5  # 20 updates already beat chance (0.1) by far


# ------------------------------------------------------------------------------------------- learning (slow)


def _train(module, cfg):
    data = module.load_data(cfg, 0)
    state = module.init(cfg, 0, data)
    for _ in range(cfg.steps // cfg.inner_steps):
        state, _ = module.step(state, data, cfg)
    return state, data


@pytest.mark.slow
def test_emoji_learning_grows_a_design():
    """One emoji, 240 updates without a pool: the grown emoji is far closer to its target than an empty world.
    (Growing NCAs learn slowly: the growing-NCA reference trains 8,000 updates for one design.)"""
    cfg = dataclasses.replace(A.Config(), steps=240, inner_steps=20, pool_size=0, max_emoji=1, eval_emoji=1,
                              lr_decay_at=1.0)
    state, data = _train(A, cfg)
    m = A.evaluate(state, data, cfg, 0)
    empty = float(jnp.mean(data["images"][data["train"]] ** 2))
    assert m["train_mse"] < 0.5 * empty, (m, empty)


@pytest.mark.slow
def test_mnist_route_learns_digits_and_grows_them():
    """5,000 GAN updates give varied digits; 300 NCA updates already halve the error of an empty world."""
    cfg = dataclasses.replace(M.Config(), steps=5_300, gan_steps=5_000, inner_steps=50, eval_samples=200)
    state, data = _train(M, cfg)
    m = M.evaluate(state, data, cfg, 0)
    assert m["gan_class_entropy"] > 2.5, m
    z = jax.random.normal(jax.random.PRNGKey(0), (200, cfg.latent_dim))
    empty = float(jnp.mean(M.ink_to_rgba(M.generate(state.gen, z)) ** 2))
    assert m["nca_mse"] < 0.5 * empty, (m, empty)
