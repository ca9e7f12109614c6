"""Gridworlds and the value oracles: transition tensors against hand-worked moves, walls and slip; policy evaluation
against its Bellman equation, a truncated series and Monte Carlo rollouts; value iteration against the Bellman
optimality equation, a hand-solved corridor and brute force over every deterministic policy; the samplers'
frequencies against P."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from athanor.envs import gridworld as gw

UP, DOWN, LEFT, RIGHT = range(4)


@pytest.mark.parametrize("slip", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("make", [gw.four_rooms, gw.open_room])
def test_transition_rows_are_distributions(make, slip):
    world = make(slip=slip)
    assert world.P.shape == (4, world.n_states, world.n_states)
    assert np.all(world.P >= 0.0)
    np.testing.assert_allclose(world.P.sum(axis=2), 1.0, atol=1e-12)


def test_four_rooms_layout():
    world = gw.four_rooms()
    assert world.shape == (11, 11) and world.n_states == 104 and world.n_actions == 4
    # states are the free cells in row-major order
    assert [tuple(c) for c in world.cells[:6]] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 6)]
    assert np.all(np.diff(world.cells[:, 0] * 11 + world.cells[:, 1]) > 0)
    for k, (r, c) in enumerate(world.cells):
        assert world.state(int(r), int(c)) == k
    with pytest.raises(ValueError, match="not a free cell"):
        world.state(0, 5)


def _expected_next(layout, r, c, a):
    dr, dc = gw.MOVES[a]
    nr, nc = r + dr, c + dc
    if 0 <= nr < len(layout) and 0 <= nc < len(layout[0]) and layout[nr][nc] == ".":
        return nr, nc
    return r, c


def test_without_slip_moves_are_deterministic_and_walls_block():
    world = gw.four_rooms(slip=0.0)
    assert set(np.unique(world.P)) == {0.0, 1.0}
    for a in range(4):
        for s, (r, c) in enumerate(world.cells):
            (nxt,) = np.flatnonzero(world.P[a, s])
            assert tuple(world.cells[nxt]) == _expected_next(gw.FOUR_ROOMS, r, c, a)
    s = world.state(0, 4)
    assert world.P[RIGHT, s, s] == 1.0  # (0, 5) is a wall
    assert world.P[UP, s, s] == 1.0  # the border
    assert world.P[RIGHT, world.state(2, 4), world.state(2, 5)] == 1.0  # a doorway lets the agent through


def test_slip_mixes_in_a_uniformly_random_direction():
    world = gw.open_room(3, slip=0.4)
    centre = world.state(1, 1)
    row = world.P[RIGHT, centre]
    assert row[world.state(1, 2)] == pytest.approx(0.6 + 0.1)
    for cell in [(0, 1), (2, 1), (1, 0)]:
        assert row[world.state(*cell)] == pytest.approx(0.1)
    corner = world.state(0, 0)  # up and left bump into the border
    row = world.P[UP, corner]
    assert row[corner] == pytest.approx(0.6 + 0.1 + 0.1)
    assert row[world.state(0, 1)] == pytest.approx(0.1) and row[world.state(1, 0)] == pytest.approx(0.1)


def test_four_rooms_is_connected_through_its_doorways():
    world = gw.four_rooms()
    P_pi = gw.policy_matrix(world.P, gw.uniform_policy(world.n_states))
    reach = np.linalg.matrix_power(np.eye(world.n_states) + P_pi, world.n_states) > 0
    assert reach.all()
    rows = [list(r) for r in gw.FOUR_ROOMS]
    for r, c in [(2, 5), (9, 5), (5, 1), (6, 8)]:  # the four doorways
        assert rows[r][c] == "."
        rows[r][c] = "#"
    closed = gw.make_gridworld(["".join(r) for r in rows])
    P_closed = gw.policy_matrix(closed.P, gw.uniform_policy(closed.n_states))
    reach_closed = np.linalg.matrix_power(np.eye(closed.n_states) + P_closed, closed.n_states) > 0
    assert reach_closed[0].sum() == 25  # only the top-left room, 5 x 5 cells


def test_to_grid_places_values_and_marks_walls():
    world = gw.make_gridworld(["..#", "#.."])
    grid = world.to_grid(np.arange(world.n_states))
    np.testing.assert_array_equal(grid, [[0, 1, np.nan], [np.nan, 2, 3]])
    with pytest.raises(ValueError, match="one value per state"):
        world.to_grid(np.zeros(3))


@pytest.mark.parametrize("layout, match", [(["..", "..."], "differ in length"), ([".x"], "only '#'"),
                                           (["##"], "no free cell"), ([], "at least one row")])
def test_bad_layouts_are_named(layout, match):
    with pytest.raises(ValueError, match=match):
        gw.make_gridworld(layout)


def test_layout_from_a_string_and_slip_out_of_range():
    assert gw.make_gridworld("\n  ..#\n  ...\n").n_states == 5
    with pytest.raises(ValueError, match="slip"):
        gw.make_gridworld("..", slip=1.5)


def test_policy_matrix_and_uniform_policy():
    world = gw.open_room(3)
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(4), size=world.n_states)
    P_pi = gw.policy_matrix(world.P, pi)
    for s in range(world.n_states):
        np.testing.assert_allclose(P_pi[s], sum(pi[s, a] * world.P[a, s] for a in range(4)))
    np.testing.assert_allclose(P_pi.sum(1), 1.0)
    assert np.all(gw.uniform_policy(5) == 0.25)
    with pytest.raises(ValueError, match="sum to 1"):
        gw.policy_matrix(world.P, pi * 2)
    with pytest.raises(ValueError, match="shape"):
        gw.policy_matrix(world.P, pi[:, :3])


def test_abc_chain_is_stochastic():
    P = gw.abc_chain()
    assert P.shape == (3, 3) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(1), 1.0)


def test_chain_value_solves_its_bellman_equation_and_is_the_discounted_series():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(6), size=6)
    r = rng.normal(size=6)
    gamma = 0.8
    V = gw.evaluate_chain(P, r, gamma)
    np.testing.assert_allclose(V, P @ (r + gamma * V), atol=1e-12)
    series = sum(gamma**t * np.linalg.matrix_power(P, t + 1) @ r for t in range(200))
    np.testing.assert_allclose(V, series, atol=1e-12)
    with pytest.raises(ValueError, match="gamma"):
        gw.evaluate_chain(P, r, 1.0)


def test_chain_value_matches_monte_carlo_rollouts():
    """V(s) = E[sum_t gamma^t r(s_{t+1})], estimated from 20,000 rollouts of the A/B/C chain: within 4 standard
    errors (the horizon cuts gamma^60 ~ 1e-6 of the tail)."""
    P, gamma, horizon = gw.abc_chain(), 0.8, 60
    r = np.array([0.0, -1.0, 2.0])
    V = gw.evaluate_chain(P, r, gamma)
    rng = np.random.default_rng(2)
    for s0 in range(3):
        states, _ = gw.sample_trajectories(P[None], np.ones((3, 1)), np.full(20_000, s0), horizon, rng)
        returns = r[states[:, 1:]] @ gamma ** np.arange(horizon)
        se = returns.std() / np.sqrt(len(returns))
        assert abs(returns.mean() - V[s0]) < 4 * se + 1e-5


def test_policy_evaluation_q_is_consistent_with_v():
    world = gw.four_rooms(slip=0.1)
    pi = np.random.default_rng(3).dirichlet(np.ones(4), size=world.n_states)
    r = np.zeros(world.n_states)
    r[world.state(10, 10)] = 1.0
    V, Q = gw.policy_evaluation(world.P, pi, r, 0.9)
    assert Q.shape == (4, world.n_states)
    np.testing.assert_allclose(V, np.sum(pi.T * Q, axis=0), atol=1e-10)
    np.testing.assert_allclose(Q, world.P @ (r + 0.9 * V), atol=1e-12)


def test_value_iteration_solves_a_hand_checked_corridor():
    """Corridor of 5 cells, reward 1 on arriving in the rightmost: V*(4) = V*(3) = 1 / (1 - gamma) (every step from
    3 or 4 can arrive in 4), V*(k) = gamma^(3 - k) / (1 - gamma) further left, and moving right is optimal."""
    world, gamma = gw.make_gridworld(["....."]), 0.9
    r = np.zeros(5)
    r[4] = 1.0
    V, Q = gw.value_iteration(world.P, r, gamma, tol=1e-12)
    expected = np.array([gamma**3, gamma**2, gamma, 1.0, 1.0]) / (1 - gamma)
    np.testing.assert_allclose(V, expected, atol=1e-9)
    pi = gw.greedy_policy(Q)
    assert np.all(pi[:4, RIGHT] == 1.0)
    assert Q[LEFT, 4] < Q[RIGHT, 4] == pytest.approx(Q[UP, 4])  # in the goal cell, anything but left stays
    np.testing.assert_allclose(gw.policy_evaluation(world.P, pi, r, gamma)[0], V, atol=1e-9)


def test_value_iteration_satisfies_bellman_optimality_and_beats_every_deterministic_policy():
    world, gamma = gw.make_gridworld(["...", ".#."], slip=0.3), 0.85  # 5 states: 4^5 policies
    r = np.random.default_rng(4).normal(size=world.n_states)
    V, Q = gw.value_iteration(world.P, r, gamma, tol=1e-12)
    np.testing.assert_allclose(V, np.max(world.P @ (r + gamma * V), axis=0), atol=1e-10)
    np.testing.assert_allclose(Q.max(0), V, atol=1e-10)
    eye = np.eye(4)
    best = np.full(world.n_states, -np.inf)
    for actions in itertools.product(range(4), repeat=world.n_states):
        best = np.maximum(best, gw.policy_evaluation(world.P, eye[list(actions)], r, gamma)[0])
    np.testing.assert_allclose(V, best, atol=1e-8)
    np.testing.assert_allclose(gw.policy_evaluation(world.P, gw.greedy_policy(Q), r, gamma)[0], V, atol=1e-8)


def test_value_iteration_reports_non_convergence():
    world = gw.open_room(3)
    with pytest.raises(RuntimeError, match="did not reach"):
        gw.value_iteration(world.P, np.ones(world.n_states), 0.99, tol=1e-12, max_iter=5)


def test_sampled_transitions_follow_p_and_the_policy():
    world = gw.open_room(3, slip=0.5)
    pi = np.random.default_rng(5).dirichlet(np.ones(4), size=world.n_states)
    n = 400_000
    s, a, s_next = gw.sample_transitions(world.P, pi, n, np.random.default_rng(6))
    assert s.shape == a.shape == s_next.shape == (n,)
    counts = np.bincount(s, minlength=9)
    assert np.abs(counts / n - 1 / 9).max() < 5 * np.sqrt((1 / 9) / n)
    pi_hat = np.zeros_like(pi)
    np.add.at(pi_hat, (s, a), 1.0)
    pi_hat /= counts[:, None]
    assert np.abs(pi_hat - pi).max() < 5 * np.sqrt(0.25 / counts.min())
    P_hat = np.zeros((9, 9))
    np.add.at(P_hat, (s, s_next), 1.0)
    P_hat /= counts[:, None]
    assert np.abs(P_hat - gw.policy_matrix(world.P, pi)).max() < 5 * np.sqrt(0.25 / counts.min())
    # the same generator state gives the same data; a start distribution is respected
    again = gw.sample_transitions(world.P, pi, n, np.random.default_rng(6))
    assert all(np.array_equal(x, y) for x, y in zip((s, a, s_next), again, strict=True))
    start = np.zeros(9)
    start[[2, 7]] = 0.5
    s2, _, _ = gw.sample_transitions(world.P, pi, 1000, np.random.default_rng(7), start=start)
    assert set(np.unique(s2)) == {2, 7}


def test_trajectories_only_take_possible_steps():
    world = gw.four_rooms(slip=0.1)
    pi = gw.uniform_policy(world.n_states)
    states, actions = gw.sample_trajectories(world.P, pi, np.arange(world.n_states), 50, np.random.default_rng(8))
    assert states.shape == (world.n_states, 51) and actions.shape == (world.n_states, 50)
    np.testing.assert_array_equal(states[:, 0], np.arange(world.n_states))
    assert np.all(world.P[actions, states[:, :-1], states[:, 1:]] > 0)
