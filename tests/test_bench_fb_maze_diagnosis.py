"""benchmarks/fb_maze_diagnosis.py on tiny runs: it re-evaluates an ``fb-maze`` run exactly as the run's final
evaluation did, and its statistics stay in their ranges."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("ogbench")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import fb_maze_diagnosis as D  # noqa: E402

from athanor import api  # noqa: E402

# enough planner data that every task goal of the medium maze has reward samples, enough steps to reach some
DATA = {"data_episodes": 24, "data_episode_len": 401}


def test_diagnosis_reproduces_the_run_and_stays_in_range(tmp_path):
    fb_run = api.start_run("fb-maze", preset="tiny", out=tmp_path, progress=False,
                           overrides={**DATA, "z_samples": 20_000, "eval_episodes": 6, "eval_max_steps": 100})
    iql_run = api.start_run("iql", preset="tiny", out=tmp_path, progress=False, overrides={"task_id": 2})
    out, xy = D.fb_diagnosis(fb_run.run_dir, n_states=300, long_limit=200)
    assert out["reproduces"]
    assert xy.shape == (300, 2)
    success, longer = np.array(out["success"]), np.array(out["success_long"])
    assert np.all(longer >= success)  # the same starts with a longer time limit can only succeed more often
    for key in ("success", "success_long", "success_q_greedy"):
        assert len(out[key]) == 5 and all(0 <= v <= 1 for v in out[key])
    for key in ("cos_actor", "cos_q_greedy", "value_rank"):
        assert len(out[key]) == 5 and all(-1 <= v <= 1 for v in out[key])
    got = D.iql_diagnosis(iql_run.run_dir, xy)
    assert got["task"] == 2 and -1 <= got["cos_actor"] <= 1 and -1 <= got["value_rank"] <= 1


def test_distance_is_the_shortest_path_in_cells():
    from athanor.envs import pointmaze

    maze = pointmaze.get_maze("medium")
    goal = tuple(int(v) for v in maze.free[0])
    centres = pointmaze.ij_to_xy(maze.free)
    d = D._distance(maze, centres + 0.3, goal)  # off-centre positions stay in their cells
    assert d[0] == 0 and np.all(d[1:] >= 1)
    table = pointmaze.bfs_distances(maze.grid, goal)
    assert np.array_equal(d, table[maze.free[:, 0], maze.free[:, 1]])


def test_cosine_ignores_zero_actions():
    a = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    assert D._cos(a, b) == pytest.approx(0.0)  # rows 1 and 3: cosines 1 and -1; row 2 has no direction
