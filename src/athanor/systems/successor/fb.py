"""Forward-backward (FB) representations learned from reward-free offline transitions in a gridworld, then used
zero-shot for any reward; and the supervised goal-conditioned baseline they are compared with ("Successor
Representations Explained"; Touati & Ollivier 2021, "Learning One Representation to Optimize All Rewards";
Touati, Rapin & Ollivier 2023, "Does Zero-Shot Reinforcement Learning Exist?").

Successor measure, in the post's convention (the future starts at the next state) without the (1 - gamma) factor:

    M^pi(s, a, s*) = sum_{t >= 0} gamma^t Pr(s_{t+1} = s* | s_0 = s, a_0 = a, pi)
                   = tabular.successor_measure(P, pi, gamma)[a, s, s*] / (1 - gamma).

FB models, for every task vector z in R^d, the measure of the policy pi_z as a density against the distribution rho
of the dataset's next states:

    M^{pi_z}(s, a, s*) ~ F(s, a, z)^T B(s*) rho(s*),        pi_z(s) = argmax_a F(s, a, z)^T z.

For a reward paid on arrival r, Q^{pi_z}_r(s, a) = sum_s* M(s, a, s*) r(s*) = F(s, a, z)^T z_r with
z_r = E_rho[B(s) r(s)]; at z = z_r the policy pi_z is greedy on its own Q, so it is optimal when the model is exact.

Training (``mode="fb"``; no reward is seen). A batch of transitions (s_i, a_i, s'_i) from the dataset, a task vector
z_i each, the Polyak target networks F-bar, B-bar, next actions a'_i = argmax_a F-bar(s'_i, a, z_i)^T z_i, and

    M_ij = F(s_i, a_i, z_i)^T B(s'_j),        T_ij = gamma F-bar(s'_i, a'_i, z_i)^T B-bar(s'_j).

The Bellman loss on M = F^T B rho (the s'_j with j != i stand for independent draws from rho; the diagonal carries
the one-step term):

    L_FB = 1/2 mean_{i != j} (M_ij - T_ij)^2 - mean_i M_ii,

and the orthonormality penalty on B, an unbiased batch estimate of ||E_rho[B B^T] - I||_F^2 (``ortho_loss``;
``ortho_loss_exact`` is the population value, zero exactly when B is orthonormal under rho):

    L_ortho = mean_{i != j} (B(s'_i)^T B(s'_j))^2 - 2 mean_i ||B(s'_i)||^2 + d.

The loss is L_FB + ``ortho_coef`` * L_ortho. Each z is Gaussian scaled to the sphere of radius sqrt(d); with
probability ``mix_ratio`` it is instead the (stopped) B of another transition's next state in the batch (the
batch rolled by one: z_i = B(s'_{i-1}), a draw from rho), scaled the same way. That one pair (i, i - 1) of the loss
then shares a state with z_i, a small departure from independence that the reference's permutation has too.

Zero-shot (``evaluate``): z_r = mean of B(s') r(s') over ``z_samples`` next states of the dataset, scaled to radius
sqrt(d); the agent acts greedily on F(s, a, z_r)^T z_r.

Baseline (``mode="goal-dqn"``): a goal-conditioned DQN trained offline on the same transitions with the true goal
rewards r = [s' = g] (g uniform over the states, or with probability ``her_ratio`` the state arrived at), target
r + gamma max_a' Q-bar(s', a', g); the same network widths, optimiser, batch and Polyak rate. It is the supervised
comparison: it is trained with the rewards it is evaluated on, FB never sees a reward.

Evaluation is exact, since the gridworld is known. For every reward of the evaluation set (``eval_rewards``: a goal
at each free cell, and ``dense_rewards`` smooth random fields in [0, 1], the same for every seed) the greedy policy
is evaluated by a linear solve with the true P and compared with value iteration's V* and with the uniformly random
policy, start states uniform over the free cells:

    return ratio = mean_s V^pi(s) / mean_s V*(s),      score = (mean V^pi - mean V^rand) / (mean V* - mean V^rand).

Deviations from the reference code, each a simplification for a tabular task: states enter as one-hot vectors (the
networks are then tables with shared structure); one F head (the reference takes the smaller of two); the next action
comes from the target F; no auxiliary Q loss. Kept from the reference: d = 50, batch 1024, Polyak 0.01, orthonormality
weight 1, mix ratio 0.5, B scaled to radius sqrt(d). Ours: gamma, the widths, the learning rate (3e-4: the
reference's 1e-4 is for a million updates) and the number of updates, the dataset (uniform states, uniform actions).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import ConfigError, TrainConfig, param
from athanor.envs import gridworld as gw

MODES = ("fb", "goal-dqn")
EVAL_REWARD_SEED = 20_231  # the dense evaluation rewards are drawn from this seed, the same for every run
SHOWN_GOALS = ((1, 1), (9, 9), (1, 9), (8, 2))  # (row, col) of the goals whose value maps are drawn


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(20_000, lo=1)  # gradient updates (ours)
    inner_steps: int = param(500, lo=1)  # updates fused per jitted call (speed only)
    eval_every: int = param(5000, lo=0)  # updates between zero-shot evaluations
    mode: str = param("fb", choices=MODES)  # FB, or the goal-conditioned DQN baseline
    env: str = param("four_rooms", choices=("four_rooms", "open_room"))  # the MDP (envs/gridworld.py)
    slip: float = param(0.0, lo=0.0, hi=1.0)  # probability that a move goes in a random direction
    room_size: int = param(7, lo=2, hi=30)  # open_room: side of the room
    gamma: float = param(0.95, lo=0.0, hi=0.999)  # discount (ours)
    dim: int = param(50, lo=1)  # d, the size of F, B and z (reference: 50)
    hidden: tuple[int, ...] = (256, 256)  # widths of every network (ours)
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # Adam step size (ours; reference 1e-4 over 1M updates)
    batch_size: int = param(1024, lo=2)  # transitions per update (reference: 1024)
    polyak: float = param(0.01, lo=0.0, hi=1.0)  # target <- polyak * online + (1 - polyak) * target (reference)
    ortho_coef: float = param(1.0, lo=0.0)  # weight of the orthonormality penalty on B (reference: 1)
    mix_ratio: float = param(0.5, lo=0.0, hi=1.0)  # fraction of training z's taken from B of dataset states (ref.)
    b_norm: bool = True  # scale B(s) to radius sqrt(d) (the reference's norm_z)
    her_ratio: float = param(0.2, lo=0.0, hi=1.0)  # goal-dqn: fraction of goals set to the state arrived at
    dataset_size: int = param(100_000, lo=2)  # offline transitions: s uniform, a uniform, s' ~ P[a, s]
    z_samples: int = param(10_000, lo=1)  # dataset next states whose rewards infer z_r
    dense_rewards: int = param(16, lo=0, hi=1000)  # smooth random rewards in the evaluation set, besides the goals


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 40, "inner_steps": 20, "eval_every": 20, "hidden": (32,), "dim": 8, "batch_size": 64,
             "dataset_size": 2000, "z_samples": 500, "dense_rewards": 2},
    "quick": {},
    # 50k updates: ~25 minutes per FB run on 2 idle cores (30 ms per update, BENCHMARKS.md)
    "full": {"steps": 50_000, "inner_steps": 1000, "eval_every": 10_000, "ckpt_every": 10_000},
}


class State(struct.PyTreeNode):
    params: Any  # {"F", "B"} (fb) or {"Q"} (goal-dqn)
    target: Any  # the Polyak copy read by the TD targets
    opt_state: Any
    key: jax.Array


def _embed(width: int, x: jax.Array) -> jax.Array:
    return jnp.tanh(nn.LayerNorm()(nn.Dense(width)(x)))


class Net(nn.Module):
    """An MLP with a LayerNorm -> tanh input layer, then Dense -> ReLU per further width, then a linear layer reshaped
    to ``out``. With a second input (F's z, the baseline's goal) the input layer has two branches, as in the
    reference's forward map: an embedding of the state alone and one of the state with the second input, side by
    side (each half the first width), so the state is not drowned by the larger task vector."""

    hidden: tuple[int, ...]
    out: tuple[int, ...]

    @nn.compact
    def __call__(self, s, c=None):
        if c is None:
            h = _embed(self.hidden[0], s)
        else:
            half = max(self.hidden[0] // 2, 1)
            h = jnp.concatenate([_embed(half, s), _embed(half, jnp.concatenate([s, c], axis=-1))], axis=-1)
        for width in self.hidden[1:]:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(math.prod(self.out))(h).reshape(*h.shape[:-1], *self.out)


def environment(cfg: Config) -> gw.Gridworld:
    return gw.four_rooms(cfg.slip) if cfg.env == "four_rooms" else gw.open_room(cfg.room_size, cfg.slip)


def _nets(cfg: Config, n_actions: int) -> dict[str, Net]:
    if cfg.mode == "fb":
        return {"F": Net(cfg.hidden, (n_actions, cfg.dim)), "B": Net(cfg.hidden, (cfg.dim,))}
    return {"Q": Net(cfg.hidden, (n_actions,))}


def to_sphere(x: jax.Array, dim: int) -> jax.Array:
    """x scaled along its last axis to the sphere of radius sqrt(dim)."""
    return math.sqrt(dim) * x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def backward(params, cfg: Config, s1h: jax.Array) -> jax.Array:
    """B(s) (..., d) for one-hot states (..., S)."""
    b = Net(cfg.hidden, (cfg.dim,)).apply({"params": params["B"]}, s1h)
    return to_sphere(b, cfg.dim) if cfg.b_norm else b


def forward(params, cfg: Config, s1h: jax.Array, z: jax.Array) -> jax.Array:
    """F(s, ., z) (..., A, d) for one-hot states (..., S) and task vectors (..., d)."""
    return Net(cfg.hidden, (len(gw.ACTIONS), cfg.dim)).apply({"params": params["F"]}, s1h, z)


def goal_q(params, cfg: Config, s1h: jax.Array, g1h: jax.Array) -> jax.Array:
    """Q(s, ., g) (..., A) of the goal-conditioned baseline."""
    return Net(cfg.hidden, (len(gw.ACTIONS),)).apply({"params": params["Q"]}, s1h, g1h)


def _off_diagonal_mean(x: jax.Array) -> jax.Array:
    n = x.shape[0]
    return (jnp.sum(x) - jnp.trace(x)) / (n * (n - 1))


def ortho_loss(b: jax.Array) -> jax.Array:
    """Unbiased batch estimate of ||E_rho[B B^T] - I||_F^2 from B (n, d) of n independent draws of rho."""
    gram = b @ b.T
    return _off_diagonal_mean(jnp.square(gram)) - 2.0 * jnp.mean(jnp.diagonal(gram)) + b.shape[1]


def ortho_loss_exact(b, rho) -> float:
    """||sum_s rho(s) B(s) B(s)^T - I||_F^2 for B (S, d) and a distribution rho (S,)."""
    b = np.asarray(b, np.float64)
    cov = b.T @ (np.asarray(rho, np.float64)[:, None] * b)
    return float(np.sum(np.square(cov - np.eye(b.shape[1]))))


def fb_loss(F_sa: jax.Array, b_next: jax.Array, target_next: jax.Array) -> tuple[jax.Array, jax.Array]:
    """L_FB for F(s_i, a_i, z_i) (n, d), B(s'_j) (n, d) and the targets T (n, n) (module docstring); also the mean
    of the diagonal M_ii."""
    m = F_sa @ b_next.T
    diag = jnp.mean(jnp.diagonal(m))
    return 0.5 * _off_diagonal_mean(jnp.square(m - target_next)) - diag, diag


def sample_z(key: jax.Array, b_pool: jax.Array, cfg: Config) -> jax.Array:
    """Training task vectors (n, d), one per row of ``b_pool`` (n, d), the B of n pool states: Gaussian on the
    sphere of radius sqrt(d), or with probability ``mix_ratio`` that row of ``b_pool`` (no gradient), on the same
    sphere."""
    k_gauss, k_mix = jax.random.split(key)
    n = b_pool.shape[0]
    gauss = to_sphere(jax.random.normal(k_gauss, (n, cfg.dim)), cfg.dim)
    from_b = to_sphere(jax.lax.stop_gradient(b_pool), cfg.dim)
    return jnp.where((jax.random.uniform(k_mix, (n,)) < cfg.mix_ratio)[:, None], from_b, gauss)


def infer_z(b: jax.Array, r: jax.Array) -> jax.Array:
    """z_r = mean_i B(s_i) r_k(s_i) over reward samples: B (n, d), rewards r (n, K) -> (K, d) (unscaled)."""
    return r.T @ b / b.shape[0]


def _batch(data, idx: jax.Array, n_states: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    return (jax.nn.one_hot(data["s"][idx], n_states), data["a"][idx], jax.nn.one_hot(data["s_next"][idx], n_states),
            data["s_next"][idx])


def fb_batch_loss(params, target, cfg: Config, s1h, a, n1h, key: jax.Array) -> tuple[jax.Array, dict]:
    """The FB training loss of one batch (one-hot s, actions, one-hot s') and its parts."""
    b_next = backward(params, cfg, n1h)
    z = sample_z(key, jnp.roll(b_next, 1, axis=0), cfg)  # B(s'_{i-1}): the pool is the batch rolled by one
    F_sa = jnp.take_along_axis(forward(params, cfg, s1h, z), a[:, None, None], axis=1)[:, 0]  # (n, d)
    F_next = forward(target, cfg, n1h, z)  # (n, A, d)
    q_next = jnp.einsum("nad,nd->na", F_next, z)
    F_next_a = jnp.take_along_axis(F_next, jnp.argmax(q_next, axis=1)[:, None, None], axis=1)[:, 0]
    target_m = cfg.gamma * jax.lax.stop_gradient(F_next_a @ backward(target, cfg, n1h).T)
    l_fb, diag = fb_loss(F_sa, b_next, target_m)
    l_ortho = ortho_loss(b_next)
    return l_fb + cfg.ortho_coef * l_ortho, {"fb_loss": l_fb, "ortho_loss": l_ortho, "m_diag": diag}


def goal_batch_loss(params, target, cfg: Config, s1h, a, n1h, s_next, key: jax.Array) -> tuple[jax.Array, dict]:
    """The goal-conditioned DQN loss of one batch, goals relabelled from ``key``."""
    k_goal, k_her = jax.random.split(key)
    n, n_states = s1h.shape
    g = jnp.where(jax.random.uniform(k_her, (n,)) < cfg.her_ratio, s_next,
                  jax.random.randint(k_goal, (n,), 0, n_states))
    g1h = jax.nn.one_hot(g, n_states)
    r = (s_next == g).astype(jnp.float32)
    y = jax.lax.stop_gradient(r + cfg.gamma * jnp.max(goal_q(target, cfg, n1h, g1h), axis=1))
    q = jnp.take_along_axis(goal_q(params, cfg, s1h, g1h), a[:, None], axis=1)[:, 0]
    return 0.5 * jnp.mean(jnp.square(q - y)), {"reward_rate": jnp.mean(r)}


def eval_rewards(world: gw.Gridworld, n_dense: int) -> tuple[np.ndarray, list[str]]:
    """The evaluation rewards (S, K): a goal at every free cell, then ``n_dense`` smooth fields in [0, 1] (a sum of
    three Gaussian bumps, width 1.5 cells, at random free cells, divided by its maximum); and their names."""
    n = world.n_states
    rng = np.random.default_rng(EVAL_REWARD_SEED)
    fields = []
    for _ in range(n_dense):
        centres = world.cells[rng.choice(n, 3, replace=False)]
        d2 = ((world.cells[:, None, :] - centres[None]) ** 2).sum(-1)
        field = np.exp(-d2 / (2 * 1.5**2)).sum(1)
        fields.append(field / field.max())
    goals = np.eye(n)
    names = [f"goal {tuple(int(c) for c in world.cells[k])}" for k in range(n)] + [f"dense {k}" for k in
                                                                                  range(n_dense)]
    return np.concatenate([goals] + ([np.stack(fields, 1)] if fields else []), axis=1), names


def load_data(cfg: Config, seed: int) -> dict[str, Any]:
    """The offline dataset (``s``, ``a``, ``s_next``; drawn from the run's seed), the true ``P``, the evaluation
    ``rewards`` (S, K) and their oracle values: ``v_star`` (S, K) by value iteration and ``v_rand`` (S, K) of the
    uniformly random policy."""
    if not cfg.hidden or any(w < 1 for w in cfg.hidden):
        raise ConfigError(f"config key 'hidden' = {cfg.hidden}: give one or more positive layer widths, e.g. 256,256")
    world = environment(cfg)
    s, a, s_next = gw.sample_transitions(world.P, gw.uniform_policy(world.n_states, world.n_actions),
                                         cfg.dataset_size, np.random.default_rng(seed))
    rewards, _ = eval_rewards(world, cfg.dense_rewards)
    v_star, _ = gw.value_iteration(world.P, rewards, cfg.gamma)  # (S, K): value iteration runs all K at once
    v_rand = gw.evaluate_chain(gw.policy_matrix(world.P, gw.uniform_policy(world.n_states, world.n_actions)),
                               rewards, cfg.gamma)
    return {"s": jnp.asarray(s, jnp.int32), "a": jnp.asarray(a, jnp.int32), "s_next": jnp.asarray(s_next, jnp.int32),
            "P": world.P, "rewards": rewards, "v_star": v_star, "v_rand": v_rand}


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    return optax.adam(cfg.lr)


def init(cfg: Config, seed: int, data) -> State:
    n_actions, n_states = data["P"].shape[:2]
    keys = jax.random.split(jaxtools.key(seed), 3)
    one = jnp.zeros((1, n_states))
    nets = _nets(cfg, n_actions)
    if cfg.mode == "fb":
        params = {"F": nets["F"].init(keys[0], one, jnp.zeros((1, cfg.dim)))["params"],
                  "B": nets["B"].init(keys[1], one)["params"]}
    else:
        params = {"Q": nets["Q"].init(keys[0], one, one)["params"]}
    return State(params=params, target=params, opt_state=_optimizer(cfg).init(params), key=keys[2])


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    """``cfg.inner_steps`` updates of FB (or of the baseline) in one ``lax.scan``, the target following by Polyak."""
    n, n_states = data["s"].shape[0], data["P"].shape[1]

    def batch_loss(params, target, key):
        k_idx, k_loss = jax.random.split(key)
        s1h, a, n1h, s_next = _batch(data, jax.random.randint(k_idx, (cfg.batch_size,), 0, n), n_states)
        if cfg.mode == "fb":
            return fb_batch_loss(params, target, cfg, s1h, a, n1h, k_loss)
        return goal_batch_loss(params, target, cfg, s1h, a, n1h, s_next, k_loss)

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, target=cfg.polyak)


def q_tables(params, cfg: Config, data) -> np.ndarray:
    """The learned Q (K, A, S) of every evaluation reward: F(s, a, z)^T z_r with z = z_r scaled to radius sqrt(d)
    (fb; the greedy policy is the same for z and z_r), or Q(s, a, g) for the goal rewards and NaN for the others
    (goal-dqn)."""
    n_actions, n_states = data["P"].shape[:2]
    rewards = jnp.asarray(data["rewards"], jnp.float32)  # (S, K)
    eye = jnp.eye(n_states)
    if cfg.mode == "fb":
        s_next = data["s_next"][: cfg.z_samples]
        z = infer_z(backward(params, cfg, eye[s_next]), rewards[s_next])  # (K, d)
        F = jax.vmap(lambda zk: forward(params, cfg, eye, jnp.broadcast_to(zk, (n_states, cfg.dim))))(
            to_sphere(z, cfg.dim))
        q = jnp.einsum("ksad,kd->kas", F, z)  # F at the scaled z (the policy's input), times z_r itself
    else:
        q = jax.vmap(lambda g: goal_q(params, cfg, eye, jnp.broadcast_to(g, eye.shape)).T)(eye)  # (S goals, A, S)
        q = jnp.concatenate([q, jnp.full((rewards.shape[1] - n_states, n_actions, n_states), jnp.nan)])
    return np.asarray(q, np.float64)


def policy_values(P: np.ndarray, q: np.ndarray, rewards: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """V^pi (S, K) and Q^pi (K, A, S) of the greedy policies of q (K, A, S), reward k paid on arrival, by exact
    policy evaluation in P; NaN where q is NaN (no policy for that reward)."""
    n_actions, n_states = P.shape[:2]
    v = np.full((n_states, q.shape[0]), np.nan)
    q_pi = np.full(q.shape, np.nan)
    for k in range(q.shape[0]):
        if np.all(np.isfinite(q[k])):
            v[:, k], q_pi[k] = gw.policy_evaluation(P, gw.greedy_policy(q[k]), rewards[:, k], gamma)
    return v, q_pi


def zero_shot(params, cfg: Config, data) -> dict[str, np.ndarray]:
    """Per evaluation reward k: ``ratio`` mean V^pi / mean V*, ``score`` (mean V^pi - mean V^rand) / (mean V* -
    mean V^rand), ``q_err`` mean_{s,a} |Q_learned - Q^pi| / mean V*; and ``v_pi`` (S, K)."""
    P, rewards = np.asarray(data["P"]), np.asarray(data["rewards"])
    q = q_tables(params, cfg, data)
    v_pi, q_pi = policy_values(P, q, rewards, cfg.gamma)
    star, rand, got = (np.asarray(data["v_star"]).mean(0), np.asarray(data["v_rand"]).mean(0), v_pi.mean(0))
    return {"ratio": got / star, "score": (got - rand) / (star - rand),
            "q_err": np.abs(q - q_pi).mean(axis=(1, 2)) / star, "v_pi": v_pi}


def _metrics(res: dict[str, np.ndarray], n_states: int, cfg: Config) -> dict[str, float]:
    out = {}
    for group, cols in (("goal", slice(0, n_states)), ("dense", slice(n_states, None))):
        if not np.isfinite(res["ratio"][cols]).any():
            continue  # no such rewards, or no policy for them (the goal-conditioned baseline has none for dense)
        for name in ("ratio", "score", "q_err"):
            key = f"{group}_return_ratio" if name == "ratio" else f"{group}_{name}"
            out[key] = float(np.mean(res[name][cols]))
    out["goal_worst_ratio"] = float(np.min(res["ratio"][:n_states]))
    out["goal_reach"] = float(np.mean(res["v_pi"][:, :n_states] > 1e-12))
    return out


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    """Zero-shot (fb) or per-goal (goal-dqn) returns against the oracle, averaged over the goal rewards (``goal_*``)
    and the dense rewards (``dense_*``, fb only): ``return_ratio`` and ``score`` (module docstring), ``q_err`` (the
    learned Q against the true Q of the policy it induces, relative to mean V*); ``goal_worst_ratio``: the worst
    goal's return ratio; ``goal_reach``: the fraction of (start, goal) pairs from which the policy ever reaches the
    goal (V^pi > 0; with deterministic moves, ``slip = 0``, a policy that misses it is caught in a loop)."""
    return _metrics(zero_shot(state.params, cfg, data), data["P"].shape[1], cfg)


def _artifacts(res: dict[str, np.ndarray], data, cfg: Config) -> dict[str, Any]:
    from athanor.systems.successor.tabular import panel
    from athanor.viz.figures import grid_panels

    world = environment(cfg)
    h, w = world.shape
    n = world.n_states
    name = "FB zero-shot" if cfg.mode == "fb" else "goal-conditioned DQN"
    ratio_map = grid_panels([panel(world, res["ratio"][:n]), panel(world, res["score"][:n])],
                            ["return / optimal return", "score (0 random, 1 optimal)"], extent=(0, w, h, 0),
                            xlabel="goal column", ylabel="goal row", vmin=0.0, vmax=1.0,
                            label=f"{name}, per goal cell")
    shown = [world.state(*g) for g in SHOWN_GOALS if g[0] < h and g[1] < w and world.free[g]] or [0]
    if cfg.mode == "fb" and res["ratio"].size > n:
        shown.append(n)  # the first dense reward
    v_star = np.asarray(data["v_star"])
    grids, titles = [], []
    for k in shown:
        title = (f"goal {tuple(int(c) for c in world.cells[k])}" if k < n else "dense reward 0")
        grids += [panel(world, v_star[:, k] / v_star[:, k].max()), panel(world, res["v_pi"][:, k] / v_star[:, k].max())]
        titles += [f"V*, {title}", f"{name}, ratio {res['ratio'][k]:.2f}"]
    values = grid_panels(grids, titles, extent=(0, w, h, 0), ncols=2, vmin=0.0, vmax=1.0, label="V / max V*")
    return {"goal_ratio_map": ratio_map, "values": values}


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    """The per-goal return ratio and score on the grid, and value maps (V* beside the policy's V) for a few goals
    and one dense reward."""
    return _artifacts(zero_shot(state.params, cfg, data), data, cfg)


def final(state: State, data, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    res = zero_shot(state.params, cfg, data)
    return _metrics(res, data["P"].shape[1], cfg), _artifacts(res, data, cfg)
