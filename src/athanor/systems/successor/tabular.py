"""The tabular successor representation, learned by temporal differences and checked against its closed form
("Successor Representations Explained": the SR is TD learning of expected discounted state occupancy).

Convention (the post's: the future starts at the next state). For a Markov chain P (the MDP under a fixed policy,
P_pi[s, s'] = sum_a pi(a|s) P(s'|s, a)) the successor representation is the discounted distribution of the states
visited from the next step on,

    M(s, s*) = (1 - gamma) sum_{t >= 0} gamma^t Pr(s_{t+1} = s* | s_0 = s),

which satisfies the Bellman recursion of the post, mu(s*|s) = (1 - gamma) p(s*|s) + gamma E_{s'~p(.|s)} mu(s*|s'),

    M = (1 - gamma) P + gamma P M   =>   M = (1 - gamma) (I - gamma P)^-1 P.

Each row is a probability distribution (rows sum to 1), and gamma = 0 gives M = P, the one-step model, as the post
says of the gamma model. The other common convention counts the current state too, (1 - gamma)(I - gamma P)^-1 =
(1 - gamma) I + gamma M (``successor_matrix(..., include_current=True)``). Because of the (1 - gamma) factor, the
value of a reward paid on arrival r(s') (V(s) = E[sum_{t >= 0} gamma^t r(s_{t+1})], the oracle of
``athanor.envs.gridworld.evaluate_chain``) is

    V = M r / (1 - gamma);

for a sparse goal reward r = onehot(g) this is M(s, g) / (1 - gamma): the value is the probability of occupying the
goal, as the post says. The action-conditioned measure of gamma models and FB, M(s, a, s*) = (1 - gamma) P(s*|s, a)
+ gamma sum_s' P(s'|s, a) M_pi(s', s*), is ``successor_measure`` (its average over pi(a|s) is M_pi).

TD learning (what ``step`` does, ``inner_steps`` times in one ``lax.scan``). Each update draws a batch of
``batch_size`` transitions, s uniform over the states and s' ~ P_pi[s] (the uniformly random policy of the
environment), and moves each sampled row towards its bootstrapped target:

    M[s] <- M[s] + lr_t ((1 - gamma) onehot(s') + gamma M[s'] - M[s]).

All rows are updated at once from the M before the update (a synchronous batch update). A state drawn k times in one
batch moves by lr_t times the mean of its k TD errors, so its step never exceeds lr_t whatever the batch size. M
starts uniform (every row 1 / S; ``m_init="zeros"`` starts at 0): with lr_t <= 1 every update is then a convex
combination of distributions, so the rows stay distributions throughout. lr_t follows ``lr_schedule`` from ``lr``
down to ``lr * lr_final`` at the last update.

The post gives no numbers: the environments (``athanor.envs.gridworld``: four rooms, an open room, and an
illustrative A/B/C chain), gamma, the sampling scheme and the learning-rate schedule are this implementation's
choices. Metrics compare the TD estimate with the closed form (largest and mean absolute error, mean total-variation
distance between rows) and the value of a goal reward computed from it with exact policy evaluation.
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
from athanor.core.artifacts import Heatmap
from athanor.core.config import ConfigError, TrainConfig, param
from athanor.envs import gridworld as gw

SHOWN_GAMMAS = (0.0, 0.5, 0.9, 0.99)  # the closed-form rows drawn side by side


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(10_000, lo=1)  # TD updates (ours; the post gives no training settings)
    inner_steps: int = param(500, lo=1)  # updates fused per jitted call (speed only)
    eval_every: int = param(500, lo=0)  # updates between error evaluations
    env: str = param("four_rooms", choices=("four_rooms", "open_room", "abc"))  # the MDP (envs/gridworld.py)
    slip: float = param(0.0, lo=0.0, hi=1.0)  # gridworlds: probability that a move goes in a random direction
    room_size: int = param(7, lo=1, hi=30)  # open_room: side of the room
    gamma: float = param(0.9, lo=0.0, hi=0.999)  # discount gamma of the SR (the post's gamma; value ours)
    m_init: str = param("uniform", choices=("uniform", "zeros"))  # initial M: rows 1/S, or all zero
    lr: float = param(0.1, lo=0.0, hi=1.0)  # TD step size at the first update
    lr_schedule: str = param("cosine", choices=("constant", "linear", "cosine"))  # decay of the step size ...
    lr_final: float = param(0.01, lo=0.0, hi=1.0)  # ... to lr * lr_final at the last update
    batch_size: int = param(256, lo=1)  # transitions (s uniform, s' ~ P_pi[s]) per update
    start_state: int = param(0, lo=-10_000, hi=10_000)  # the state whose M row is drawn (negative: from the end)
    goal_state: int = param(-1, lo=-10_000, hi=10_000)  # the state rewarded on arrival for the value error


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "eval_every": 10, "batch_size": 64},
    # four rooms, gamma 0.9: mean |M_td - M| ~2e-4 (M averages 1e-2), mean row TV ~0.01, in ~15 s on 2 CPU cores
    "quick": {},
    # four times the transitions per update and ten times the updates (~2e-3 row TV expected by 1/sqrt(samples))
    "full": {"steps": 100_000, "inner_steps": 1000, "eval_every": 5000, "ckpt_every": 25_000, "batch_size": 1024},
}


class State(struct.PyTreeNode):
    M: jax.Array  # (S, S) TD estimate of the successor representation
    t: jax.Array  # () int32, updates done (drives the step-size schedule)
    key: jax.Array


def successor_matrix(P: np.ndarray, gamma: float, include_current: bool = False) -> np.ndarray:
    """M = (1 - gamma)(I - gamma P)^-1 P for a row-stochastic P (S, S); with ``include_current``, the convention that
    counts the current state, (1 - gamma)(I - gamma P)^-1. In float64."""
    P = np.asarray(P, dtype=np.float64)
    rhs = np.eye(len(P)) if include_current else P
    return (1.0 - gamma) * np.linalg.solve(np.eye(len(P)) - gamma * P, rhs)


def successor_measure(P: np.ndarray, pi: np.ndarray, gamma: float) -> np.ndarray:
    """The action-conditioned M[a, s, s*] = (1 - gamma) P[a, s, s*] + gamma (P[a] M_pi)[s, s*] for P (A, S, S) and
    a policy pi (S, A); sum_a pi[s, a] M[a, s] = M_pi[s]."""
    P = np.asarray(P, dtype=np.float64)
    M_pi = successor_matrix(gw.policy_matrix(P, pi), gamma)
    return (1.0 - gamma) * P + gamma * P @ M_pi


def value_from_sr(M, r, gamma: float):
    """V = M r / (1 - gamma): the value of a reward paid on arrival (see the module docstring)."""
    return M @ r / (1.0 - gamma)


def environment(cfg: Config) -> tuple[np.ndarray, np.ndarray, gw.Gridworld | None]:
    """(P (A, S, S), the uniformly random policy (S, A), the Gridworld or None for the A/B/C chain)."""
    if cfg.env == "abc":
        return gw.abc_chain()[None], np.ones((3, 1)), None
    world = gw.four_rooms(cfg.slip) if cfg.env == "four_rooms" else gw.open_room(cfg.room_size, cfg.slip)
    return world.P, gw.uniform_policy(world.n_states, world.n_actions), world


def _state_index(cfg: Config, name: str, n: int) -> int:
    value = getattr(cfg, name)
    if not -n <= value < n:
        raise ConfigError(f"config key '{name}' = {value} is not a state of env '{cfg.env}', which has {n} states "
                          f"(use 0..{n - 1}, or -1 for the last)")
    return value % n


def load_data(cfg: Config, seed: int) -> dict[str, jax.Array]:
    """The chain P_pi of the uniformly random policy, the closed-form M, the goal reward r and its exact value V;
    and ``vi_err``, max |M* r / (1 - gamma) - V*| for the optimal policy's closed-form M* and value iteration's V*
    (the value from the SR against the value by dynamic programming, in float64)."""
    P, pi, _ = environment(cfg)
    P_pi = gw.policy_matrix(P, pi)
    n = len(P_pi)
    _state_index(cfg, "start_state", n)
    r = np.zeros(n)
    r[_state_index(cfg, "goal_state", n)] = 1.0
    v_star, q_star = gw.value_iteration(P, r, cfg.gamma)
    M_star = successor_matrix(gw.policy_matrix(P, gw.greedy_policy(q_star)), cfg.gamma)
    return {"P_pi": jnp.asarray(P_pi, jnp.float32), "M": jnp.asarray(successor_matrix(P_pi, cfg.gamma), jnp.float32),
            "r": jnp.asarray(r, jnp.float32), "V": jnp.asarray(gw.evaluate_chain(P_pi, r, cfg.gamma), jnp.float32),
            "vi_err": float(np.max(np.abs(value_from_sr(M_star, r, cfg.gamma) - v_star)))}


def init(cfg: Config, seed: int, data) -> State:
    n = data["P_pi"].shape[0]
    M = jnp.full((n, n), 1.0 / n) if cfg.m_init == "uniform" else jnp.zeros((n, n))
    return State(M=M, t=jnp.zeros((), jnp.int32), key=jaxtools.key(seed))


def _schedule(cfg: Config) -> optax.Schedule:
    if cfg.lr_schedule == "constant":
        return optax.constant_schedule(cfg.lr)
    if cfg.lr_schedule == "linear":
        return optax.linear_schedule(cfg.lr, cfg.lr * cfg.lr_final, cfg.steps)
    return optax.cosine_decay_schedule(cfg.lr, cfg.steps, alpha=cfg.lr_final)


def td_update(M: jax.Array, s: jax.Array, s_next: jax.Array, gamma: float, lr) -> tuple[jax.Array, jax.Array]:
    """One synchronous TD update of M (S, S) from transitions s -> s_next (B,): each sampled row moves by lr times
    the mean of its TD errors. Returns the new M and the TD errors (B, S)."""
    n = M.shape[0]
    target = (1.0 - gamma) * jax.nn.one_hot(s_next, n) + gamma * M[s_next]  # (B, S)
    delta = target - M[s]  # (B, S)
    sums = jnp.zeros_like(M).at[s].add(delta)  # (S, S)
    counts = jnp.zeros(n).at[s].add(1.0)  # (S,)
    return M + lr * sums / jnp.maximum(counts, 1.0)[:, None], delta


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    """``cfg.inner_steps`` TD updates in one ``lax.scan`` (see the module docstring). ``td_error`` is the mean
    squared TD error sum_s* delta^2; it does not fall to zero, because at the fixed point it is the variance of the
    sampled target (the one-hot of s'), so convergence is read from ``evaluate``'s errors instead."""
    P_pi = data["P_pi"]
    n = P_pi.shape[0]
    schedule = _schedule(cfg)

    def update(carry, key):
        M, t = carry
        k_s, k_next = jax.random.split(key)
        s = jax.random.randint(k_s, (cfg.batch_size,), 0, n)
        s_next = jax.random.categorical(k_next, jnp.log(P_pi[s]))  # (B,): zero-probability moves get -inf
        lr = schedule(t)
        M, delta = td_update(M, s, s_next, cfg.gamma, lr)
        return (M, t + 1), {"td_error": jnp.mean(jnp.sum(jnp.square(delta), axis=-1)), "lr": lr}

    key, sub = jax.random.split(state.key)
    (M, t), infos = jax.lax.scan(update, (state.M, state.t), jax.random.split(sub, cfg.inner_steps))
    return state.replace(M=M, t=t, key=key), jax.tree_util.tree_map(jnp.mean, infos)


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    """``m_max_err`` / ``m_mean_err``: largest / mean |M_td - M|; ``m_tv``: mean over rows of the total-variation
    distance 0.5 sum_s* |M_td(s, .) - M(s, .)|; ``row_sum_err``: largest |sum_s* M_td(s, s*) - 1|; ``v_max_err`` /
    ``v_mean_err``: |M_td r / (1 - gamma) - V| for the goal reward against exact policy evaluation;
    ``v_max``: the largest exact V (the scale of those errors); ``vi_max_err``: ``load_data``'s ``vi_err`` (closed
    form, not learned)."""
    M_td, M = np.asarray(state.M, np.float64), np.asarray(data["M"], np.float64)
    err = np.abs(M_td - M)
    v_err = np.abs(value_from_sr(M_td, np.asarray(data["r"], np.float64), cfg.gamma) - np.asarray(data["V"]))
    return {"m_max_err": float(err.max()), "m_mean_err": float(err.mean()), "m_tv": float(0.5 * err.sum(1).mean()),
            "row_sum_err": float(np.abs(M_td.sum(1) - 1.0).max()), "v_max_err": float(v_err.max()),
            "v_mean_err": float(v_err.mean()), "v_max": float(np.max(np.asarray(data["V"]))),
            "vi_max_err": float(data["vi_err"])}


def panel(world: gw.Gridworld, values) -> np.ndarray:
    """Per-state values as a grid_panels grid ([x, y], drawn over extent (0, W, H, 0)): the layout as printed, row 0
    on top, walls grey."""
    return world.to_grid(np.asarray(values, np.float64))[::-1].T


def _grid_artifacts(state: State, data, cfg: Config, world: gw.Gridworld) -> dict[str, Any]:
    from athanor.viz.figures import grid_panels

    P_pi, s0 = np.asarray(data["P_pi"], np.float64), cfg.start_state % world.n_states
    h, w = world.shape
    cell = tuple(int(c) for c in world.cells[s0])
    rows = [successor_matrix(P_pi, g)[s0] for g in SHOWN_GAMMAS]
    by_gamma = grid_panels([panel(world, row / row.max()) for row in rows],
                           [f"gamma = {g:g} (max {row.max():.3f})" for g, row in zip(SHOWN_GAMMAS, rows, strict=True)],
                           extent=(0, w, h, 0), xlabel="column", ylabel="row", vmin=0.0, vmax=1.0,
                           label=f"M(s0, s*) / max, s0 = {cell}")
    M_td, M = np.asarray(state.M, np.float64), np.asarray(data["M"], np.float64)
    td = grid_panels([panel(world, M[s0]), panel(world, M_td[s0]), panel(world, np.abs(M_td[s0] - M[s0]))],
                     [f"closed form, gamma = {cfg.gamma:g}", "TD estimate", "|TD - closed form|"],
                     extent=(0, w, h, 0), vmin=0.0, label=f"M(s0, s*), s0 = {cell}")
    r = np.asarray(data["r"], np.float64)
    goal = tuple(int(c) for c in world.cells[int(np.argmax(r))])
    value = grid_panels([panel(world, data["V"]), panel(world, value_from_sr(M_td, r, cfg.gamma))],
                        ["policy evaluation", "M_td r / (1 - gamma)"], extent=(0, w, h, 0), vmin=0.0,
                        label=f"V of reward on arrival at {goal}")
    n = world.n_states
    matrix = grid_panels([M[::-1].T, M_td[::-1].T], ["closed-form M", "TD estimate of M"], extent=(0, n, n, 0),
                         xlabel="s* (future state)", ylabel="s", vmin=0.0, label="M(s, s*)")
    return {"sr_by_gamma": by_gamma, "sr_td_vs_closed": td, "value": value, "sr_matrix": matrix}


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    """Gridworlds: the closed-form row of the start state on the grid for gamma in ``SHOWN_GAMMAS`` (each panel
    scaled by its maximum), the TD row beside the closed form and their difference, the goal value two ways, and
    both whole matrices. A/B/C chain: M for those gammas, and the closed form and TD estimate at ``cfg.gamma``."""
    from athanor.viz.figures import heatmap_grid

    _, _, world = environment(cfg)
    if world is not None:
        return _grid_artifacts(state, data, cfg, world)
    P_pi, labels = np.asarray(data["P_pi"], np.float64), list(gw.ABC_LABELS)
    rows = [f"from {x}" for x in labels]

    def table(values, title):
        return Heatmap(values, rows, labels, title, fmt=".3f", vmin=0.0, vmax=1.0)

    by_gamma = [table(successor_matrix(P_pi, g), f"M, gamma = {g:g}" + (" (= P)" if g == 0 else ""))
                for g in SHOWN_GAMMAS]
    return {"sr_by_gamma": heatmap_grid(by_gamma, ncols=len(by_gamma)),
            "sr_closed": table(np.asarray(data["M"]), f"closed-form M, gamma = {cfg.gamma:g}"),
            "sr_td": table(np.asarray(state.M), f"TD estimate of M after {int(state.t)} updates")}
