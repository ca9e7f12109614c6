"""Why DDPG extraction fails on the point maze: the actor's first updates, and where a trained policy ends.

    python benchmarks/ddpg_collapse.py trace [--seeds 0 1 2 3] [--updates 12000] [--actor-warmup 0]
                                             [--out benchmarks/results/ddpg-collapse.json]
    python benchmarks/ddpg_collapse.py ends RUN_DIR [RUN_DIR ...] [--episodes 50]
                                             [--out benchmarks/results/ddpg-ends.json]

``trace``: each seed starts exactly as ``athanor run iql-ddpg --preset full --seed N`` does (same data, same
initial key, same 1000-update calls), so the trace is the beginning of that run. After every call, on the fixed
batch of ``stat_states`` dataset states the experiment's statistics use, it records:

- ``saturated``: per action dimension, the share of states whose tanh pre-activation is beyond +-3
  (tanh' < 0.01 there: the actor's gradient is all but gone);
- ``actor_corner``: the share of states whose action lies in each quadrant (signs (+,+), (+,-), (-,+), (-,-));
- ``critic_corner``: the share of states at which each corner (+-1, +-1) has the highest min(Q1, Q2) of the
  target critic, the one the actor climbs;
- ``agree``: the share of states where the actor's quadrant is the critic's best corner.

A collapse shows as one dimension saturated at almost every state early on, while the critic's preferred corners
spread out over the following updates and ``agree`` stays low.

``ends``: for each run directory (any IQL head; its last checkpoint), ``episodes`` episodes from random starts,
and for the failed ones where they stopped: the median offset from the goal and distance to it, and the share
that stopped within 2.5 of it (the goal counts within ``goal_tol`` = 1). Beside that, the value network on a
21 x 21 grid over the goal's cell (centre +-2): V at the goal, its maximum and where the maximum is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from athanor.core import config as C
from athanor.core.rundir import write_json
from athanor.core.runs import load_run, read_meta
from athanor.envs import pointmaze
from athanor.systems import get_system
from athanor.systems.offline_rl import iql

CORNERS = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
SATURATED = 3.0  # |pre-activation| beyond which tanh' = 1 - tanh^2 < 0.01
EPISODE_SEED = 777  # start cells of the ``ends`` episodes: the same for every run compared


def diagnostics(state: iql.State, data: dict, cfg: iql.Config) -> dict:
    s = iql._norm(data, data["stat_obs"])
    pre, _ = iql._actor(cfg).apply({"params": state.params["actor"]}, s)

    def q(a):
        q1, q2 = iql._critic(cfg).apply({"params": state.target}, s, jnp.broadcast_to(a, pre.shape))
        return jnp.minimum(q1, q2)

    best = jnp.argmax(jnp.stack([q(c) for c in CORNERS], 1), 1)
    own = jnp.argmax((jnp.sign(pre)[:, None, :] == CORNERS[None]).all(-1), 1)

    def share(idx):
        return np.round(np.bincount(np.asarray(idx), minlength=4) / idx.shape[0], 3).tolist()

    return {"saturated": np.round(np.mean(np.abs(np.asarray(pre)) > SATURATED, 0), 3).tolist(),
            "actor_corner": share(own), "critic_corner": share(best), "agree": round(float(jnp.mean(own == best)), 3)}


def trace(seed: int, updates: int, actor_warmup: int) -> list[dict]:
    cfg = iql.Config(head="ddpg", actor_warmup=actor_warmup)
    data = iql.load_data(cfg, seed)
    state = iql.init(cfg, seed, data)
    rows = [{"updates": 0, **diagnostics(state, data, cfg)}]
    for done in range(cfg.inner_steps, updates + 1, cfg.inner_steps):
        state, _ = iql.step(state, data, cfg)
        rows.append({"updates": done, **diagnostics(state, data, cfg)})
        print(json.dumps({"seed": seed, **rows[-1]}), flush=True)
    return rows


def ends(run_dir: Path, episodes: int) -> dict:
    meta = read_meta(run_dir)
    done = json.loads((run_dir / "summary.json").read_text())["steps_done"]
    system = get_system(meta["system"]).bind()
    cfg = C.from_dict(system.Config, meta["config"])
    data = iql.load_data(cfg, meta["seed"])
    _, state = load_run(run_dir, system, template=iql.init(cfg, meta["seed"], data))
    task = iql.make_task(cfg)

    def policy(obs):
        return np.asarray(iql.policy_action(state.params, data, jnp.asarray(obs, jnp.float32), cfg, cfg.eval_action))

    roll = pointmaze.rollout(policy, task, episodes, seed=EPISODE_SEED, record=episodes)
    stop = roll["xy"][np.arange(episodes), roll["lengths"]] - task.goal_xy  # [episodes, 2] offset from the goal
    failed = stop[~roll["episode_success"]]
    dist = np.linalg.norm(failed, axis=1)
    offsets = np.linspace(-2.0, 2.0, 21)
    grid = np.stack(np.meshgrid(offsets, offsets), -1).reshape(-1, 2)
    v = np.asarray(iql._value(cfg).apply({"params": state.params["value"]},
                                          iql._norm(data, jnp.asarray(task.goal_xy + grid, jnp.float32)))).reshape(-1)
    top = int(np.argmax(v))
    return {"run": run_dir.name, "head": cfg.head, "seed": meta["seed"], "actor_warmup": cfg.actor_warmup,
            "updates": done, "success": float(roll["success"]), "failed": int(len(failed)),
            "failed_stop_offset_median": np.round(np.median(failed, 0), 2).tolist() if len(failed) else None,
            "failed_stop_distance_median": round(float(np.median(dist)), 2) if len(failed) else None,
            "failed_within_2.5": round(float(np.mean(dist < 2.5)), 2) if len(failed) else None,
            "v_goal": round(float(v[len(v) // 2]), 2), "v_max_goal_cell": round(float(v[top]), 2),
            "v_max_offset": np.round(grid[top], 2).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("trace", help="the first updates of fresh DDPG runs")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    t.add_argument("--updates", type=int, default=12_000)
    t.add_argument("--actor-warmup", type=int, default=0)
    t.add_argument("--out", default="benchmarks/results/ddpg-collapse.json")
    e = sub.add_parser("ends", help="where trained policies stop, and the value around the goal")
    e.add_argument("runs", nargs="+", type=Path)
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--out", default="benchmarks/results/ddpg-ends.json")
    args = ap.parse_args()
    if args.cmd == "trace":
        out = {"command": f"python benchmarks/ddpg_collapse.py trace --seeds {' '.join(map(str, args.seeds))} "
                          f"--updates {args.updates} --actor-warmup {args.actor_warmup}",
               "runs": {str(s): trace(s, args.updates, args.actor_warmup) for s in args.seeds}}
    else:
        out = {"command": f"python benchmarks/ddpg_collapse.py ends RUN_DIR ... --episodes {args.episodes}",
               "runs": []}
        for run in args.runs:
            out["runs"].append(ends(run, args.episodes))
            print(json.dumps(out["runs"][-1]), flush=True)
    write_json(Path(args.out), out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
