"""FB on the point maze: the goal vectors are the reward-weighted mean of B on the sphere, the actor's actions lie in
[-1, 1]^2, the actor's loss moves only the actor, and a ``tiny`` run trains and evaluates every free cell."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("ogbench")

from athanor.envs import pointmaze  # noqa: E402
from athanor.systems.successor import fb, fb_maze  # noqa: E402


def _cfg(**over) -> fb_maze.Config:
    return dataclasses.replace(fb_maze.Config(), **{**fb_maze.PRESETS["tiny"], **over})


def _tree_norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)))


@pytest.fixture(scope="module")
def tiny():
    cfg = _cfg()
    data = fb_maze.load_data(cfg, 0)
    return cfg, data, fb_maze.init(cfg, 0, data)


def test_goal_vectors_are_the_reward_weighted_mean_of_b_on_the_sphere(tiny):
    cfg, data, state = tiny
    s = data["next_obs"][:40]
    r = jnp.asarray(np.random.default_rng(0).random((40, 3)), jnp.float32)
    z = fb_maze.goal_vectors(state.params, cfg, s, r)
    b = fb.backward(state.params, cfg, s)
    expect = (r.T @ b) / 40
    assert np.allclose(np.linalg.norm(np.asarray(z), axis=1), np.sqrt(cfg.dim), rtol=1e-5)
    cos = np.sum(np.asarray(z) * np.asarray(expect), 1) / (np.linalg.norm(z, axis=1) * np.linalg.norm(expect, axis=1))
    assert np.allclose(cos, 1.0, atol=1e-5)


def test_actions_are_bounded_and_the_actor_loss_moves_only_the_actor(tiny):
    cfg, data, state = tiny
    s, a, n = data["obs"][:32], data["actions"][:32], data["next_obs"][:32]
    z = fb.to_sphere(jax.random.normal(jax.random.PRNGKey(0), (32, cfg.dim)), cfg.dim)
    acts = np.asarray(fb_maze.act(state.params, cfg, s * 100.0, z))
    assert np.all(np.abs(acts) <= 1.0)

    def actor_part(params):
        return fb_maze.batch_loss(params, state.target, cfg, s, a, n, jax.random.PRNGKey(1))[1]["actor_loss"]

    grads = jax.grad(actor_part)(state.params)
    norms = {k: float(_tree_norm(g)) for k, g in grads.items()}
    assert norms["actor"] > 0 and norms["F"] == 0 and norms["B"] == 0


def test_tiny_run_trains_and_evaluates_every_cell(tiny):
    cfg, data, state = tiny
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = fb_maze.step(state, data, cfg)
    assert all(np.isfinite(float(v)) for v in info.values())
    metrics, arts = fb_maze.final(state, data, cfg, 0)
    assert 0.0 <= metrics["success"] <= 1.0 and 0.0 <= metrics["success_tasks"] <= 1.0
    assert 0 <= metrics["goals_without_samples"] < len(data["cells"])
    tasks = [metrics.get(f"success_task{k}", np.nan) for k in range(1, 6)]  # the medium maze's five task goals
    if np.isfinite(tasks).any():
        np.testing.assert_allclose(np.nanmean(tasks), metrics["success_tasks"])
    assert all(np.isfinite(v) for v in metrics.values())  # a cell without reward samples is left out, not NaN
    for k, (_, goal) in enumerate(pointmaze.get_maze(cfg.maze).tasks):
        np.testing.assert_array_equal(data["cells"][data["task_goal_index"][k]], goal)
    assert arts["success_map"].dtype == np.uint8 and arts["success_map"].ndim == 3


def test_metrics_leave_out_tasks_without_reward_samples():
    data = {"task_goal_index": np.array([0, 2])}
    m = fb_maze._metrics(np.array([np.nan, 0.5, 1.0]), data)
    assert m == {"success": 0.75, "success_tasks": 1.0, "success_task2": 1.0, "goals_without_samples": 1.0}
    none = fb_maze._metrics(np.array([np.nan, np.nan]), {"task_goal_index": np.array([0])})
    assert none == {"goals_without_samples": 2.0}
