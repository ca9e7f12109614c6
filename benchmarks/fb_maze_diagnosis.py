"""Where FB's zero-shot success on the point maze falls short of IQL's: the time limit, the actor, or F itself.

    python benchmarks/fb_maze_diagnosis.py FB_RUN_DIR [IQL_RUN_DIR ...] [--states 2000]
                                           [--out benchmarks/results/fb-maze-diagnosis-s<seed>.json]

``FB_RUN_DIR`` is an ``fb-maze`` run, each ``IQL_RUN_DIR`` an ``iql`` run on the same maze (the `successor`
experiment's ``iql-task{k}``); each is read at its last checkpoint. For each of the maze's five task goals g, with
z_g inferred exactly as ``fb_maze.zero_shot`` does:

- ``success``: the zero-shot policy pi(s, z_g) from the starts of the run's final evaluation at its time limit
  (``eval_max_steps``): this reproduces the run's ``success_task{k}`` (``reproduces`` says whether exactly), and
  ``success_long`` from the same starts at ``long_limit`` steps (by default 1000, the limit of the maze's tasks,
  which IQL's episodes have);
- ``success_q_greedy``: the policy that takes, of ``DIRECTIONS`` unit actions evenly spread on the circle, the one
  with the highest min_k F_k(s, a, z_g)^T z_g (the actor's own objective, maximised by enumeration instead of by
  the actor), at the run's time limit. Higher than ``success``: the actor does not find F's best action; about
  equal: what F^T z prefers is what the actor does;
- at ``states`` dataset states (the same ones for every run): ``cos_actor`` and ``cos_q_greedy``, the mean
  cosine between those policies' action and the maze planner's (the expert that moves to the next cell of a
  shortest path), and ``value_rank``, the Spearman correlation between min_k F_k(s, pi(s, z_g), z_g)^T z_g and
  minus the state's shortest-path distance (in cells) to g. A value that ranks states by their distance to the
  goal knows the way; one that does not cannot guide any policy.

For each IQL run, the same ``cos_actor`` (its evaluation action) and ``value_rank`` (its V network) at the same
states for its own goal, beside its ``success`` from its summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from athanor.core import config as C
from athanor.core.rundir import write_json
from athanor.core.runloop import eval_seed
from athanor.core.runs import load_run, read_meta
from athanor.envs import pointmaze
from athanor.systems import get_system
from athanor.systems.offline_rl import iql
from athanor.systems.successor import fb_maze

DIRECTIONS = 16  # unit actions the Q-greedy policy chooses among
STATE_SEED = 0  # the dataset states the value and action statistics are measured at


def _load(run_dir: Path):
    meta = read_meta(run_dir)
    system = get_system(meta["system"]).bind()
    cfg = C.from_dict(system.Config, meta["config"])
    return meta, system, cfg


def _distance(maze: pointmaze.Maze, xy: np.ndarray, goal_ij) -> np.ndarray:
    """Shortest-path distance in cells from each position's cell to the goal cell."""
    ij = maze.cell(xy)
    return pointmaze.bfs_distances(maze.grid, goal_ij)[ij[:, 0], ij[:, 1]].astype(np.float64)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > 1e-6) & (nb > 1e-6)
    return float(np.mean(np.sum(a[ok] * b[ok], -1) / (na[ok] * nb[ok])))


def fb_diagnosis(run_dir: Path, n_states: int, long_limit: int = pointmaze.MAX_STEPS) -> tuple[dict, np.ndarray]:
    meta, system, cfg = _load(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    data = fb_maze.load_data(cfg, meta["seed"])
    _, state = load_run(run_dir, system, template=jax.eval_shape(lambda: fb_maze.init(cfg, meta["seed"], data)))
    params, maze = state.params, pointmaze.get_maze(cfg.maze)
    # z for every free cell and the episodes' starts exactly as the run's final evaluation drew them.
    seed, episodes = eval_seed(meta["seed"], summary["steps_done"]), cfg.eval_episodes
    n = min(cfg.z_samples, data["next_obs"].shape[0])
    idx = np.random.default_rng(seed).choice(data["next_obs"].shape[0], n, replace=False)
    rewards = np.linalg.norm(data["next_xy"][idx, None, :] - data["goals"][None], axis=-1) <= cfg.goal_tol
    z_all = fb_maze.goal_vectors(params, cfg, data["next_obs"][idx], jnp.asarray(rewards, jnp.float32))
    angles = 2 * np.pi * np.arange(DIRECTIONS) / DIRECTIONS
    dirs = jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], -1), jnp.float32)  # (A, 2)
    mean, std = jnp.asarray(data["mean"]), jnp.asarray(data["std"])

    @jax.jit
    def q_of(xy, a, z):  # min over heads of F_k(s, a, z)^T z for rows of xy (n, 2), a (n, 2), z (n, d)
        f = fb_maze.forward_heads(params, cfg, (xy - mean) / std, a, z)
        return jnp.min(jnp.einsum("nkd,nd->nk", f, z), axis=1)

    @jax.jit
    def greedy(xy, z):
        q = jax.vmap(lambda a: q_of(xy, jnp.broadcast_to(a, xy.shape), z))(dirs)  # (A, n)
        return dirs[jnp.argmax(q, axis=0)]

    def actor(xy, z):
        return fb_maze._act_xy(params, cfg, xy, mean, std, z)

    ks = [int(k) for k in data["task_goal_index"]]  # the task goals' indices among the free cells
    if missing := [t for t, k in enumerate(ks, 1) if not rewards[:, k].any()]:
        raise SystemExit(f"no reward sample of {run_dir.name}'s data reaches the goal of task(s) {missing}: there is "
                         f"nothing to infer z from; diagnose a run whose data cover the task goals")

    def success(fn, limit):
        """Per task goal, the evaluation's episodes: zero_shot rolls out every cell with reward samples as one batch,
        the i-th of them from the starts of seed + i."""
        order = {int(c): i for i, c in enumerate(np.flatnonzero(rewards.any(axis=0)))}
        out = []
        for k in ks:
            task = pointmaze.MazeTask(cfg.maze, 0, data["goals"][k], data["goals"][k], cfg.goal_tol, limit, "random")
            z = jnp.broadcast_to(z_all[k], (episodes, cfg.dim))
            pol = lambda xy, z=z: np.asarray(fn(jnp.asarray(xy, jnp.float32), z))  # noqa: E731
            out.append(float(pointmaze.rollout_tasks(pol, [task], episodes, seed + order[k])["success"][0]))
        return out

    out = {"success": success(actor, cfg.eval_max_steps), "success_long": success(actor, long_limit),
           "success_q_greedy": success(greedy, cfg.eval_max_steps)}
    pick = np.random.default_rng(STATE_SEED).choice(len(data["next_xy"]), min(n_states, len(data["next_xy"])),
                                                    replace=False)
    xy = data["next_xy"][pick]
    xy_j = jnp.asarray(xy, jnp.float32)
    rows = {key: [] for key in ("cos_actor", "cos_q_greedy", "value_rank")}
    for k in ks:
        goal_ij = tuple(int(v) for v in data["cells"][k])
        z = jnp.broadcast_to(z_all[k], (len(xy), cfg.dim))
        expert = pointmaze.planner_action(maze, xy, goal_ij)
        a = np.asarray(actor(xy_j, z))
        rows["cos_actor"].append(_cos(a, expert))
        rows["cos_q_greedy"].append(_cos(np.asarray(greedy(xy_j, z)), expert))
        v = np.asarray(q_of(xy_j, jnp.asarray(a), z))
        rows["value_rank"].append(float(stats.spearmanr(v, -_distance(maze, xy, goal_ij)).statistic))
    out.update(rows)
    logged = [summary["final"][f"success_task{t}"] for t in range(1, len(ks) + 1)]
    result = {"run": run_dir.name, "seed": meta["seed"], "updates": summary["steps_done"],
              "tasks": list(range(1, len(ks) + 1)), "long_limit": long_limit,
              "reproduces": bool(np.allclose(out["success"], logged)),
              **{key: np.round(np.asarray(v, np.float64), 3).tolist() for key, v in out.items()},
              **{f"{key}_mean": round(float(np.mean(v)), 3) for key, v in out.items()}}
    return result, xy


def iql_diagnosis(run_dir: Path, xy: np.ndarray) -> dict:
    meta, system, cfg = _load(run_dir)
    data = iql.load_data(cfg, meta["seed"])
    _, state = load_run(run_dir, system, template=jax.eval_shape(lambda: iql.init(cfg, meta["seed"], data)))
    task = iql.make_task(cfg)
    maze = pointmaze.get_maze(cfg.maze)
    xy_j = jnp.asarray(xy, jnp.float32)
    a = np.asarray(iql.policy_action(state.params, data, xy_j, cfg, cfg.eval_action))
    v = np.asarray(iql._value(cfg).apply({"params": state.params["value"]}, iql._norm(data, xy_j))).reshape(-1)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"run": run_dir.name, "seed": meta["seed"], "task": cfg.task_id,
            "success": summary["final"]["success"],
            "cos_actor": round(_cos(a, pointmaze.planner_action(maze, xy, task.goal_ij)), 3),
            "value_rank": round(float(stats.spearmanr(v, -_distance(maze, xy, task.goal_ij)).statistic), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fb_run", type=Path)
    ap.add_argument("iql_runs", type=Path, nargs="*")
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--out", help="default: benchmarks/results/fb-maze-diagnosis-s<the FB run's seed>.json")
    args = ap.parse_args()
    fb_out, xy = fb_diagnosis(args.fb_run, args.states)
    print(json.dumps(fb_out), flush=True)
    iql_out = []
    for run in args.iql_runs:
        iql_out.append(iql_diagnosis(run, xy))
        print(json.dumps(iql_out[-1]), flush=True)
    out = {"command": f"python benchmarks/fb_maze_diagnosis.py FB_RUN_DIR IQL_RUN_DIR ... --states {args.states}",
           "directions": DIRECTIONS, "fb": fb_out,
           "iql": iql_out}
    path = Path(args.out or f"benchmarks/results/fb-maze-diagnosis-s{fb_out['seed']}.json")
    write_json(path, out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
