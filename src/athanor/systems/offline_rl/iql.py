"""Implicit Q-learning (IQL) on the point maze with four policy-extraction heads ("Small-Research:
Policy Extraction in IQL" and "Small-Research: Tanh Activations with DDPG").

Method. IQL learns a state value V, a twin critic Q1, Q2 with a Polyak-averaged target copy, and a policy,
from a fixed dataset of transitions (s, a, r, s'), without ever querying Q at actions outside the data when
it fits the values. With u = min(Q1, Q2)_target(s, a):

    L_V  = E[ |tau - 1(u - V(s) < 0)| * (u - V(s))^2 ]                  (expectile regression, tau = 0.9)
    L_Q  = E[ (Q1(s, a) - y)^2 + (Q2(s, a) - y)^2 ],  y = r' + gamma * mask * V(s')      (gamma = 0.99)
    target <- (1 - 0.005) * target + 0.005 * online                     (Polyak, after every update)

with the maze reward shaping r' = r + reward_shift = r - 1 (0 at the goal, -1 elsewhere) and mask = 0 on
transitions that reach the goal. At tau = 0.5 the expectile loss is half the squared error; tau > 0.5 fits
an upper expectile of Q over the data's actions, an in-sample approximation of max_a Q.

The policy is extracted from A(s, a) = u - V(s) (stop-gradient) by one of four heads (``head``):

    awr           Gaussian N(tanh(mu(s)), diag exp(log_std)^2), log_std a learned state-independent vector
                  clipped to [-5, 2]:  L = -E[ min(exp(beta * A), adv_clip) * log pi(a | s) ];  beta = 10,
                  adv_clip = 100; evaluation acts with the mean tanh(mu(s)).
    awr_discrete  actions tokenised into K centres (k-means over the dataset's actions, or a sqrt(K) x sqrt(K)
                  grid of bins over [-1, 1]^2; a token is the nearest centre); a softmax policy over tokens:
                  L = -E[ min(exp(beta * A), adv_clip) * log softmax(logits(s))[token(a)] ];
                  evaluation acts with the centre of the most probable token.
    ddpg          deterministic mu(s), trained through the critic:  L = -E[ min(Q1, Q2)_target(s, tanh(mu(s))) ]
                  + bc_alpha * E[ ||tanh(mu(s)) - a||^2 ]  (bc_alpha = 0 by default, as in the post; the
                  online critic instead of the target with ``ddpg_critic="online"``).
    ddpg_bc       DDPG+BC with the TD3+BC / Park et al. normalisation of the Q term:
                  L = -E[ Q(s, tanh(mu(s))) ] / sg(E[ |Q(s, tanh(mu(s)))| ]) + bc_alpha * E[ ||tanh(mu(s)) - a||^2 ].

Training always uses tanh(mu) for the DDPG heads; evaluation maps mu to an action with ``eval_action``:
``tanh`` (the correct version) or ``clip`` = clip(mu, -1, 1) (the DDPG post's forgotten tanh). ``evaluate`` of a DDPG
head runs both maps on the same weights and the same episode seeds (success_tanh, success_clip).

Settings follow the source and the IQL maze configuration: (256, 256) ReLU MLPs, batch 256, Adam 3e-4 for all
networks, 1M updates, expectile 0.9, beta 10, AWR weights clipped at 100, reward r - 1. The data are the
point-maze dataset of ``athanor.data.pointmaze`` (1000 noisy BFS-planner episodes to random goals, 1M
transitions); the task is OGBench's medium-maze task 1, labelled with the sparse reward of ``envs.pointmaze.label``.

Policy statistics (``evaluate``), on a fixed batch of ``stat_states`` dataset states. The policy's action
distribution at a state is a set of weighted actions: ``stat_samples`` samples of the Gaussian clipped to
[-1, 1] (what the environment executes), each weight 1 / stat_samples (awr); the K token centres weighted by
the softmax (awr_discrete); the single evaluation action with weight 1 (DDPG heads). Then, averaged over states:

    action_norm   E ||a||
    circle_frac   P(||a|| >= 0.8)                         (mass near the unit circle)
    modes         split the directions of the actions with ||a|| >= 0.5 into 16 angular sectors of 22.5 deg,
                  take each sector's share of that mass, and count the circular runs of adjacent sectors whose
                  share is >= 10%: the number of separate directions that hold real probability. A unimodal
                  distribution gives 1 (also when it straddles a sector boundary), two opposite modes give 2,
                  a distribution with no mass at ||a|| >= 0.5 gives 0.

plus q_mean, v_mean, adv_mean at the dataset actions of those states, and awr_std (the mean learned std; the
post saw ~0.4 on maze2d).

Deviations from the source, all deliberate:
- the three losses are summed and differentiated in one backward pass with one Adam over all parameters.
  Each network's gradient still comes from its own loss only (targets are stop-gradients and the critic the
  actor reads is a constant), so this equals separate optimisers with the same learning rate except that V, Q
  and the actor all see the values from before this update (the reference updates V first). One fused backward
  is what makes the update fast on CPU.
- every head reads the *target* critic by default: the AWR advantage as in IQL, and the DDPG objective too
  (DDPG usually differentiates the online critic; ``ddpg_critic="online"`` does that, through a stop-gradient on
  the critic's parameters, at the same cost). The target is a ~200-update average of the online critic. At 60k
  updates DDPG collapsed in 1 of 4 seeds on the target critic and 3 of 4 on the online one (RESULTS.md).
- ``actor_warmup`` (0 by default, as in the source) holds the actor still for its first N updates: its steps are
  multiplied by 0 while its Adam moments follow its gradients. Without it, seed 0's DDPG actor follows the
  untrained critic's action gradient into tanh's saturation within 1000 updates (``benchmarks/ddpg_collapse.py``).
  A 5000-update warm-up rescues that seed but not DDPG: two other seeds then fail. The failing policies park in
  the goal cell's far corner, where the value network peaks with no data under it (RESULTS.md).
- observations are standardised with the dataset's mean and std before every network (the raw maze
  coordinates span tens of units).
- no cosine decay of the actor's learning rate (IQL decays it; the post's code is silent).
- K defaults to 256 tokens instead of the author's 1024: the 2-D action square is covered at 0.1 spacing and the
  update stays at the cost of the other heads on CPU. k-means runs ``kmeans_iters`` Lloyd iterations from a
  k-means++ start on up to 65,536 dataset actions, deterministically (fixed key).
- ``bc_alpha`` None means the head's default: 0 for ``ddpg`` (the post) and 0.003 for ``ddpg_bc``, the value
  OGBench's IQL uses for its DDPG+BC actor on the point mazes (where the Q term is normalised the same way). A
  small alpha suits this data: the actions head for random goals with noise 0.5, so cloning them strongly
  (TD3+BC's alpha = 2.5 corresponds to 0.4 here) pulls the policy towards their average.
- LayerNorm after each hidden layer of V and Q (``layer_norm``, on by default), as OGBench's IQL has; the
  original IQL has none. Without it the value network extrapolates past the goal: after 60k updates V reached
  +19 in the corner of the goal cell (every true value is <= 0 under r - 1), the bootstrapped targets kept the
  bubble alive, and every head steered into that corner instead of the goal. With LayerNorm the bump shrinks
  to about +2 at the corner the agent cannot reach (the point's radius keeps it 0.7 from the walls), and the
  heads reach the goal. The LayerNorm has no learned scale and shift (OGBench's has): the Dense layer after it
  maps W (g * x + b) + c = (W diag g) x + (W b + c), so they add no functions, and without their parameters
  the update is faster on CPU (together with ``SCAN_UNROLL``, 10-14%; BENCHMARKS.md).
- evaluation: ``eval_episodes`` episodes at each periodic evaluation and ``final_episodes`` at the end (the
  claims read the final ones), run side by side. With ``eval_start="random"`` (the default) an episode starts in a
  uniformly drawn free cell other than the goal's, as D4RL's maze2d resets (the post's benchmark); with
  ``"task"`` at the task's start cell (OGBench's protocol, 200+ steps from the goal). Either way the start gets
  U(-1, 1)^2 noise, and the final evaluation also runs the policy from the task's start
  (``success_task_start``).
- ``devices`` (1 by default, the single-device path, bit-identical to the system without the option): N > 1 trains
  data-parallel, each minibatch of transitions split over N devices with the networks, target and Adam state
  replicated (``core.jaxtools``: jit with sharded values; XLA all-reduces the gradients and the batch means,
  including DDPG+BC's normaliser E|Q|, over the whole batch). ``batch_size`` must be a multiple of N; the dataset
  and the evaluation are not split.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import TrainConfig, param
from athanor.core.errors import ConfigError
from athanor.data import pointmaze as datasets
from athanor.envs import pointmaze
from athanor.viz import maze as draw
from athanor.viz.figures import action_scatter

HEADS = ("awr", "awr_discrete", "ddpg", "ddpg_bc")
DDPG_HEADS = ("ddpg", "ddpg_bc")
DDPG_BC_ALPHA = 0.003  # the ddpg_bc head's default bc_alpha (see the module docstring)
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # IQL's clip of the Gaussian head's log-std
N_SECTORS, MODE_SHARE, MOVE_NORM, CIRCLE_NORM = 16, 0.1, 0.5, 0.8  # the `modes` / `circle_frac` definitions
KMEANS_FIT_MAX = 65_536  # dataset actions k-means is fitted on (a fixed random subset when there are more)
DATA_KEY = 0x1D5  # the data's own randomness (statistics' states, k-means start): fixed, like the dataset
SCAN_UNROLL = 2  # updates per loop iteration inside `step`; lets XLA overlap the tail of one update with the next


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(1_000_000, lo=1)  # IQL / post: 1M gradient updates
    inner_steps: int = param(1000, lo=1)  # updates fused per jitted call (speed only)
    eval_every: int = param(100_000, lo=0)  # evaluation cadence (success curve over training)
    ckpt_every: int = param(100_000, lo=0)
    maze: str = param("medium", choices=("arena", "medium", "large", "giant"))  # maze2d / OGBench medium
    task_id: int = param(1, lo=1, hi=5)  # OGBench task 1: one fixed (start, goal) pair, sparse reward
    data_episodes: int = param(1000, lo=1)  # source: 1000 episodes of the BFS-waypoint planner
    data_episode_len: int = param(1001, lo=2)  # source: 1001-state episodes (1M transitions in all)
    data_noise: float = param(0.5, lo=0.0)  # source: Gaussian action noise std 0.5, clipped to [-1, 1]
    data_seed: int = param(0, lo=0)  # the generator's seed
    head: str = param("awr", choices=HEADS)  # policy extraction (the IQL post)
    expectile: float = param(0.9, lo=0.0, hi=1.0)  # IQL maze: tau = 0.9
    beta: float = param(10.0, lo=0.0)  # IQL maze: AWR inverse temperature 10
    discount: float = param(0.99, lo=0.0, hi=1.0)  # gamma
    tau: float = param(0.005, lo=0.0, hi=1.0)  # Polyak rate of the target critic
    lr: float = param(3e-4, lo=0.0, hi=1.0)  # Adam, all networks
    batch_size: int = param(256, lo=1)  # IQL: 256
    hidden: int = param(256, lo=1)  # IQL: (256, 256) MLPs
    adv_clip: float = param(100.0, lo=0.0)  # IQL: exp(beta * A) clipped at 100
    layer_norm: bool = param(True)  # LayerNorm in V and Q (OGBench's IQL); the original IQL has none
    reward_shift: float = param(-1.0)  # IQL maze: r - 1
    bc_alpha: float | None = param(None, lo=0.0)  # None: 0 for ddpg (post), 0.003 for ddpg_bc (OGBench)
    discretiser: str = param("kmeans", choices=("kmeans", "bins"))  # author's code: k-means tokens
    n_tokens: int = param(256, lo=2)  # author's code: 1024 (see deviations)
    kmeans_iters: int = param(50, lo=1)  # Lloyd iterations
    ddpg_critic: str = param("target", choices=("target", "online"))  # the critic the DDPG heads' actor climbs
    actor_warmup: int = param(0, lo=0)  # updates before the actor takes its first step (0: the source)
    eval_action: str = param("tanh", choices=("tanh", "clip"))  # the DDPG post: tanh(mu) vs clip(mu, -1, 1)
    eval_episodes: int = param(30, lo=1)  # episodes per periodic evaluation, run side by side
    final_episodes: int = param(100, lo=1)  # episodes of the final evaluation (the claims read it)
    eval_max_steps: int = param(0, lo=0)  # episode time limit; 0 = the task's own
    eval_start: str = param("random", choices=("random", "task"))  # maze2d: random start cell; OGBench: task's
    stat_states: int = param(1024, lo=1)  # dataset states for the action statistics and scatters
    stat_samples: int = param(1024, lo=1)  # Gaussian samples per state (awr); many, so `modes` sees no noise
    record_episodes: int = param(6, lo=1)  # trajectories drawn on the maze image (the first is the video)
    devices: int = param(1, lo=1)  # not in the source: 1 = one device; N = each minibatch split over N devices


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 20, "inner_steps": 10, "data_episodes": 8, "data_episode_len": 101, "batch_size": 64,
             "hidden": 64, "n_tokens": 16, "kmeans_iters": 5, "eval_episodes": 4, "final_episodes": 4,
             "eval_max_steps": 60, "stat_states": 64, "stat_samples": 16, "record_episodes": 2, "eval_every": 0,
             "ckpt_every": 0},
    "quick": {"steps": 30_000, "inner_steps": 500, "eval_every": 10_000, "ckpt_every": 10_000},
    "full": {},  # the source's scale (Config defaults)
}


class State(struct.PyTreeNode):
    params: Any  # {"critic": twin Q, "value": V, "actor": policy}
    target: Any  # Polyak copy of params["critic"]
    opt_state: Any
    key: jax.Array  # raw uint32 key; every update's randomness is split from it


# ----------------------------------------------------------------------------------------------- networks


class MLP(nn.Module):
    hidden: int
    out: int
    layer_norm: bool = False  # LayerNorm after each hidden ReLU (OGBench's value networks), without scale/shift

    @nn.compact
    def __call__(self, x):
        for _ in range(2):
            x = nn.relu(nn.Dense(self.hidden)(x))
            if self.layer_norm:
                # the next Dense absorbs a learned scale and shift, so they add no functions (module docstring)
                x = nn.LayerNorm(use_scale=False, use_bias=False)(x)
        return nn.Dense(self.out)(x)


class TwinCritic(nn.Module):
    """(s (n, 2), a (n, 2)) -> (Q1 (n,), Q2 (n,))."""

    hidden: int
    layer_norm: bool = False

    @nn.compact
    def __call__(self, s, a):
        x = jnp.concatenate([s, a], axis=-1)
        return MLP(self.hidden, 1, self.layer_norm)(x)[:, 0], MLP(self.hidden, 1, self.layer_norm)(x)[:, 0]


class Actor(nn.Module):
    """s -> raw outputs (n, out): Gaussian mean pre-tanh, token logits, or DDPG's mu; plus log-std (awr)."""

    hidden: int
    out: int
    learn_std: bool

    @nn.compact
    def __call__(self, s):
        out = MLP(self.hidden, self.out)(s)
        log_std = self.param("log_std", nn.initializers.zeros, (self.out,)) if self.learn_std else None
        return out, log_std


def _actor(cfg: Config) -> Actor:
    return Actor(cfg.hidden, cfg.n_tokens if cfg.head == "awr_discrete" else 2, cfg.head == "awr")


def _critic(cfg: Config) -> TwinCritic:
    return TwinCritic(cfg.hidden, cfg.layer_norm)


def _value(cfg: Config) -> MLP:
    return MLP(cfg.hidden, 1, cfg.layer_norm)


def bc_alpha(cfg: Config) -> float:
    if cfg.bc_alpha is not None:
        return cfg.bc_alpha
    return DDPG_BC_ALPHA if cfg.head == "ddpg_bc" else 0.0


# ------------------------------------------------------------------------------------------------- maths


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """|tau - 1(diff < 0)| * diff^2 elementwise; diff = target - prediction."""
    return jnp.abs(expectile - (diff < 0).astype(diff.dtype)) * jnp.square(diff)


def polyak(target, online, tau: float):
    """target <- (1 - tau) * target + tau * online, leaf by leaf."""
    return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def awr_weights(adv: jax.Array, beta: float, clip: float) -> jax.Array:
    return jnp.minimum(jnp.exp(beta * adv), clip)


def gaussian_log_prob(a: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(a; mean, diag exp(log_std)^2) summed over the action dimensions: (n, d) -> (n,)."""
    z = (a - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def encode(actions: jax.Array, centres: jax.Array) -> jax.Array:
    """Index of the nearest centre for each action: (n, d), (K, d) -> (n,) int32."""
    d2 = jnp.sum(jnp.square(actions[:, None, :] - centres[None, :, :]), axis=-1)  # (n, K)
    return jnp.argmin(d2, axis=-1).astype(jnp.int32)


def decode(tokens: jax.Array, centres: jax.Array) -> jax.Array:
    return centres[tokens]


def bin_centres(n_tokens: int) -> jax.Array:
    """A b x b grid over [-1, 1]^2 (b = sqrt(n_tokens)), including the edges where clipped data sits."""
    b = math.isqrt(n_tokens)
    if b * b != n_tokens or b < 2:
        raise ConfigError(f"discretiser 'bins' needs n_tokens to be a square of at least 4 (b x b bins), got "
                          f"{n_tokens}; set e.g. --set n_tokens={max(4, b * b)}")
    g = jnp.linspace(-1.0, 1.0, b)
    gx, gy = jnp.meshgrid(g, g, indexing="ij")
    return jnp.stack([gx.ravel(), gy.ravel()], axis=-1)  # (b*b, 2)


@functools.partial(jax.jit, static_argnames=("k", "iters"))
def kmeans(x: jax.Array, k: int, iters: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Lloyd's k-means from a k-means++ start: (centres (k, d), inertia (iters,)).

    inertia[t] is the mean squared distance to the nearest centre before the t-th update; Lloyd's algorithm
    makes it non-increasing. A centre that loses all its points stays where it is.
    """
    n = x.shape[0]
    k_first, k_rest = jax.random.split(key)
    first = x[jax.random.randint(k_first, (), 0, n)]
    centres0 = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    d2_0 = jnp.sum(jnp.square(x - first), axis=-1)

    def pick(i, carry):
        centres, d2 = carry
        # probability proportional to squared distance (points already chosen have zero)
        j = jax.random.categorical(jax.random.fold_in(k_rest, i), jnp.log(jnp.maximum(d2, 1e-30)))
        c = x[j]
        return centres.at[i].set(c), jnp.minimum(d2, jnp.sum(jnp.square(x - c), axis=-1))

    centres, _ = jax.lax.fori_loop(1, k, pick, (centres0, d2_0))

    def lloyd(c, _):
        d2 = jnp.sum(jnp.square(x[:, None, :] - c[None, :, :]), axis=-1)  # (n, k)
        idx = jnp.argmin(d2, axis=-1)
        sums = jax.ops.segment_sum(x, idx, num_segments=k)
        counts = jax.ops.segment_sum(jnp.ones((n,), x.dtype), idx, num_segments=k)
        new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], c)
        return new, jnp.mean(jnp.min(d2, axis=-1))

    return jax.lax.scan(lloyd, centres, None, length=iters)


def count_modes(actions: jax.Array, weights: jax.Array) -> jax.Array:
    """Number of separate directions holding >= 10% of the moving mass (module docstring): (M, 2), (M,) -> ()."""
    norm = jnp.linalg.norm(actions, axis=-1)
    moving = weights * (norm >= MOVE_NORM)
    angle = jnp.arctan2(actions[:, 1], actions[:, 0])  # [-pi, pi]
    sector = jnp.floor((angle + jnp.pi) / (2 * jnp.pi) * N_SECTORS).astype(jnp.int32) % N_SECTORS
    mass = jnp.zeros(N_SECTORS).at[sector].add(moving)
    total = jnp.sum(mass)
    on = (mass >= MODE_SHARE * total) & (total > 0)
    starts = jnp.sum(on & ~jnp.roll(on, 1))
    return jnp.where(jnp.all(on), 1, starts).astype(jnp.float32)


def action_stats(actions: jax.Array, weights: jax.Array) -> dict[str, jax.Array]:
    """action_norm, circle_frac, modes of per-state weighted actions (S, M, 2), (S, M), averaged over states."""
    norm = jnp.linalg.norm(actions, axis=-1)  # (S, M)
    return {
        "action_norm": jnp.mean(jnp.sum(weights * norm, axis=-1)),
        "circle_frac": jnp.mean(jnp.sum(weights * (norm >= CIRCLE_NORM), axis=-1)),
        "modes": jnp.mean(jax.vmap(count_modes)(actions, weights)),
    }


# --------------------------------------------------------------------------------------------- data & init


def prepare(observations, actions, next_observations, rewards, masks, cfg: Config, key: jax.Array) -> dict:
    """The training pytree from raw transitions (numpy or jax arrays); deterministic for a fixed key."""
    obs = jnp.asarray(observations, jnp.float32)
    act = jnp.asarray(actions, jnp.float32)
    n = obs.shape[0]
    k_fit, k_km, k_stat = jax.random.split(key, 3)
    mean, std = jnp.mean(obs, axis=0), jnp.std(obs, axis=0) + 1e-3
    data = {
        "obs": obs, "actions": act, "next_obs": jnp.asarray(next_observations, jnp.float32),
        "rewards": jnp.asarray(rewards, jnp.float32) + cfg.reward_shift, "masks": jnp.asarray(masks, jnp.float32),
        "obs_mean": mean, "obs_std": std,
    }
    stat_idx = jax.random.choice(k_stat, n, (min(cfg.stat_states, n),), replace=False)
    data["stat_obs"], data["stat_actions"] = obs[stat_idx], act[stat_idx]
    if cfg.head == "awr_discrete":
        if cfg.discretiser == "bins":
            data["centres"] = bin_centres(cfg.n_tokens)
        else:
            if cfg.n_tokens > n:
                raise ConfigError(f"n_tokens = {cfg.n_tokens} exceeds the {n} dataset actions; lower n_tokens "
                                  f"or generate more data (data_episodes)")
            fit = act[jax.random.permutation(k_fit, n)[:KMEANS_FIT_MAX]]
            data["centres"], _ = kmeans(fit, cfg.n_tokens, cfg.kmeans_iters, k_km)
    return data


def make_task(cfg: Config):
    """The evaluation task (``envs.pointmaze.MazeTask``), with ``eval_max_steps`` as its time limit when set."""
    task = pointmaze.make_task(maze=cfg.maze, task_id=cfg.task_id, start=cfg.eval_start)
    return dataclasses.replace(task, max_steps=cfg.eval_max_steps) if cfg.eval_max_steps else task


def load_data(cfg: Config, seed: int) -> dict:
    """The dataset of ``cfg.data_*`` labelled for the task, with its action tokens and statistics' states.

    The run's ``seed`` is deliberately not used: like a D4RL dataset, the data (``data_seed``), their k-means
    tokens and the states the action statistics are measured on are the same for every run seed, so seeds differ
    only in the networks' initialisation and minibatches, and every head and seed is measured on the same states.
    """
    spec = datasets.MazeDataSpec(maze=cfg.maze, episodes=cfg.data_episodes, episode_len=cfg.data_episode_len,
                                 noise=cfg.data_noise, seed=cfg.data_seed)
    raw = datasets.load(spec)
    rewards, masks = pointmaze.label(raw, make_task(cfg))
    return prepare(raw["observations"], raw["actions"], raw["next_observations"], rewards, masks, cfg,
                   jax.random.PRNGKey(DATA_KEY))


def _norm(data, s):
    return (s - data["obs_mean"]) / data["obs_std"]


def _mesh(cfg: Config):
    """The data mesh of ``cfg.devices`` (None for one device); checks batch_size divides."""
    return jaxtools.mesh_for(cfg.devices, batch_size=cfg.batch_size)


def init(cfg: Config, seed: int, data) -> State:
    mesh = _mesh(cfg)
    key = jaxtools.key(seed)
    k_q, k_v, k_pi, k_state = jax.random.split(key, 4)
    s, a = jnp.zeros((1, 2)), jnp.zeros((1, 2))
    params = {
        "critic": _critic(cfg).init(k_q, s, a)["params"],
        "value": _value(cfg).init(k_v, s)["params"],
        "actor": _actor(cfg).init(k_pi, s)["params"],
    }
    state = State(params=params, target=params["critic"], opt_state=optimizer(cfg).init(params), key=k_state)
    return jaxtools.replicate(state, mesh)


def optimizer(cfg: Config) -> optax.GradientTransformation:
    """Adam over all parameters. With ``actor_warmup`` = N > 0 the actor's steps are multiplied by 0 for the first
    N updates; its Adam moments still follow its gradients, so it starts moving with them already estimated."""
    adam = optax.adam(cfg.lr)
    if not cfg.actor_warmup:
        return adam
    gate = optax.scale_by_schedule(lambda n: (n >= cfg.actor_warmup).astype(jnp.float32))
    return optax.chain(adam, optax.masked(gate, {"critic": False, "value": False, "actor": True}))


# ---------------------------------------------------------------------------------------------- the update


def actor_loss(actor_params, critic, s, a, adv, cfg: Config, centres=None) -> tuple[jax.Array, dict]:
    """The head's policy loss on normalised states s (n, 2), data actions a and advantages adv (n,); the DDPG
    heads differentiate the critic with parameters ``critic`` (constants here) at their actions."""
    out, log_std = _actor(cfg).apply({"params": actor_params}, s)
    if cfg.head == "awr":
        log_std = jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
        w = awr_weights(adv, cfg.beta, cfg.adv_clip)
        loss = -jnp.mean(w * gaussian_log_prob(a, jnp.tanh(out), log_std))
        return loss, {"awr_std": jnp.mean(jnp.exp(log_std)), "weight_mean": jnp.mean(w),
                      "clip_frac": jnp.mean(w >= cfg.adv_clip)}
    if cfg.head == "awr_discrete":
        w = awr_weights(adv, cfg.beta, cfg.adv_clip)
        logp = jax.nn.log_softmax(out, axis=-1)
        picked = jnp.take_along_axis(logp, encode(a, centres)[:, None], axis=-1)[:, 0]
        entropy = -jnp.mean(jnp.sum(jnp.exp(logp) * logp, axis=-1))
        return -jnp.mean(w * picked), {"weight_mean": jnp.mean(w), "clip_frac": jnp.mean(w >= cfg.adv_clip),
                                       "token_entropy": entropy}
    pi = jnp.tanh(out)
    q1, q2 = _critic(cfg).apply({"params": critic}, s, pi)
    q_pi = jnp.minimum(q1, q2)
    bc = jnp.mean(jnp.sum(jnp.square(pi - a), axis=-1))
    q_term = -jnp.mean(q_pi)
    if cfg.head == "ddpg_bc":
        q_term = q_term / jax.lax.stop_gradient(jnp.mean(jnp.abs(q_pi)))
    return q_term + bc_alpha(cfg) * bc, {"q_pi": jnp.mean(q_pi), "bc_mse": bc}


def iql_loss(params, target, batch: dict, data: dict, cfg: Config) -> tuple[jax.Array, dict]:
    """L_V + L_Q + L_actor for one batch (module docstring); each network's gradient is its own loss's."""
    s, s2 = _norm(data, batch["obs"]), _norm(data, batch["next_obs"])
    a = batch["actions"]
    critic, value = _critic(cfg), _value(cfg)
    q1t, q2t = critic.apply({"params": target}, s, a)
    u = jnp.minimum(q1t, q2t)
    v = value.apply({"params": params["value"]}, s)[:, 0]
    # a separate call: inside one concatenated batch the backward pass would still multiply the zero
    # cotangents of the s' half
    v_next = value.apply({"params": jax.lax.stop_gradient(params["value"])}, s2)[:, 0]
    v_loss = jnp.mean(expectile_loss(u - v, cfg.expectile))
    y = batch["rewards"] + cfg.discount * batch["masks"] * v_next
    q1, q2 = critic.apply({"params": params["critic"]}, s, a)
    q_loss = jnp.mean(jnp.square(q1 - y) + jnp.square(q2 - y))
    adv = jax.lax.stop_gradient(u - v)
    climb = target if cfg.ddpg_critic == "target" else jax.lax.stop_gradient(params["critic"])
    pi_loss, info = actor_loss(params["actor"], climb, s, a, adv, cfg, data.get("centres"))
    return v_loss + q_loss + pi_loss, {"v_loss": v_loss, "q_loss": q_loss, "actor_loss": pi_loss,
                                       "q_mean": jnp.mean(u), "v_mean": jnp.mean(v), "adv_mean": jnp.mean(adv),
                                       **info}


def _batch(data: dict, key: jax.Array, n: int) -> dict:
    idx = jax.random.randint(key, (n,), 0, data["obs"].shape[0])
    return {k: data[k][idx] for k in ("obs", "actions", "next_obs", "rewards", "masks")}


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data: dict, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    tx = optimizer(cfg)
    mesh = _mesh(cfg)
    key, sub = jax.random.split(state.key)

    def update(carry, k):
        params, target, opt_state = carry
        batch = jaxtools.shard_batch(_batch(data, k, cfg.batch_size), mesh)
        grads, info = jax.grad(iql_loss, has_aux=True)(params, target, batch, data, cfg)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        loss = info["v_loss"] + info["q_loss"] + info["actor_loss"]
        carry = jaxtools.replicate((params, polyak(target, params["critic"], cfg.tau), opt_state), mesh)
        return carry, {"loss": loss, **info}

    (params, target, opt_state), infos = jax.lax.scan(
        update, jaxtools.replicate((state.params, state.target, state.opt_state), mesh),
        jax.random.split(sub, cfg.inner_steps), unroll=SCAN_UNROLL)
    return state.replace(params=params, target=target, opt_state=opt_state, key=key), \
        jax.tree_util.tree_map(jnp.mean, infos)


# ------------------------------------------------------------------------------------------- the policy


@functools.partial(jax.jit, static_argnames=("cfg", "mode"))
def policy_action(params, data: dict, obs: jax.Array, cfg: Config, mode: str = "tanh") -> jax.Array:
    """The evaluation action (n, 2): the Gaussian mean, the top token's centre, or tanh / clip of DDPG's mu."""
    out, _ = _actor(cfg).apply({"params": params["actor"]}, _norm(data, obs))
    if cfg.head == "awr_discrete":
        return data["centres"][jnp.argmax(out, axis=-1)]
    if cfg.head in DDPG_HEADS and mode == "clip":
        return jnp.clip(out, -1.0, 1.0)
    return jnp.tanh(out)


@functools.partial(jax.jit, static_argnames=("cfg",))
def action_distribution(params, data: dict, obs: jax.Array, key: jax.Array, cfg: Config):
    """The policy's weighted actions at each state (module docstring): ((S, M, 2), (S, M))."""
    out, log_std = _actor(cfg).apply({"params": params["actor"]}, _norm(data, obs))
    n = obs.shape[0]
    if cfg.head == "awr":
        std = jnp.exp(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))
        eps = jax.random.normal(key, (n, cfg.stat_samples, 2))
        acts = jnp.clip(jnp.tanh(out)[:, None, :] + std * eps, -1.0, 1.0)
        return acts, jnp.full((n, cfg.stat_samples), 1.0 / cfg.stat_samples)
    if cfg.head == "awr_discrete":
        centres = data["centres"]
        return jnp.broadcast_to(centres, (n, *centres.shape)), jax.nn.softmax(out, axis=-1)
    act = jnp.clip(out, -1.0, 1.0) if cfg.eval_action == "clip" else jnp.tanh(out)
    return act[:, None, :], jnp.ones((n, 1))


@functools.partial(jax.jit, static_argnames=("cfg",))
def _stats(state: State, data: dict, key: jax.Array, cfg: Config) -> dict[str, jax.Array]:
    s, a = data["stat_obs"], data["stat_actions"]
    acts, weights = action_distribution(state.params, data, s, key, cfg)
    sn = _norm(data, s)
    q1, q2 = _critic(cfg).apply({"params": state.target}, sn, a)
    v = _value(cfg).apply({"params": state.params["value"]}, sn)[:, 0]
    u = jnp.minimum(q1, q2)
    out = {**action_stats(acts, weights), "q_mean": jnp.mean(u), "v_mean": jnp.mean(v), "adv_mean": jnp.mean(u - v)}
    if cfg.head == "awr":
        log_std = state.params["actor"]["log_std"]
        out["awr_std"] = jnp.mean(jnp.exp(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)))
    return out


def _sample_actions(state: State, data: dict, cfg: Config, key: jax.Array) -> np.ndarray:
    """One action per stat state, sampled from the policy (its evaluation action for the DDPG heads)."""
    k_dist, k_pick = jax.random.split(key)
    acts, weights = action_distribution(state.params, data, data["stat_obs"], k_dist, cfg)
    pick = jax.random.categorical(k_pick, jnp.log(jnp.maximum(weights, 1e-30)), axis=-1)  # (S,)
    return np.asarray(jnp.take_along_axis(acts, pick[:, None, None], axis=1)[:, 0])


def _seed(key: jax.Array) -> int:
    return int(jax.random.randint(key, (), 0, 2**31 - 1))


def _rollouts(state: State, data: dict, cfg: Config, key: jax.Array, episodes: int,
              record: int, task_start: bool = False) -> tuple[dict, dict]:
    """Metrics of the evaluation episodes (both action maps for DDPG heads) and the recorded rollout.

    With ``task_start`` and random start cells (``eval_start="random"``), the same policy is also run from the
    task's own start cell: ``success_task_start`` and ``time_to_goal_task_start``.
    """
    task = make_task(cfg)
    seed = _seed(key)

    def run(mode: str, rec: int, t=task) -> dict:
        def policy(obs: np.ndarray) -> np.ndarray:
            return np.asarray(policy_action(state.params, data, jnp.asarray(obs, jnp.float32), cfg, mode))

        return pointmaze.rollout(policy, t, episodes, seed, record=rec)

    def summary(out: dict, suffix: str = "") -> dict:
        got = {f"success{suffix}": float(out["success"])}
        if math.isfinite(float(out["time_to_goal"])):
            got[f"time_to_goal{suffix}"] = float(out["time_to_goal"])
        return got

    main = run(cfg.eval_action, record)
    metrics = {**summary(main), "episodes": float(episodes)}
    if cfg.head in DDPG_HEADS:
        other = "clip" if cfg.eval_action == "tanh" else "tanh"
        metrics[f"success_{cfg.eval_action}"] = metrics["success"]
        metrics[f"success_{other}"] = float(run(other, 0)["success"])
    if task_start and task.start != "task":
        metrics.update(summary(run(cfg.eval_action, 0, dataclasses.replace(task, start="task")), "_task_start"))
    return metrics, main


def evaluate(state: State, data: dict, cfg: Config, seed: int) -> dict[str, float]:
    k_roll, k_stat, _ = jax.random.split(jaxtools.key(seed), 3)
    metrics, _ = _rollouts(state, data, cfg, k_roll, cfg.eval_episodes, 0)
    metrics.update({k: float(v) for k, v in _stats(state, data, k_stat, cfg).items()})
    return metrics


def _artifacts(state: State, data: dict, cfg: Config, key: jax.Array, roll: dict) -> dict[str, Any]:
    scene = draw.MazeScene(**pointmaze.scene(make_task(cfg)))
    name = {"awr": "AWR (Gaussian)", "awr_discrete": "AWR-discrete", "ddpg": "DDPG", "ddpg_bc": "DDPG+BC"}[cfg.head]
    paths = [roll["xy"][i, : int(roll["lengths"][i]) + 1] for i in range(roll["xy"].shape[0])]
    return {
        "actions_data": action_scatter(np.asarray(data["stat_actions"]), title="data actions"),
        "actions_policy": action_scatter(_sample_actions(state, data, cfg, key),
                                         title=f"{name}: policy samples at data states"),
        "actions_rollout": action_scatter(roll["actions"], title=f"{name}: actions in evaluation episodes"),
        "rollout": draw.rollout_frames(scene, roll["xy"][0], int(roll["lengths"][0])),
        "trajectories": draw.trajectories_image(scene, paths),
    }


def artifacts(state: State, data: dict, cfg: Config, seed: int) -> dict[str, Any]:
    k_roll, _, k_art = jax.random.split(jaxtools.key(seed), 3)
    _, roll = _rollouts(state, data, cfg, k_roll, max(cfg.eval_episodes, cfg.record_episodes),
                        cfg.record_episodes)
    return _artifacts(state, data, cfg, k_art, roll)


def final(state: State, data: dict, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics and artifacts from one set of rollouts (the recorded episodes are among the evaluated ones)."""
    k_roll, k_stat, k_art = jax.random.split(jaxtools.key(seed), 3)
    metrics, roll = _rollouts(state, data, cfg, k_roll, cfg.final_episodes,
                              min(cfg.record_episodes, cfg.final_episodes), task_start=True)
    metrics.update({k: float(v) for k, v in _stats(state, data, k_stat, cfg).items()})
    return metrics, _artifacts(state, data, cfg, k_art, roll)


def bench_baseline(cfg: Config) -> dict:
    """The PyTorch eager implementation of the same update, timed in this process (``athanor bench``)."""
    from athanor.systems.offline_rl import torch_baseline

    return torch_baseline.measure(batch=cfg.batch_size, hidden=cfg.hidden, head=cfg.head, n_tokens=cfg.n_tokens,
                                  layer_norm=cfg.layer_norm)
