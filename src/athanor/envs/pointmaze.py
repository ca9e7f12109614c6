"""The point maze: OGBench's MuJoCo point mass in its maze layouts, a BFS waypoint planner, evaluation tasks and
vectorised rollouts of any policy.

Environment (OGBench ``pointmaze-{arena,medium,large,giant}-v0``, Park et al. 2024; D4RL maze2d's successor)
- observation: the agent's position xy in R^2; action a in [-1, 1]^2.
- one step: qpos <- qpos + 0.2 a, qvel <- 0, then 5 MuJoCo substeps of 0.02 s. The walls are boxes one cell wide,
  so contacts push the point (a sphere of radius 0.7) back out of any wall it was moved into.
- cell (i, j) = row i, column j of the maze map (1 = wall) has its centre at xy = (4 j - 4, 4 i - 4) and spans
  +-2 around it; a position lies in cell (floor((y + 6) / 4), floor((x + 6) / 4)).
- task k in 1..5 = OGBench's k-th (init cell, goal cell) pair. An episode starts at the init cell centre plus
  U(-1, 1)^2 noise, succeeds when ||xy - goal|| <= 1 after a step (and then terminates), and is cut at 1000 steps.
  With ``start="random"`` an episode starts instead in a free cell drawn uniformly from all but the goal cell
  (plus the same noise): D4RL maze2d's reset, which keeps the goal fixed and draws the start cell.

Planner (OGBench's oracle subgoal): BFS distances d over the free cells from the goal cell; from any other cell the
waypoint w is the centre of the 4-neighbour with the smallest d (the first of up, left, down, right on ties); in the
goal cell it is the goal itself. The expert action is the unit vector (w - xy) / ||w - xy||. The waypoints for
every (goal cell, agent cell) pair are tabulated once per maze.

Deviations from OGBench's environment, all deliberate:
- The physics model (walls, point body, integrator) is OGBench's own, built by its maze factory, but the step
  above runs on bare ``mujoco.MjData`` objects sharing that model, so n environments step as one batch and no
  global NumPy RNG is touched (OGBench's reset draws the task and the position noise from ``np.random``). The
  tests check that this step reproduces OGBench's ``env.step`` exactly.
- Goals carry no position noise: one fixed goal at the goal cell centre, as in D4RL's maze2d (OGBench adds
  U(-1, 1)^2 to goals).
- Actions are clipped to [-1, 1] before every step as a safety net: the point env moves qpos directly, so the
  actuators' ``ctrlrange`` never bounds them, and an out-of-range action would move the point further per step.

Pictures: ``scene(task)`` describes a task as plain arrays and numbers (maze map, cell size, goal, start region,
the point's radius); ``athanor.viz.maze`` draws them. Nothing here draws.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from athanor.core.errors import ConfigError, DataError, NonFiniteError

__all__ = ["MAZES", "START_MODES", "MazeTask", "make_task", "start_positions", "label", "rollout", "rollout_tasks",
           "scene", "Maze", "get_maze", "PointMazeSim", "bfs_distances", "waypoint", "planner_action", "oracle_policy",
           "ij_to_xy", "xy_to_ij"]

MAZES = ("arena", "medium", "large", "giant")
START_MODES = ("task", "random")
MAZE_UNIT = 4.0  # side of a maze cell (OGBench maze_unit)
OFFSET = 4.0  # cell (0, 0) is centred at (-OFFSET, -OFFSET) (OGBench _offset_x, _offset_y)
INIT_NOISE = 1.0  # start noise U(-1, 1) per axis (OGBench _noise * maze_unit / 4)
GOAL_TOL = 1.0  # success radius of the point env (OGBench _goal_tol for 'point')
ACTION_SCALE = 0.2  # qpos moves by 0.2 * action per step (OGBench PointEnv.step)
MAX_STEPS = 1000  # episode limit (OGBench max_episode_steps)
AGENT_RADIUS = 0.7  # the point's sphere geom (OGBench point.xml)
INSTALL = "pip install -e '.[rl]'"
_MOVES = ((-1, 0), (0, -1), (1, 0), (0, 1))  # OGBench's neighbour order; it decides ties between waypoints


def ij_to_xy(ij) -> np.ndarray:
    """Cell (i, j) [..., 2] -> its centre xy [..., 2]."""
    ij = np.asarray(ij, dtype=np.float64)
    return np.stack([ij[..., 1] * MAZE_UNIT - OFFSET, ij[..., 0] * MAZE_UNIT - OFFSET], axis=-1)


def xy_to_ij(xy) -> np.ndarray:
    """Position xy [..., 2] -> the cell (i, j) [..., 2] int64 containing it (not clipped to the grid)."""
    xy = np.asarray(xy, dtype=np.float64)
    shift = OFFSET + MAZE_UNIT / 2
    return np.stack([np.floor((xy[..., 1] + shift) / MAZE_UNIT), np.floor((xy[..., 0] + shift) / MAZE_UNIT)],
                    axis=-1).astype(np.int64)


def _import_physics():
    try:
        import mujoco
        from ogbench.locomaze.maze import make_maze_env
    except ImportError as e:
        raise DataError(f"the point maze needs MuJoCo and OGBench, which are not importable ({e}); "
                        f"install them with: {INSTALL}") from None
    return mujoco, make_maze_env


@dataclasses.dataclass(frozen=True, eq=False)
class Maze:
    """One maze layout with its physics model and planner tables (build with :func:`get_maze`)."""

    name: str
    grid: np.ndarray  # [H, W] int8, 1 = wall
    free: np.ndarray  # [F, 2] int64 (i, j) of the free cells, row-major
    tasks: tuple  # ((init_ij, goal_ij), ...) OGBench's task list
    waypoints: np.ndarray  # [H, W, H, W, 2] waypoint xy for (goal cell, agent cell)
    model: Any  # mujoco.MjModel of OGBench's maze
    frame_skip: int

    def cell(self, xy) -> np.ndarray:
        """The cell of each position [..., 2], clipped to the grid so that a lookup never leaves the tables."""
        ij = xy_to_ij(xy)
        return np.clip(ij, 0, np.array(self.grid.shape) - 1)


def bfs_distances(grid: np.ndarray, goal_ij) -> np.ndarray:
    """Shortest path length in cell moves from every free cell to ``goal_ij``; -1 at walls and unreachable cells."""
    h, w = grid.shape
    gi, gj = (int(v) for v in goal_ij)
    if not (0 <= gi < h and 0 <= gj < w) or grid[gi, gj] != 0:
        raise ValueError(f"goal cell {(gi, gj)} is not a free cell of the maze")
    dist = np.full((h, w), -1, np.int64)
    dist[gi, gj] = 0
    queue = collections.deque([(gi, gj)])
    while queue:
        i, j = queue.popleft()
        for di, dj in _MOVES:
            ni, nj = i + di, j + dj
            if 0 <= ni < h and 0 <= nj < w and grid[ni, nj] == 0 and dist[ni, nj] < 0:
                dist[ni, nj] = dist[i, j] + 1
                queue.append((ni, nj))
    return dist


def _waypoint_table(grid: np.ndarray, free: np.ndarray) -> np.ndarray:
    h, w = grid.shape
    centres = ij_to_xy(np.indices((h, w)).transpose(1, 2, 0))  # [H, W, 2]
    # Default entry: head straight for the goal cell's centre (the goal cell itself, and cells no path reaches).
    table = np.broadcast_to(centres[:, :, None, None, :], (h, w, h, w, 2)).copy()
    for gi, gj in free:
        dist = bfs_distances(grid, (gi, gj))
        for i, j in free:
            if (i, j) == (gi, gj) or dist[i, j] < 0:
                continue
            best = (i, j)
            for di, dj in _MOVES:
                ni, nj = i + di, j + dj
                if 0 <= ni < h and 0 <= nj < w and 0 <= dist[ni, nj] < dist[best]:
                    best = (ni, nj)
            table[gi, gj, i, j] = centres[best]
    table.setflags(write=False)
    return table


def _remove_temp_xml(env) -> None:
    # OGBench writes each maze's XML to a fresh temp file and never deletes it; the compiled model no longer needs it.
    path = getattr(env, "fullpath", None)
    if isinstance(path, str) and path.endswith(".xml") and \
            os.path.dirname(os.path.abspath(path)) == os.path.abspath(tempfile.gettempdir()):
        with contextlib.suppress(OSError):
            os.unlink(path)


def get_maze(name: str = "medium") -> Maze:
    """The maze ``name`` (one of MAZES) with OGBench's layout, tasks and physics model; cached per process."""
    if name not in MAZES:
        raise ConfigError(f"unknown maze '{name}'; choose one of {', '.join(MAZES)}")
    return _build_maze(name)


@functools.cache
def _build_maze(name: str) -> Maze:
    _, make_maze_env = _import_physics()
    env = make_maze_env("point", "maze", maze_type=name)
    _remove_temp_xml(env)
    grid = np.asarray(env.maze_map, dtype=np.int8)
    free = np.argwhere(grid == 0).astype(np.int64)
    ogb_centres = np.array([env.ij_to_xy(tuple(ij)) for ij in free], dtype=np.float64)
    if not np.array_equal(ogb_centres, ij_to_xy(free)) or env._goal_tol != GOAL_TOL:
        raise DataError(f"the installed OGBench places maze cells or goals differently from version 1.2.2; "
                        f"install the pinned version with: {INSTALL}")
    tasks = tuple((tuple(int(v) for v in t["init_ij"]), tuple(int(v) for v in t["goal_ij"])) for t in env.task_infos)
    grid.setflags(write=False)
    free.setflags(write=False)
    return Maze(name, grid, free, tasks, _waypoint_table(grid, free), env.model, int(env.frame_skip))


def waypoint(maze: Maze, xy, goal_ij) -> np.ndarray:
    """BFS waypoints [n, 2] for agents at ``xy`` [n, 2] heading for goal cells ``goal_ij`` ([2] or [n, 2])."""
    cell = maze.cell(xy)
    goal = np.broadcast_to(np.asarray(goal_ij, dtype=np.int64), cell.shape)
    return maze.waypoints[goal[..., 0], goal[..., 1], cell[..., 0], cell[..., 1]]


def planner_action(maze: Maze, xy, goal_ij) -> np.ndarray:
    """The noiseless expert: the unit vector [n, 2] from each xy to its BFS waypoint (zero when standing on it)."""
    xy = np.asarray(xy, dtype=np.float64)
    d = waypoint(maze, xy, goal_ij) - xy
    return d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-6)


class PointMazeSim:
    """``n`` point-maze environments on one compiled model, stepped as a batch (the step of OGBench's PointEnv)."""

    def __init__(self, maze: Maze, n: int):
        self._mujoco, _ = _import_physics()
        self.maze = maze
        self.datas = [self._mujoco.MjData(maze.model) for _ in range(int(n))]

    def reset(self, xy, idx=None) -> None:
        """Put environments ``idx`` (all by default) at rest at positions ``xy`` [len(idx), 2]."""
        mj, model = self._mujoco, self.maze.model
        idx = range(len(self.datas)) if idx is None else idx
        for k, p in zip(idx, np.asarray(xy, dtype=np.float64), strict=True):
            d = self.datas[k]
            # A full reset also clears the solver's warm start, so an episode never depends on the one before.
            mj.mj_resetData(model, d)
            d.qpos[:] = p
            d.qvel[:] = 0.0
            mj.mj_forward(model, d)

    def step(self, actions, idx=None) -> np.ndarray:
        """Apply ``actions`` [len(idx), 2] (clipped to [-1, 1]) to environments ``idx``; returns their new xy."""
        mj, model, skip = self._mujoco, self.maze.model, self.maze.frame_skip
        idx = range(len(self.datas)) if idx is None else idx
        a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        out = np.empty((len(idx), 2), np.float64)
        for r, k in enumerate(idx):
            d = self.datas[k]
            d.qpos[:] = d.qpos + ACTION_SCALE * a[r]
            d.qvel[:] = 0.0
            mj.mj_step(model, d, nstep=skip)
            out[r] = d.qpos
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class MazeTask:
    """One evaluation task: start near ``init_xy``, reach within ``goal_tol`` of ``goal_xy`` in ``max_steps``."""

    maze: str
    task_id: int
    init_xy: np.ndarray  # [2] init cell centre (episodes add U(-1, 1)^2)
    goal_xy: np.ndarray  # [2] goal cell centre, no noise
    goal_tol: float
    max_steps: int
    start: str = "task"  # "task": near init_xy; "random": a uniform free cell other than the goal's (maze2d)

    @property
    def goal_ij(self) -> tuple[int, int]:
        i, j = xy_to_ij(self.goal_xy)
        return int(i), int(j)


def _readonly(x) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    x.setflags(write=False)
    return x


def make_task(maze: str = "medium", task_id: int = 1, start: str = "task") -> MazeTask:
    """OGBench's task ``task_id`` (1-based) of ``maze`` as a single fixed goal at the goal cell centre.

    ``start``: "task" starts episodes near the task's init cell (OGBench), "random" in a uniformly drawn free cell
    other than the goal cell (D4RL maze2d).
    """
    m = get_maze(maze)
    if isinstance(task_id, bool) or not isinstance(task_id, (int, np.integer)) or not 1 <= task_id <= len(m.tasks):
        raise ConfigError(f"task_id must be an integer in 1..{len(m.tasks)} for the {maze} maze, got {task_id!r}")
    if start not in START_MODES:
        raise ConfigError(f"start must be one of {', '.join(START_MODES)}, got {start!r}")
    init_ij, goal_ij = m.tasks[int(task_id) - 1]
    return MazeTask(maze, int(task_id), _readonly(ij_to_xy(init_ij)), _readonly(ij_to_xy(goal_ij)), GOAL_TOL,
                    MAX_STEPS, start)


def start_positions(task: MazeTask, n_episodes: int, seed: int) -> np.ndarray:
    """Start positions [n, 2] of episodes 0..n-1: a cell centre plus U(-1, 1)^2, all drawn from
    ``np.random.default_rng([seed, k])`` for episode k; the cell is the task's init cell, or (``start="random"``)
    one drawn uniformly from the free cells other than the goal cell."""
    entropy = int(seed) % (1 << 64)
    free = get_maze(task.maze).free
    cells = free[np.any(free != np.array(task.goal_ij), axis=-1)]
    out = np.empty((int(n_episodes), 2))
    for k in range(int(n_episodes)):
        rng = np.random.default_rng([entropy, k])
        centre = task.init_xy if task.start == "task" else ij_to_xy(cells[rng.integers(len(cells))])
        out[k] = centre + rng.uniform(-INIT_NOISE, INIT_NOISE, 2)
    return out


def oracle_policy(task: MazeTask) -> Callable[[np.ndarray], np.ndarray]:
    """The planner as a policy for ``rollout``: observations [n, 2] -> unit actions [n, 2] towards the goal."""
    maze, goal = get_maze(task.maze), task.goal_ij
    return lambda obs: planner_action(maze, obs, goal).astype(np.float32)


def label(data: dict, task: MazeTask) -> tuple[np.ndarray, np.ndarray]:
    """Sparse maze2d rewards for ``task``: r = 1[||s' - goal|| <= tol] and masks = 1 - r (the goal terminates)."""
    nxt = np.asarray(data["next_observations"], dtype=np.float64)  # [N, 2]
    rewards = (np.linalg.norm(nxt - task.goal_xy, axis=-1) <= task.goal_tol).astype(np.float32)
    return rewards, (1.0 - rewards).astype(np.float32)


def rollout(policy: Callable[[np.ndarray], np.ndarray], task: MazeTask, n_episodes: int, seed: int, record: int = 0,
            progress: bool = False, *, fixed_batch: bool = True) -> dict:
    """Run ``n_episodes`` of ``task`` side by side, calling ``policy`` once per time step for all of them.

    Episode k starts at ``start_positions(task, n, seed)[k]`` (the same starts for every policy). With
    ``fixed_batch`` (the default) the policy always sees all ``n_episodes`` observations [n, 2] float32, so a jitted
    policy compiles once; rows of finished episodes hold their final positions and their actions are ignored. With
    ``fixed_batch=False`` it sees only the still-running episodes. Actions are clipped to [-1, 1] before the step.

    Returns {"success": fraction of episodes that reached the goal, "time_to_goal": mean steps of the successful
    ones (nan if none), "xy": [record, max_steps + 1, 2] float32 positions of the first ``record`` episodes padded
    with their last position, "lengths": [record] steps taken, "actions": [M, 2] float32 every clipped action
    applied, "episode_success": [n] bool, "episode_lengths": [n] int64}.
    """
    n = int(n_episodes)
    if n < 1 or not 0 <= record <= n:
        raise ConfigError(f"rollout needs n_episodes >= 1 and 0 <= record <= n_episodes, got {n_episodes}, {record}")
    out = _simulate(policy, task.maze, start_positions(task, n, seed), np.broadcast_to(task.goal_xy, (n, 2)),
                    task.goal_tol, task.max_steps, record, progress, fixed_batch, f"{task.maze} task {task.task_id}")
    success, steps = out["episode_success"], out["episode_lengths"]
    return {"success": float(success.mean()),
            "time_to_goal": float(steps[success].mean()) if success.any() else float("nan"), **out}


def rollout_tasks(policy: Callable[[np.ndarray], np.ndarray], tasks: list[MazeTask], n_episodes: int, seed: int,
                  progress: bool = False) -> dict:
    """``rollout`` of many tasks of one maze as one batch: ``n_episodes`` episodes of each, task k's starting at
    ``start_positions(tasks[k], n, seed + k)`` (the starts ``rollout(policy, tasks[k], n, seed + k)`` uses) and
    ending at its own goal, all with the first task's tolerance and time limit.

    ``policy`` sees the observations of all K * n episodes [K * n, 2], task by task (rows k * n .. k * n + n - 1
    are task k's), so it can hold one row of extra input (a goal, a task vector) per episode. Returns
    {"success": [K] fraction of each task's episodes that reached its goal, "episode_success": [K, n] bool,
    "episode_lengths": [K, n] int64}. Each episode's trajectory equals the one ``rollout`` gives it alone: the
    environments share nothing.
    """
    n, tasks = int(n_episodes), list(tasks)
    if n < 1 or not tasks:
        raise ConfigError(f"rollout_tasks needs n_episodes >= 1 and at least one task, got {n_episodes}, "
                          f"{len(tasks)} tasks")
    first = tasks[0]
    if any(t.maze != first.maze for t in tasks):
        raise ConfigError("rollout_tasks runs tasks of one maze; got " + ", ".join(sorted({t.maze for t in tasks})))
    starts = np.concatenate([start_positions(t, n, seed + k) for k, t in enumerate(tasks)])
    goals = np.repeat(np.stack([t.goal_xy for t in tasks]), n, axis=0)
    out = _simulate(policy, first.maze, starts, goals, first.goal_tol, first.max_steps, 0, progress, True,
                    f"{first.maze}, {len(tasks)} tasks")
    success = out["episode_success"].reshape(len(tasks), n)
    return {"success": success.mean(axis=1), "episode_success": success,
            "episode_lengths": out["episode_lengths"].reshape(len(tasks), n)}


def _simulate(policy, maze_name: str, starts: np.ndarray, goals: np.ndarray, goal_tol: float, max_steps: int,
              record: int, progress: bool, fixed_batch: bool, desc: str) -> dict:
    """The episodes of ``rollout``: episode k from ``starts[k]`` until it is within ``goal_tol`` of ``goals[k]`` or
    ``max_steps`` have passed."""
    from tqdm.auto import tqdm

    n = len(starts)
    sim = PointMazeSim(get_maze(maze_name), n)
    sim.reset(starts)
    xy = starts.copy()  # [n, 2]
    running = np.ones(n, bool)
    success = np.zeros(n, bool)
    steps = np.zeros(n, np.int64)
    traj = np.empty((record, max_steps + 1, 2), np.float32)
    traj[:, 0] = xy[:record]
    taken = []
    t = 0
    with tqdm(total=max_steps, unit="step", desc=f"rollout {desc}", disable=not progress, leave=False) as bar:
        while t < max_steps and running.any():
            idx = np.flatnonzero(running)
            obs = (xy if fixed_batch else xy[idx]).astype(np.float32)
            out = np.asarray(policy(obs))
            if out.shape != obs.shape:
                raise ValueError(f"policy returned actions of shape {out.shape} for observations {obs.shape}; "
                                 "it must map [n, 2] observations to [n, 2] actions")
            a = np.asarray(out[idx] if fixed_batch else out, dtype=np.float64)
            if not np.isfinite(a).all():
                raise NonFiniteError(f"policy returned non-finite actions at step {t} of {desc}; check the actor's "
                                     "outputs before evaluating")
            a = np.clip(a, -1.0, 1.0)
            xy[idx] = sim.step(a, idx)
            taken.append(a.astype(np.float32))
            steps[idx] += 1
            hit = np.linalg.norm(xy[idx] - goals[idx], axis=-1) <= goal_tol
            success[idx[hit]] = True
            running[idx[hit]] = False
            t += 1
            traj[:, t] = xy[:record]
            bar.update(1)
    traj[:, t + 1:] = traj[:, t:t + 1]
    return {"xy": traj, "lengths": steps[:record].copy(),
            "actions": np.concatenate(taken) if taken else np.zeros((0, 2), np.float32),
            "episode_success": success, "episode_lengths": steps}


def scene(task: MazeTask) -> dict:
    """The task as plain values for ``athanor.viz.maze.MazeScene(**scene(task))``: the maze map, the cell size, the
    map's outer corner at cell (0, 0), the goal and its success radius, the start region (the init cell's centre
    +- the start noise, only for ``start="task"``) and the point's radius."""
    m = get_maze(task.maze)
    corner = -OFFSET - MAZE_UNIT / 2
    return {"grid": m.grid, "unit": MAZE_UNIT, "corner": (corner, corner), "goal": task.goal_xy,
            "goal_radius": task.goal_tol, "start": task.init_xy if task.start == "task" else None,
            "start_halfwidth": INIT_NOISE, "agent_radius": AGENT_RADIUS}
