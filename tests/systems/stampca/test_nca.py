"""The NCA step against its definition: Sobel stencils, the zero-initialised identity, dead cells, the light cone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.systems.stampca import nca

C = 6


def _rule_params(key, scale: float = 0.3):
    """An update rule with every weight random (the last layer too, so the update is not the identity)."""
    rule = nca.UpdateRule(C, hidden=16)
    params = rule.init(key, jnp.zeros((1, 1, 1, 3 * C)))["params"]
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return rule, jax.tree_util.tree_unflatten(
        tree, [scale * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves, strict=True)])


def _sobel_by_definition(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation with [[-1,0,1],[-2,0,2],[-1,0,1]] / 8 and its transpose, zero outside the grid, by loops."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8.0
    h, w = grid.shape
    padded = np.pad(grid, 1)
    sx, sy = np.zeros_like(grid), np.zeros_like(grid)
    for i in range(h):
        for j in range(w):
            patch = padded[i:i + 3, j:j + 3]
            sx[i, j] = np.sum(kx * patch)
            sy[i, j] = np.sum(kx.T * patch)
    return sx, sy


def test_perceive_is_identity_and_sobel_by_definition():
    i, j = np.meshgrid(np.arange(5.0), np.arange(7.0), indexing="ij")
    grids = np.stack([3 * i + j ** 2, np.sin(i * j), (i == 2) & (j == 3)], axis=-1).astype(np.float32)  # (5, 7, 3)
    p = np.asarray(nca.perceive(jnp.asarray(grids[None])))[0]  # (5, 7, 9)
    np.testing.assert_array_equal(p[..., :3], grids)
    for c in range(3):
        sx, sy = _sobel_by_definition(grids[..., c].astype(np.float64))
        np.testing.assert_allclose(p[..., 3 + c], sx, atol=1e-5)
        np.testing.assert_allclose(p[..., 6 + c], sy, atol=1e-5)
    # inside a linear ramp 3i + j the normalised stencils give its slopes: 1 along x (columns), 3 along y (rows)
    ramp = np.asarray(nca.perceive(jnp.asarray((3 * i + j)[None, ..., None], jnp.float32)))[0]
    np.testing.assert_allclose(ramp[1:-1, 1:-1, 1], 1.0, atol=1e-5)
    np.testing.assert_allclose(ramp[1:-1, 1:-1, 2], 3.0, atol=1e-5)


def test_zero_initialised_update_is_the_identity():
    rule = nca.UpdateRule(C, hidden=16)
    params = rule.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 1, 3 * C)))["params"]
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 9, 9, C))
    key = jax.random.PRNGKey(2)
    np.testing.assert_array_equal(nca.nca_step(rule, params, x, key, alive_threshold=None), x)
    alive = x.at[..., 3].set(1.0)  # every cell visibly alive: the alive mask keeps all
    np.testing.assert_array_equal(nca.nca_step(rule, params, alive, key), alive)
    np.testing.assert_array_equal(nca.grow(rule, params, alive, key, 5), alive)


def test_dead_cells_stay_dead():
    rule, params = _rule_params(jax.random.PRNGKey(3))
    x = jax.random.normal(jax.random.PRNGKey(4), (1, 12, 12, C))
    x = x.at[..., 3].set(jnp.minimum(x[..., 3], nca.ALIVE_THRESHOLD))  # no cell visibly alive
    y = nca.grow(rule, params, x, jax.random.PRNGKey(5), 4)
    np.testing.assert_array_equal(y, jnp.zeros_like(y))
    # a single live cell: whatever the rule does, nothing beyond its 2-per-step light cone ever comes alive
    x = jnp.zeros((1, 15, 15, C)).at[0, 7, 7, 3].set(1.0)
    y = nca.grow(rule, params, x, jax.random.PRNGKey(6), 2)
    rows, cols = np.nonzero(np.any(np.asarray(y[0]) != 0, axis=-1))
    assert rows.size and max(np.abs(rows - 7).max(), np.abs(cols - 7).max()) <= 2 * 2


def _response(rule, params, x, at, offset, steps, threshold, fire_rate=1.0):
    """Whether cell ``at`` after ``steps`` changes when the cell ``offset`` away from it is perturbed (every cell
    fires at every step by default, so an influence that can arrive does)."""
    key = jax.random.PRNGKey(11)
    other = (at[0] + offset[0], at[1] + offset[1])
    bumped = x.at[0, other[0], other[1]].add(0.7)
    run = lambda w: nca.grow(rule, params, w, key, steps, fire_rate=fire_rate, alive_threshold=threshold)  # noqa: E731
    a, b = run(x)[0, at[0], at[1]], run(bumped)[0, at[0], at[1]]
    return bool(jnp.any(a != b))


@pytest.mark.parametrize("steps", [1, 3])
def test_light_cone(steps):
    rule, params = _rule_params(jax.random.PRNGKey(7))
    x = jax.random.uniform(jax.random.PRNGKey(8), (1, 21, 21, C))
    at = (10, 10)
    # without the alive mask: exactly the cells within Chebyshev distance k matter
    assert _response(rule, params, x, at, (0, steps), steps, None)
    assert _response(rule, params, x, at, (-steps, steps), steps, None)
    assert not _response(rule, params, x, at, (0, steps + 1), steps, None)
    assert not _response(rule, params, x, at, (steps + 1, -steps - 1), steps, None)
    assert not _response(rule, params, x, at, (0, steps + 1), steps, None, fire_rate=0.5)
    # with it the bound is 2k: the second mask reads the neighbours' updated alpha
    for offset in [(0, 2 * steps + 1), (2 * steps + 1, 2 * steps + 1), (-2 * steps - 1, 0)]:
        assert not _response(rule, params, x, at, offset, steps, nca.ALIVE_THRESHOLD)


def test_active_steps_match_a_shorter_rollout():
    rule, params = _rule_params(jax.random.PRNGKey(9), scale=0.1)
    x = jax.random.uniform(jax.random.PRNGKey(10), (2, 8, 8, C))
    key = jax.random.PRNGKey(12)
    got = jax.jit(lambda n: nca.grow(rule, params, x, key, 6, active=n))(4)
    want = x
    for k in jax.random.split(key, 6)[:4]:
        want = nca.nca_step(rule, params, want, k)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    _, frames = nca.grow(rule, params, x, key, 3, frames=True)
    assert frames.shape == (3, 2, 8, 8, 4)


def test_fire_rate_zero_freezes_and_one_updates_every_cell():
    rule, params = _rule_params(jax.random.PRNGKey(13))
    x = jax.random.uniform(jax.random.PRNGKey(14), (1, 6, 6, C)).at[..., 3].set(1.0)
    key = jax.random.PRNGKey(15)
    np.testing.assert_array_equal(nca.nca_step(rule, params, x, key, fire_rate=0.0, alive_threshold=None), x)
    dx = rule.apply({"params": params}, nca.perceive(x))
    np.testing.assert_allclose(nca.nca_step(rule, params, x, key, fire_rate=1.0, alive_threshold=None), x + dx,
                               rtol=1e-6)


def test_stamp_places_each_seed():
    seeds = jnp.arange(3 * C, dtype=jnp.float32).reshape(3, C)
    world = nca.stamp(seeds, [(1, 2), (4, 0), (3, 3)], (6, 5))
    assert world.shape == (1, 6, 5, C)
    np.testing.assert_array_equal(world[0, 4, 0], seeds[1])
    assert int(jnp.count_nonzero(jnp.any(world != 0, axis=-1))) == 3
    with pytest.raises(ValueError, match="3 seeds but 2 positions"):
        nca.stamp(seeds, [(0, 0), (1, 1)], (4, 4))


def test_normalized_gradients_have_unit_norm():
    grads = {"a": jnp.array([3.0, 4.0]), "b": {"c": jnp.full((2, 2), 10.0)}}
    out, _ = nca.normalized_gradients().update(grads, None)
    for leaf in jax.tree_util.tree_leaves(out):
        np.testing.assert_allclose(jnp.linalg.norm(leaf), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out["a"], [0.6, 0.8], rtol=1e-6)


def test_render_composites_premultiplied_rgba_over_white():
    rgba = jnp.array([[0.2, 0.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(nca.render(rgba), [[0.7, 0.5, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], atol=1e-6)
