"""The tabular successor representation: the closed form against its series and Bellman recursion, gamma = 0 as the
one-step model, values from M against exact policy evaluation and Monte Carlo rollouts, the action-conditioned
measure, one TD update by hand, TD learning through the system's own ``step`` converging to the closed form, and a
``tiny`` run through the system functions."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.core.artifacts import Heatmap
from athanor.core.errors import ConfigError
from athanor.envs import gridworld as gw
from athanor.systems import contract
from athanor.systems.successor import tabular as T


def _cfg(preset: str = "tiny", **over) -> T.Config:
    return dataclasses.replace(T.Config(), **{**T.PRESETS[preset], **over})


def _random_chain(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n, 0.5), size=n)
    P[:, rng.integers(n)] = 0.0  # a state that is never entered
    return P / P.sum(1, keepdims=True)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_is_the_discounted_series_and_solves_the_bellman_recursion(gamma, seed):
    P = _random_chain(7, seed)
    M = T.successor_matrix(P, gamma)
    # M = (1 - gamma) sum_t gamma^t P^(t+1)
    series, power = np.zeros_like(P), P.copy()
    for t in range(3000):
        series += (1 - gamma) * gamma**t * power
        power = power @ P
    np.testing.assert_allclose(M, series, atol=1e-10)
    np.testing.assert_allclose(M, (1 - gamma) * P + gamma * P @ M, atol=1e-12)
    np.testing.assert_allclose(M.sum(1), 1.0, atol=1e-12)
    assert np.all(M >= -1e-15)


def test_gamma_zero_is_the_one_step_model_and_the_other_convention():
    P = _random_chain(5, 3)
    np.testing.assert_allclose(T.successor_matrix(P, 0.0), P, atol=1e-15)
    gamma = 0.7
    with_current = T.successor_matrix(P, gamma, include_current=True)
    np.testing.assert_allclose(with_current, (1 - gamma) * np.eye(5) + gamma * T.successor_matrix(P, gamma),
                               atol=1e-12)
    np.testing.assert_allclose(with_current.sum(1), 1.0, atol=1e-12)


def test_value_from_sr_is_policy_evaluation():
    world, gamma = gw.four_rooms(slip=0.2), 0.95
    pi = np.random.default_rng(4).dirichlet(np.ones(4), size=world.n_states)
    r = np.random.default_rng(5).normal(size=world.n_states)
    V, _ = gw.policy_evaluation(world.P, pi, r, gamma)
    M = T.successor_matrix(gw.policy_matrix(world.P, pi), gamma)
    np.testing.assert_allclose(T.value_from_sr(M, r, gamma), V, atol=1e-9)
    goal = world.state(10, 10)  # a sparse goal reward: the value is the occupancy of the goal / (1 - gamma)
    V_goal, _ = gw.policy_evaluation(world.P, pi, np.eye(world.n_states)[goal], gamma)
    np.testing.assert_allclose(M[:, goal] / (1 - gamma), V_goal, atol=1e-9)


def test_value_from_sr_matches_monte_carlo_rollouts():
    """On the A/B/C chain: V = M r / (1 - gamma) against 20,000 rollouts per start, within 4 standard errors."""
    P, gamma, horizon = gw.abc_chain(), 0.75, 60
    r = np.array([1.0, -2.0, 0.5])
    V = T.value_from_sr(T.successor_matrix(P, gamma), r, gamma)
    rng = np.random.default_rng(6)
    for s0 in range(3):
        states, _ = gw.sample_trajectories(P[None], np.ones((3, 1)), np.full(20_000, s0), horizon, rng)
        returns = r[states[:, 1:]] @ gamma ** np.arange(horizon)
        assert abs(returns.mean() - V[s0]) < 4 * returns.std() / np.sqrt(len(returns)) + 1e-6


def test_action_conditioned_measure():
    world, gamma = gw.open_room(3, slip=0.3), 0.8
    pi = np.random.default_rng(7).dirichlet(np.ones(4), size=world.n_states)
    M_a = T.successor_measure(world.P, pi, gamma)
    M_pi = T.successor_matrix(gw.policy_matrix(world.P, pi), gamma)
    assert M_a.shape == world.P.shape
    np.testing.assert_allclose(np.einsum("sa,ast->st", pi, M_a), M_pi, atol=1e-12)
    np.testing.assert_allclose(M_a.sum(2), 1.0, atol=1e-12)
    np.testing.assert_allclose(T.successor_measure(world.P, pi, 0.0), world.P, atol=1e-15)
    # Q^pi(s, a) of a reward on arrival = M(s, a, .) r / (1 - gamma)
    r = np.random.default_rng(8).normal(size=world.n_states)
    _, Q = gw.policy_evaluation(world.P, pi, r, gamma)
    np.testing.assert_allclose(M_a @ r / (1 - gamma), Q, atol=1e-10)


def test_one_td_update_by_hand_averages_duplicates():
    M = jnp.asarray(np.random.default_rng(9).dirichlet(np.ones(3), size=3), jnp.float32)
    gamma, lr = 0.6, 0.5
    s, s_next = jnp.array([0, 0, 2]), jnp.array([1, 2, 0])
    new, delta = T.td_update(M, s, s_next, gamma, lr)
    m = np.asarray(M, np.float64)
    eye = np.eye(3)
    d = [(1 - gamma) * eye[b] + gamma * m[b] - m[a] for a, b in zip([0, 0, 2], [1, 2, 0], strict=True)]
    np.testing.assert_allclose(delta, np.stack(d), atol=1e-6)
    np.testing.assert_allclose(new[0], m[0] + lr * (d[0] + d[1]) / 2, atol=1e-6)
    np.testing.assert_allclose(new[1], m[1], atol=0)  # not sampled: unchanged
    np.testing.assert_allclose(new[2], m[2] + lr * d[2], atol=1e-6)
    np.testing.assert_allclose(new.sum(1), 1.0, atol=1e-6)  # convex combinations of distributions
    # the closed form is a fixed point of the expected update
    P = gw.abc_chain()
    M_star = jnp.asarray(T.successor_matrix(P, gamma), jnp.float32)
    expected = sum(P[0, b] * T.td_update(M_star, jnp.array([0]), jnp.array([b]), gamma, 1.0)[1][0] for b in range(3))
    np.testing.assert_allclose(expected, 0.0, atol=1e-6)


def test_td_learning_through_step_converges_to_the_closed_form():
    """400 updates on a 4 x 4 room: the errors against the closed form fall by a large factor, the rows stay
    distributions, and step leaves its input state untouched."""
    cfg = _cfg(env="open_room", room_size=4, steps=400, inner_steps=100, eval_every=100, lr=0.5, batch_size=256)
    data = T.load_data(cfg, 0)
    state = T.init(cfg, 0, data)
    before = T.evaluate(state, data, cfg, 0)
    M0 = np.asarray(state.M).copy()
    new, first = T.step(state, data, cfg)
    np.testing.assert_array_equal(np.asarray(state.M), M0)
    assert int(new.t) == 100 and set(first) == {"td_error", "lr"}
    for _ in range(3):
        new, info = T.step(new, data, cfg)
    after = T.evaluate(new, data, cfg, 0)
    assert after["m_mean_err"] < before["m_mean_err"] / 10
    assert after["m_max_err"] < before["m_max_err"] / 10
    assert after["v_max_err"] < before["v_max_err"] / 10
    assert after["row_sum_err"] < 1e-5
    assert float(info["lr"]) < 0.1 * float(first["lr"])  # the cosine decay: mean step size, last vs first 100


def test_zero_init_rows_grow_to_distributions():
    cfg = _cfg(env="abc", m_init="zeros", gamma=0.5, lr=1.0, lr_schedule="constant", steps=200, inner_steps=100)
    data = T.load_data(cfg, 0)
    state = T.init(cfg, 0, data)
    assert T.evaluate(state, data, cfg, 0)["row_sum_err"] == 1.0
    for _ in range(cfg.steps // cfg.inner_steps):
        state, _ = T.step(state, data, cfg)
    assert T.evaluate(state, data, cfg, 0)["row_sum_err"] < 1e-4


def test_load_data_is_the_closed_form_and_exact_values():
    cfg = _cfg(gamma=0.8, slip=0.1, goal_state=5)
    data = T.load_data(cfg, 0)
    world = gw.four_rooms(0.1)
    P_pi = gw.policy_matrix(world.P, gw.uniform_policy(world.n_states))
    np.testing.assert_allclose(data["P_pi"], P_pi, atol=1e-7)
    np.testing.assert_allclose(data["M"], T.successor_matrix(P_pi, 0.8), atol=1e-6)
    assert int(np.argmax(data["r"])) == 5 and float(data["r"].sum()) == 1.0
    np.testing.assert_allclose(data["V"], data["M"][:, 5] / 0.2, rtol=1e-4)
    with pytest.raises(ConfigError, match="goal_state"):
        T.load_data(_cfg(env="abc", goal_state=3), 0)


def test_contract():
    assert contract.check(T) == []
    tiny = T.PRESETS["tiny"]
    assert tiny["steps"] // tiny["inner_steps"] >= 2


@pytest.mark.parametrize("env", ["four_rooms", "abc"])
def test_tiny_run_through_the_system_functions(env):
    cfg = _cfg(env=env)
    data = T.load_data(cfg, 3)
    state = T.init(cfg, 3, data)
    first = T.evaluate(state, data, cfg, 0)
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = T.step(state, data, cfg)
        assert all(np.isfinite(float(v)) for v in info.values())
    metrics = T.evaluate(state, data, cfg, 0)
    assert set(metrics) == {"m_max_err", "m_mean_err", "m_tv", "row_sum_err", "v_max_err", "v_mean_err", "v_max",
                            "vi_max_err"}
    assert metrics["vi_max_err"] < 1e-6  # the optimal policy's M r / (1 - gamma) is value iteration's V*
    assert metrics["v_max"] == pytest.approx(float(np.max(np.asarray(data["V"]))))
    assert all(type(v) is float for v in metrics.values())
    assert metrics["m_mean_err"] < first["m_mean_err"]
    again = T.init(cfg, 3, data)
    for _ in range(cfg.steps // cfg.inner_steps):
        again, _ = T.step(again, data, cfg)
    np.testing.assert_array_equal(np.asarray(again.M), np.asarray(state.M))  # deterministic for a seed
    arts = T.artifacts(state, data, cfg, 0)
    images = {k: v for k, v in arts.items() if isinstance(v, np.ndarray)}
    assert "sr_by_gamma" in images
    for img in images.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] in (3, 4) and img.std() > 0
    if env == "abc":
        assert isinstance(arts["sr_td"], Heatmap) and isinstance(arts["sr_closed"], Heatmap)
        np.testing.assert_allclose(arts["sr_closed"].values, data["M"], atol=1e-7)
    else:
        assert {"sr_td_vs_closed", "value", "sr_matrix"} <= set(images)


def test_key_is_threaded():
    cfg = _cfg(env="abc")
    data = T.load_data(cfg, 0)
    a, b = T.init(cfg, 0, data), T.init(cfg, 1, data)
    a1, _ = T.step(a, data, cfg)
    b1, _ = T.step(b, data, cfg)
    assert not np.array_equal(np.asarray(a1.M), np.asarray(b1.M))
    assert not np.array_equal(np.asarray(a1.key), np.asarray(a.key))
    assert jax.tree_util.tree_structure(a1) == jax.tree_util.tree_structure(a)
