"""The point room: the point stays in the free space, the wall blocks and the gap lets through, and the Monte Carlo
samplers of the future-state distribution and of values have the right laws."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.envs import pointroom as R

STILL = R.Room(noise_std=0.0)  # deterministic moves, for exact checks


def _move(s, a, room=STILL):
    return np.asarray(R.step(jax.random.PRNGKey(0), jnp.asarray([s], jnp.float32), jnp.asarray([a], jnp.float32),
                             room))[0]


def _segment_hits_wall(s, p, room, n=2001):
    """Brute force: does any of n points along the segment s-p lie in the wall or outside the room?"""
    t = np.linspace(0.0, 1.0, n)[:, None]
    points = jnp.asarray(s[None] + t * (p - s)[None], jnp.float32)
    return bool(np.any(~np.asarray(R.is_free(points, room))))


def test_free_space_membership():
    points = jnp.array([[0.25, 0.5], [0.5, 0.3], [0.5, 0.7], [0.5, 0.9], [0.49, 0.6], [1.2, 0.5], [0.5, 0.0]])
    assert np.asarray(R.is_free(points)).tolist() == [True, False, True, False, False, False, False]


@pytest.mark.parametrize(("s", "a", "expect"), [
    ((0.45, 0.7), (1.0, 0.0), (0.55, 0.7)),  # straight through the gap
    ((0.45, 0.68), (1.0, -0.5), (0.55, 0.63)),  # diagonally through the gap, inside it all the way
    ((0.45, 0.3), (1.0, 0.0), (0.45, 0.3)),  # into the wall below the gap: rejected
    ((0.46, 0.3), (1.0, 0.0), (0.46, 0.3)),  # both ends free, but the segment jumps the wall: rejected
    ((0.45, 0.62), (1.0, -1.0), (0.45, 0.62)),  # clips the lower piece's corner: rejected
    ((0.55, 0.9), (-1.0, 0.0), (0.55, 0.9)),  # into the upper piece from the right: rejected
    ((0.05, 0.5), (-1.0, 0.0), (0.05, 0.5)),  # out of the room: rejected
    ((0.25, 0.5), (0.5, -1.0), (0.30, 0.4)),  # an open move
    ((0.25, 0.5), (3.0, 0.0), (0.35, 0.5)),  # actions are clipped to [-1, 1]
])
def test_moves(s, a, expect):
    np.testing.assert_allclose(_move(s, a), expect, atol=1e-6)


def test_point_never_enters_the_wall_nor_leaves_the_room():
    room = R.Room(step_size=0.3, noise_std=0.05)  # long moves, so many would jump the wall
    key = jax.random.PRNGKey(1)
    s = R.sample_free_states(key, 4000, room)
    assert bool(jnp.all(R.is_free(s, room)))
    a = R.policy(jax.random.fold_in(key, 1), (4000,))
    states = R.rollout(jax.random.fold_in(key, 2), s, a, 40, room)
    assert bool(jnp.all(R.is_free(states, room)))
    # every accepted move's straight path stays in the free space (checked by brute force on a subset)
    before, after = np.asarray(jnp.concatenate([s[None], states[:-1]]))[:, :200], np.asarray(states)[:, :200]
    moved = np.any(before != after, axis=-1)
    pairs = list(zip(before[moved], after[moved], strict=True))[:1500]
    assert len(pairs) > 500
    assert not any(_segment_hits_wall(p0, p1, room) for p0, p1 in pairs)
    rejected = np.mean(~moved)
    assert 0.05 < rejected < 0.6  # the wall and the edges do bite


def test_points_cross_the_wall_only_through_the_gap():
    room = R.Room()
    key = jax.random.PRNGKey(2)
    s = R.sample_free_states(key, 3000, room)
    states = np.asarray(R.rollout(key, s, R.policy(key, (3000,)), 200, room))
    path = np.concatenate([np.asarray(s)[None], states])
    side = path[..., 0] > room.wall_x
    crossed = side[1:] != side[:-1]
    p0, p1 = path[:-1][crossed], path[1:][crossed]
    y_cross = p0[:, 1] + (room.wall_x - p0[:, 0]) / (p1[:, 0] - p0[:, 0]) * (p1[:, 1] - p0[:, 1])
    assert len(y_cross) > 100
    assert np.all((y_cross > room.gap_low) & (y_cross < room.gap_high))


@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_geometric_times_have_mean_one_over_one_minus_gamma(gamma):
    t = np.asarray(R.future_times(jax.random.PRNGKey(3), (200_000,), gamma))
    assert t.min() == 1
    se = math.sqrt(gamma) / (1.0 - gamma) / math.sqrt(t.size)  # std of Geometric(1 - gamma) is sqrt(gamma)/(1-gamma)
    assert abs(t.mean() - 1.0 / (1.0 - gamma)) < 5 * se
    assert abs(np.mean(t == 1) - (1.0 - gamma)) < 0.005
    assert abs(np.mean(t == 2) - gamma * (1.0 - gamma)) < 0.005


def test_future_sampler_at_gamma_zero_is_the_one_step_successor():
    key = jax.random.PRNGKey(4)
    s = R.sample_free_states(key, 500, STILL)
    a = R.policy(jax.random.fold_in(key, 1), (500,))
    future, t = R.future_states(key, s, a, 0.0, STILL)
    assert np.all(np.asarray(t) == 1)
    np.testing.assert_allclose(np.asarray(future), np.asarray(R.step(key, s, a, STILL)), atol=1e-7)


def test_future_sampler_times_and_states():
    key = jax.random.PRNGKey(5)
    n = 4000
    s, a = jnp.tile(jnp.array([[0.25, 0.5]]), (n, 1)), jnp.tile(jnp.array([[1.0, 0.0]]), (n, 1))
    future, t = R.future_states(key, s, a, 0.9)
    assert abs(float(jnp.mean(t)) - 10.0) < 5 * math.sqrt(0.9) / 0.1 / math.sqrt(n)
    assert bool(jnp.all(R.is_free(future)))
    # the later the time, the further the point has wandered from the one-step successor (0.35, 0.5)
    dist = np.linalg.norm(np.asarray(future) - np.array([0.35, 0.5]), axis=-1)
    t = np.asarray(t)
    assert dist[t == 1].mean() < 0.03 < dist[t > 10].mean()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_value_of_a_constant_reward(gamma):
    c = 2.5
    s = R.sample_free_states(jax.random.PRNGKey(6), 8)
    v, se = R.mc_value(jax.random.PRNGKey(7), s, None, lambda p: jnp.full(p.shape[:-1], c), gamma, 16)
    np.testing.assert_allclose(np.asarray(v), c / (1.0 - gamma), rtol=1e-3)
    assert np.all(np.asarray(se) < 1e-4)


def _bump(p):
    return jnp.exp(-jnp.sum(jnp.square(p - jnp.array([0.3, 0.4])), axis=-1) / (2 * 0.1**2))


def test_value_equals_future_expectation_over_one_minus_gamma():
    """Q(s, a) = E_{s* ~ mu}[r(s*)] / (1 - gamma): the rollout estimate agrees with the future sampler's."""
    gamma, n = 0.8, 20_000
    s, a = jnp.array([[0.25, 0.5]]), jnp.array([[0.0, -1.0]])
    q, q_se = R.mc_value(jax.random.PRNGKey(8), s, a, _bump, gamma, n)
    future, _ = R.future_states(jax.random.PRNGKey(9), jnp.tile(s, (n, 1)), jnp.tile(a, (n, 1)), gamma)
    r = np.asarray(_bump(future)) / (1.0 - gamma)
    assert abs(float(q[0]) - r.mean()) < 4 * math.hypot(float(q_se[0]), r.std() / math.sqrt(n))


def test_value_horizon_and_outline():
    assert R.value_horizon(0.0) == 1
    assert 0.9 ** R.value_horizon(0.9) <= 1e-3 < 0.9 ** (R.value_horizon(0.9) - 1)
    border, lower, upper = R.outline()
    assert border.shape == (5, 2)
    assert lower[:, 1].max() == pytest.approx(0.6) and upper[:, 1].min() == pytest.approx(0.8)
