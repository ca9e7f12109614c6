"""Forward-backward representations on the point maze: continuous states and actions, learned from the reward-free
transitions of the `offline-rl` dataset, then sent zero-shot to every cell of the maze (Touati & Ollivier 2021;
Touati, Rapin & Ollivier 2023; "Successor Representations Explained").

The model and the Bellman loss on M = F^T B rho are those of ``fb.py`` (read its docstring first), with what
continuous actions need, as in the reference's continuous-control agent:

- an actor pi(s, z) = tanh(mu(s, z)) replaces the argmax: it climbs min_k F_k(s, pi(s, z), z)^T z (DDPG, no
  behaviour cloning), with the F heads held fixed in its loss;
- two F heads F_1, F_2 (one network, two outputs); each is trained on the same target, the elementwise smaller of
  the two target matrices, T_ij = gamma min_k F-bar_k(s'_i, a'_i, z_i)^T B-bar(s'_j), with a'_i = pi(s'_i, z_i)
  plus Gaussian noise of std ``target_noise`` clipped at ``target_noise_clip`` (the reference's TD3-style
  smoothing);
- LayerNorm after the input layer of every network, as in the IQL critic of ``offline_rl/iql.py``; the inputs
  are positions standardised by the dataset's mean and std (as IQL does).

F(s, a, z) has two input branches: (s, a) alone, and (s, a, z) (``fb.Net``); the actor's are s alone and (s, z);
B(s') is an MLP scaled to radius sqrt(d). One Adam steps F, B and the actor together: the actor's loss reaches only
the actor's weights and the FB loss never reaches them, so this equals separate optimisers at one learning rate.

Zero-shot: for a goal cell g, the reward of the point maze's success test, r(s') = [||s' - g|| <= goal_tol], on
``z_samples`` next states of the dataset gives z_g = mean B(s') r(s') (scaled to radius sqrt(d)); the agent acts
with pi(s, z_g). ``evaluate`` runs ``eval_episodes`` episodes towards every free cell of the maze (starts in
uniformly drawn other cells, the maze2d protocol of ``envs/pointmaze.py``) and reports the mean success over cells
(``success``) and over the goals of the maze's five OGBench tasks (``success_tasks``, and ``success_task{k}`` for
each: the goals IQL is trained on one at a time in the `successor` experiment). All cells' episodes run as one
batch.

Ours, not the reference's: the widths (256, the IQL networks' size; the reference's F is 1024 wide), the learning
rate 3e-4 (the IQL one; the reference's 1e-4 is for millions of updates), gamma 0.99 (IQL's), the number of updates.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import ConfigError, TrainConfig, param
from athanor.data import pointmaze as datasets
from athanor.envs import pointmaze
from athanor.systems.successor import fb


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(50_000, lo=1)  # gradient updates (ours)
    inner_steps: int = param(500, lo=1)  # updates fused per jitted call (speed only)
    eval_every: int = param(10_000, lo=0)  # updates between zero-shot evaluations
    maze: str = param("medium", choices=("arena", "medium", "large", "giant"))  # the offline-rl experiment's maze
    data_episodes: int = param(1000, lo=1)  # the offline-rl dataset: 1000 planner episodes ...
    data_episode_len: int = param(1001, lo=2)  # ... of 1001 states ...
    data_noise: float = param(0.5, lo=0.0)  # ... with action noise std 0.5
    data_seed: int = param(0, lo=0)  # the generator's seed
    gamma: float = param(0.99, lo=0.0, hi=0.999)  # discount (IQL's)
    dim: int = param(50, lo=1)  # d (reference: 50)
    hidden: tuple[int, ...] = (256, 256)  # widths of F, B and the actor (ours; the IQL networks' size)
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # Adam step size for all three networks (ours)
    batch_size: int = param(1024, lo=2)  # transitions per update (reference: 1024)
    polyak: float = param(0.01, lo=0.0, hi=1.0)  # target rate (reference: 0.01)
    ortho_coef: float = param(1.0, lo=0.0)  # orthonormality weight (reference: 1)
    mix_ratio: float = param(0.5, lo=0.0, hi=1.0)  # training z's from B of dataset states (reference: 0.5)
    b_norm: bool = True  # B scaled to radius sqrt(d) (reference)
    target_noise: float = param(0.2, lo=0.0)  # std of the noise on the target's next action (reference: 0.2)
    target_noise_clip: float = param(0.3, lo=0.0)  # ... clipped at this (reference: 0.3)
    goal_tol: float = param(pointmaze.GOAL_TOL, lo=0.0)  # a goal is reached within this distance (OGBench: 1)
    z_samples: int = param(100_000, lo=1)  # dataset next states whose rewards infer z_g
    eval_episodes: int = param(50, lo=1)  # episodes towards each cell per evaluation (all cells run as one batch)
    eval_max_steps: int = param(500, lo=1)  # episode limit in evaluations (ours; a medium maze crossing is ~200)


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_every": 10, "hidden": (32,), "dim": 8, "batch_size": 64,
             "data_episodes": 8, "data_episode_len": 101, "z_samples": 500, "eval_episodes": 1, "eval_max_steps": 20},
    "quick": {"steps": 20_000, "eval_every": 10_000, "eval_episodes": 20},
    "full": {"ckpt_every": 10_000},
}


class State(struct.PyTreeNode):
    params: Any  # {"F", "B", "actor"}
    target: Any  # Polyak copies (the target's actor is unused: next actions come from the online actor)
    opt_state: Any
    key: jax.Array


def _nets(cfg: Config) -> dict[str, fb.Net]:
    return {"F": fb.Net(cfg.hidden, (2, cfg.dim)), "B": fb.Net(cfg.hidden, (cfg.dim,)),
            "actor": fb.Net(cfg.hidden, (2,))}


def load_data(cfg: Config, seed: int) -> dict[str, Any]:
    """The offline-rl dataset's transitions (standardised positions ``obs``, ``next_obs`` and raw ``next_xy``,
    ``actions``), the position statistics, and the free cells' centres ``goals`` with the tasks' goal cells
    indexed (``task_goal_index``: task k's goal cell is ``goals[task_goal_index[k - 1]]``). The run's ``seed`` is
    not used: like the offline-rl experiment, every seed trains on the same data."""
    if not cfg.hidden or any(w < 1 for w in cfg.hidden):
        raise ConfigError(f"config key 'hidden' = {cfg.hidden}: give one or more positive layer widths, e.g. 256,256")
    spec = datasets.MazeDataSpec(maze=cfg.maze, episodes=cfg.data_episodes, episode_len=cfg.data_episode_len,
                                 noise=cfg.data_noise, seed=cfg.data_seed)
    raw = datasets.load(spec)
    obs, nxt = np.asarray(raw["observations"], np.float32), np.asarray(raw["next_observations"], np.float32)
    mean, std = obs.mean(0), obs.std(0) + 1e-3
    maze = pointmaze.get_maze(cfg.maze)
    free = [tuple(int(v) for v in c) for c in maze.free]
    return {"obs": jnp.asarray((obs - mean) / std), "next_obs": jnp.asarray((nxt - mean) / std),
            "next_xy": nxt, "actions": jnp.asarray(raw["actions"], jnp.float32), "mean": mean, "std": std,
            "cells": np.asarray(maze.free), "goals": pointmaze.ij_to_xy(maze.free),
            "task_goal_index": np.array([free.index(goal) for _, goal in maze.tasks])}


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def init(cfg: Config, seed: int, data) -> State:
    keys = jax.random.split(jaxtools.key(seed), 4)
    nets, s, a, z = _nets(cfg), jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, cfg.dim))
    params = {"F": nets["F"].init(keys[0], jnp.concatenate([s, a], -1), z)["params"],
              "B": nets["B"].init(keys[1], s)["params"], "actor": nets["actor"].init(keys[2], s, z)["params"]}
    return State(params=params, target=params, opt_state=_optimizer(cfg).init(params), key=keys[3])


def forward_heads(params, cfg: Config, s: jax.Array, a: jax.Array, z: jax.Array) -> jax.Array:
    """F_1, F_2 at (s, a, z): (..., 2, d)."""
    return fb.Net(cfg.hidden, (2, cfg.dim)).apply({"params": params["F"]}, jnp.concatenate([s, a], -1), z)


def act(params, cfg: Config, s: jax.Array, z: jax.Array) -> jax.Array:
    """pi(s, z) = tanh(mu(s, z)) in [-1, 1]^2."""
    return jnp.tanh(fb.Net(cfg.hidden, (2,)).apply({"params": params["actor"]}, s, z))


def batch_loss(params, target, cfg: Config, s, a, s_next, key: jax.Array) -> tuple[jax.Array, dict]:
    """FB loss (both heads, one shared min target), orthonormality penalty and the actor's loss, for one batch of
    standardised positions and actions."""
    k_z, k_noise = jax.random.split(key)
    b_next = fb.backward(params, cfg, s_next)
    z = fb.sample_z(k_z, jnp.roll(b_next, 1, axis=0), cfg)
    noise = jnp.clip(cfg.target_noise * jax.random.normal(k_noise, a.shape), -cfg.target_noise_clip,
                     cfg.target_noise_clip)
    a_next = jnp.clip(jax.lax.stop_gradient(act(params, cfg, s_next, z)) + noise, -1.0, 1.0)
    F_next = forward_heads(target, cfg, s_next, a_next, z)  # (n, 2, d)
    b_bar = fb.backward(target, cfg, s_next)
    target_m = cfg.gamma * jax.lax.stop_gradient(jnp.minimum(F_next[:, 0] @ b_bar.T, F_next[:, 1] @ b_bar.T))
    F_sa = forward_heads(params, cfg, s, a, z)
    (l1, diag), (l2, _) = (fb.fb_loss(F_sa[:, k], b_next, target_m) for k in (0, 1))
    l_ortho = fb.ortho_loss(b_next)
    frozen = jax.lax.stop_gradient({"F": params["F"]})
    q = jnp.einsum("nkd,nd->nk", forward_heads(frozen, cfg, s, act(params, cfg, s, z), z), z)
    l_actor = -jnp.mean(jnp.min(q, axis=1))
    loss = l1 + l2 + cfg.ortho_coef * l_ortho + l_actor
    return loss, {"fb_loss": 0.5 * (l1 + l2), "ortho_loss": l_ortho, "actor_loss": l_actor, "m_diag": diag}


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    """``cfg.inner_steps`` updates in one ``lax.scan``; the targets follow by Polyak."""
    n = data["obs"].shape[0]

    def loss(params, target, key):
        k_idx, k_loss = jax.random.split(key)
        idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, n)
        return batch_loss(params, target, cfg, data["obs"][idx], data["actions"][idx], data["next_obs"][idx],
                          k_loss)

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), loss, target=cfg.polyak)


@functools.partial(jax.jit, static_argnames="cfg")
def goal_vectors(params, cfg: Config, next_obs: jax.Array, rewards: jax.Array) -> jax.Array:
    """z_g (K, d) on the sphere from rewards (n, K) at standardised next states (n, 2)."""
    return fb.to_sphere(fb.infer_z(fb.backward(params, cfg, next_obs), rewards), cfg.dim)


@functools.partial(jax.jit, static_argnames="cfg")
def _act_xy(params, cfg: Config, xy: jax.Array, mean: jax.Array, std: jax.Array, z: jax.Array) -> jax.Array:
    """pi(s, z) for raw positions xy (n, 2) and one task vector per row z (n, d)."""
    return act(params, cfg, (xy - mean) / std, z)


def zero_shot(params, cfg: Config, data, seed: int) -> np.ndarray:
    """Success rate (K,) of the zero-shot policy towards every free cell (NaN where no reward sample reaches the
    cell: there is nothing to infer z from). All cells' episodes run as one batch (``pointmaze.rollout_tasks``)."""
    n = min(cfg.z_samples, data["next_obs"].shape[0])
    idx = np.random.default_rng(seed).choice(data["next_obs"].shape[0], n, replace=False)
    goals = data["goals"]
    rewards = (np.linalg.norm(data["next_xy"][idx, None, :] - goals[None], axis=-1) <= cfg.goal_tol)
    z = goal_vectors(params, cfg, data["next_obs"][idx], jnp.asarray(rewards, jnp.float32))
    out = np.full(len(goals), np.nan)
    ks = np.flatnonzero(rewards.any(axis=0))
    if len(ks) == 0:
        return out
    tasks = [pointmaze.MazeTask(cfg.maze, 0, goals[k], goals[k], cfg.goal_tol, cfg.eval_max_steps, "random")
             for k in ks]
    z_rows = jnp.repeat(z[ks], cfg.eval_episodes, axis=0)
    policy = lambda xy: np.asarray(_act_xy(params, cfg, xy, data["mean"], data["std"], z_rows))  # noqa: E731
    out[ks] = pointmaze.rollout_tasks(policy, tasks, cfg.eval_episodes, seed)["success"]
    return out


def _metrics(success: np.ndarray, data) -> dict[str, float]:
    """The evaluation's metrics; a cell no reward sample reached has no success rate, so the task metrics that would
    read only such cells are left out (``goals_without_samples`` counts them)."""
    tasks = success[data["task_goal_index"]]
    out = {"success": np.nanmean(success) if np.isfinite(success).any() else np.nan,
           "success_tasks": np.nanmean(tasks) if np.isfinite(tasks).any() else np.nan,
           **{f"success_task{k}": v for k, v in enumerate(tasks, 1)}}
    return {**{k: float(v) for k, v in out.items() if np.isfinite(v)},
            "goals_without_samples": float(np.isnan(success).sum())}


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    """``success``: mean zero-shot success over the free cells as goals; ``success_tasks``: over the goal cells of
    the maze's OGBench tasks, ``success_task{k}`` at task k's goal cell; ``goals_without_samples``: cells no reward
    sample reached (left out)."""
    return _metrics(zero_shot(state.params, cfg, data, seed), data)


def _artifacts(success: np.ndarray, data, cfg: Config) -> dict[str, Any]:
    from athanor.viz.figures import grid_panels

    grid = pointmaze.get_maze(cfg.maze).grid
    h, w = grid.shape
    values = np.full((h, w), np.nan)
    cells = data["cells"]
    values[cells[:, 0], cells[:, 1]] = success
    return {"success_map": grid_panels([values.T], ["zero-shot success, goal at each cell"], extent=(0, w, 0, h),
                                       xlabel="cell j (x)", ylabel="cell i (y)", vmin=0.0, vmax=1.0,
                                       label="success rate")}


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    """``success_map``: the zero-shot success rate with the goal at each free cell."""
    return _artifacts(zero_shot(state.params, cfg, data, seed), data, cfg)


def final(state: State, data, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    success = zero_shot(state.params, cfg, data, seed)
    return _metrics(success, data), _artifacts(success, data, cfg)
