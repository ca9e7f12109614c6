"""The point-maze environment: OGBench geometry and physics reproduced exactly, BFS planner against closed forms,
sparse labels, vectorised rollouts (oracle always succeeds, a zero policy never does), the scene it hands to
the drawing code."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("ogbench")

from athanor.core.errors import ConfigError, DataError, NonFiniteError  # noqa: E402
from athanor.envs import pointmaze as M  # noqa: E402


def _ogbench_env(name: str):
    from ogbench.locomaze.maze import make_maze_env

    env = make_maze_env("point", "maze", maze_type=name)
    M._remove_temp_xml(env)
    return env


@pytest.mark.parametrize("name", M.MAZES)
def test_cell_geometry_matches_ogbench(name):
    env = _ogbench_env(name)
    m = M.get_maze(name)
    assert np.array_equal(m.grid, env.maze_map)
    assert m.tasks == tuple((tuple(t["init_ij"]), tuple(t["goal_ij"])) for t in env.task_infos)
    rng = np.random.default_rng(0)
    for i, j in m.free:
        assert tuple(M.ij_to_xy((i, j))) == env.ij_to_xy((i, j))
        # Any point strictly inside the cell maps back to it, as OGBench's xy_to_ij does.
        xy = M.ij_to_xy((i, j)) + rng.uniform(-1.99, 1.99, 2)
        assert tuple(M.xy_to_ij(xy)) == env.xy_to_ij(xy) == (i, j)


def test_step_is_ogbench_env_step_exactly():
    env = _ogbench_env("medium")
    sim = M.PointMazeSim(M.get_maze("medium"), 1)
    start = np.array([0.3, -0.2])
    sim.reset(start[None])
    env.set_state(start, np.zeros(2))
    rng = np.random.default_rng(1)
    for t in range(300):
        # Long pushes into the left wall, then random moves, so contacts are exercised.
        a = np.array([-1.0, rng.uniform(-1, 1)]) if t % 100 < 40 else rng.uniform(-1, 1, 2)
        ob, *_ = env.step(a)
        np.testing.assert_array_equal(sim.step(a[None])[0], ob)
    assert ob[0] > -6.0 + M.AGENT_RADIUS - 0.05  # the wall held: the point never passed into it


def test_bfs_in_the_open_arena_is_manhattan_distance():
    m = M.get_maze("arena")
    for goal in m.free[::5]:
        dist = M.bfs_distances(m.grid, goal)
        manhattan = np.abs(m.free - goal).sum(1)
        np.testing.assert_array_equal(dist[m.free[:, 0], m.free[:, 1]], manhattan)
        assert (dist[m.grid == 1] == -1).all()
    with pytest.raises(ValueError, match="not a free cell"):
        M.bfs_distances(m.grid, (0, 0))


@pytest.mark.parametrize("name", ["medium", "large"])
def test_waypoints_step_one_cell_closer_along_shortest_paths(name):
    m = M.get_maze(name)
    for goal in m.free:
        dist = M.bfs_distances(m.grid, goal)
        assert (dist[m.free[:, 0], m.free[:, 1]] >= 0).all()  # every free cell is connected
        wp = M.waypoint(m, M.ij_to_xy(m.free), goal)  # agents at the cell centres
        nxt = M.xy_to_ij(wp)
        for c, n in zip(m.free, nxt, strict=True):
            if tuple(c) == tuple(goal):
                assert tuple(n) == tuple(goal)
                continue
            assert np.abs(n - c).sum() == 1 and m.grid[tuple(n)] == 0
            assert dist[tuple(n)] == dist[tuple(c)] - 1


def test_planner_action_is_a_unit_vector_towards_the_waypoint():
    m = M.get_maze("medium")
    rng = np.random.default_rng(2)
    cells = m.free[rng.integers(len(m.free), size=64)]
    xy = M.ij_to_xy(cells) + rng.uniform(-1.2, 1.2, (64, 2))
    goal = (6, 6)
    a = M.planner_action(m, xy, goal)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-12)
    d = M.waypoint(m, xy, goal) - xy
    np.testing.assert_allclose(a, d / np.linalg.norm(d, axis=1, keepdims=True))


def test_make_task_uses_ogbench_tasks_without_goal_noise():
    t = M.make_task("medium", 1)  # OGBench task 1: cell (1, 1) -> cell (6, 6)
    np.testing.assert_array_equal(t.init_xy, [0.0, 0.0])
    np.testing.assert_array_equal(t.goal_xy, [20.0, 20.0])
    assert t.goal_ij == (6, 6) and t.goal_tol == 1.0 and t.max_steps == 1000
    assert M.make_task("medium", 1).goal_xy.tolist() == t.goal_xy.tolist()  # fixed, not redrawn
    with pytest.raises(ConfigError, match="1..5"):
        M.make_task("medium", 6)
    with pytest.raises(ConfigError, match="unknown maze 'tiny'"):
        M.make_task("tiny", 1)


def test_random_starts_cover_the_free_cells_but_the_goal_and_are_shared_by_seed():
    task = M.make_task("medium", 1, start="random")
    maze = M.get_maze("medium")
    starts = M.start_positions(task, 2000, seed=5)
    centres = M.ij_to_xy(maze.cell(starts))
    assert np.abs(starts - centres).max() <= M.INIT_NOISE  # a cell centre plus U(-1, 1)^2
    cells = {tuple(c) for c in maze.cell(starts).tolist()}
    free = {tuple(c) for c in maze.free.tolist()}
    assert cells == free - {task.goal_ij}  # every free cell but the goal's, and nothing else
    np.testing.assert_array_equal(starts[:7], M.start_positions(task, 7, seed=5))  # episode k's start is fixed
    assert not np.array_equal(starts[:7], M.start_positions(task, 7, seed=6))
    fixed = M.start_positions(M.make_task("medium", 1), 50, seed=5)
    assert np.abs(fixed - task.init_xy).max() <= M.INIT_NOISE
    with pytest.raises(ConfigError, match="start must be one of"):
        M.make_task("medium", 1, start="anywhere")
    # the oracle still always succeeds, and sooner on average than from the far corner
    near = M.rollout(M.oracle_policy(task), task, n_episodes=12, seed=3)
    far = M.rollout(M.oracle_policy(M.make_task("medium", 1)), M.make_task("medium", 1), n_episodes=4, seed=3)
    assert near["success"] == 1.0 and near["time_to_goal"] < far["time_to_goal"]


def test_label_rewards_exactly_within_tolerance():
    t = M.make_task("medium", 1)
    nxt = np.array([[20.0, 20.0], [21.0, 20.0], [20.0, 19.0], [21.001, 20.0], [20.8, 20.61], [0.0, 0.0]], np.float32)
    rewards, masks = M.label({"next_observations": nxt}, t)
    np.testing.assert_array_equal(rewards, [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(masks, 1 - rewards)
    assert rewards.dtype == masks.dtype == np.float32


def test_rollout_oracle_always_succeeds_and_zero_policy_never():
    task = M.make_task("medium", 1)
    out = M.rollout(M.oracle_policy(task), task, n_episodes=4, seed=3, record=2)
    assert out["success"] == 1.0
    # Lower bound: each step moves at most 0.2, and the start is at most sqrt(2) from the init centre.
    bound = (np.linalg.norm(task.goal_xy - task.init_xy) - np.sqrt(2) - task.goal_tol) / M.ACTION_SCALE
    assert bound < out["time_to_goal"] < task.max_steps
    assert out["time_to_goal"] == out["episode_lengths"].mean()
    assert out["actions"].shape == (out["episode_lengths"].sum(), 2)
    assert out["xy"].shape == (2, task.max_steps + 1, 2) and out["xy"].dtype == np.float32
    for k in range(2):
        n = out["lengths"][k]
        assert np.linalg.norm(out["xy"][k, n] - task.goal_xy) <= task.goal_tol
        assert np.linalg.norm(out["xy"][k, n - 1] - task.goal_xy) > task.goal_tol  # it stopped at first success
        assert (out["xy"][k, n:] == out["xy"][k, n]).all()  # padded with the last position
        assert np.abs(out["xy"][k, 0] - task.init_xy).max() <= M.INIT_NOISE

    zero = M.rollout(lambda obs: np.zeros_like(obs), task, n_episodes=3, seed=3, record=1)
    assert zero["success"] == 0.0 and np.isnan(zero["time_to_goal"])
    assert zero["lengths"].tolist() == [task.max_steps]
    assert zero["actions"].shape == (3 * task.max_steps, 2)
    assert (zero["xy"][0] == zero["xy"][0, 0]).all()  # a zero action leaves the point where it is
    np.testing.assert_array_equal(zero["xy"][0, 0], out["xy"][0, 0])  # same seed, same start


def test_rollout_is_deterministic_and_batch_shape_independent():
    task = M.make_task("medium", 3)
    calls = []

    def noisy(obs):
        calls.append(len(obs))
        # A row-wise policy that depends only on the observation, so batching cannot change what it does.
        return M.planner_action(M.get_maze("medium"), obs, task.goal_ij) + 0.3 * np.sin(7.0 * obs[:, ::-1])

    a = M.rollout(noisy, task, 5, seed=11, record=5)
    assert set(calls) == {5}
    calls.clear()
    b = M.rollout(noisy, task, 5, seed=11, record=5, fixed_batch=False)
    assert calls[0] == 5 and min(calls) < 5 and calls == sorted(calls, reverse=True)
    np.testing.assert_array_equal(a["xy"], b["xy"])
    np.testing.assert_array_equal(a["episode_lengths"], b["episode_lengths"])
    c = M.rollout(noisy, task, 5, seed=12, record=5)
    assert not np.array_equal(a["xy"][:, 0], c["xy"][:, 0])


def test_rollout_tasks_equals_each_task_rolled_out_alone():
    maze = M.get_maze("medium")
    tasks = [M.make_task("medium", k, start="random") for k in (1, 3, 5)]
    goal_rows = np.repeat([t.goal_ij for t in tasks], 4, axis=0)  # the batch is task by task, 4 episodes each

    def batched(obs):
        # Row r steers towards its own task's goal, with a perturbation so that episodes differ in length.
        acts = np.stack([M.planner_action(maze, o[None], tuple(g))[0] for o, g in zip(obs, goal_rows, strict=True)])
        return acts + 0.4 * np.sin(5.0 * obs[:, ::-1])

    many = M.rollout_tasks(batched, tasks, 4, seed=7)
    assert many["episode_success"].shape == many["episode_lengths"].shape == (3, 4)
    for k, task in enumerate(tasks):
        alone = M.rollout(lambda obs, t=task: M.planner_action(maze, obs, t.goal_ij) + 0.4 * np.sin(5.0 * obs[:, ::-1]),
                          task, 4, seed=7 + k)
        np.testing.assert_array_equal(many["episode_lengths"][k], alone["episode_lengths"])
        np.testing.assert_array_equal(many["episode_success"][k], alone["episode_success"])
        assert many["success"][k] == alone["success"]
    assert len(set(many["episode_lengths"].ravel().tolist())) > 1  # the perturbation did make episodes differ
    with pytest.raises(ConfigError, match="one maze"):
        M.rollout_tasks(batched, [tasks[0], M.make_task("large", 1)], 4, seed=0)
    with pytest.raises(ConfigError, match="at least one task"):
        M.rollout_tasks(batched, [], 4, seed=0)


def test_rollout_clips_actions_and_rejects_bad_policies():
    task = M.make_task("medium", 1)
    big = M.rollout(lambda obs: np.tile([[3.0, -7.0]], (len(obs), 1)), task, 2, seed=0, record=2)
    unit = M.rollout(lambda obs: np.tile([[1.0, -1.0]], (len(obs), 1)), task, 2, seed=0, record=2)
    np.testing.assert_array_equal(big["xy"], unit["xy"])
    assert np.abs(big["actions"]).max() == 1.0
    with pytest.raises(NonFiniteError, match="non-finite"):
        M.rollout(lambda obs: np.full_like(obs, np.nan), task, 2, seed=0)
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        M.rollout(lambda obs: obs[:, :1], task, 2, seed=0)
    with pytest.raises(ConfigError):
        M.rollout(lambda obs: obs, task, 2, seed=0, record=3)


def test_missing_physics_packages_raise_data_error_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ogbench.locomaze.maze", None)
    with pytest.raises(DataError, match=r"pip install -e '\.\[rl\]'"):
        M._build_maze.__wrapped__("medium")


def test_scene_describes_the_task_for_drawing():
    task = M.make_task("medium", 1)
    sc = M.scene(task)
    assert sc["grid"] is M.get_maze("medium").grid and sc["unit"] == M.MAZE_UNIT
    np.testing.assert_array_equal(sc["goal"], task.goal_xy)
    np.testing.assert_array_equal(sc["start"], task.init_xy)
    # the outer corner of cell (0, 0): its centre minus half a cell on both axes
    np.testing.assert_allclose(sc["corner"], M.ij_to_xy((0, 0)) - M.MAZE_UNIT / 2)
    assert M.scene(M.make_task("medium", 1, start="random"))["start"] is None  # no single start region
