"""The gamma model: a generative model of the discounted future-state distribution, trained by generative temporal
difference learning ("Successor Representations Explained", its "Gamma Models" part; Janner, Mordatch & Levine,
"Gamma-Models: Generative Temporal Difference Learning for Infinite-Horizon Prediction", 2020).

Object. For the uniformly random policy pi of the point room (``athanor.envs.pointroom``: a point in [0, 1]^2,
a wall at x = 0.5 with a gap at 0.6 < y < 0.8, moves through the wall or out of the room rejected), the
action-conditioned distribution of the future state, counted from the next state on:

    mu(s* | s, a) = (1 - gamma) sum_{t >= 1} gamma^(t - 1) p(s_t = s* | s_0 = s, a_0 = a, pi)
                  = (1 - gamma) p(s* | s, a) + gamma E_{s' ~ p(.|s, a), a' ~ pi(s')} mu(s* | s', a')

gamma = 0 makes it the one-step model p(s' | s, a). Any reward r(s) earned on arrival has the value
Q(s, a) = E[sum_{t >= 1} gamma^(t - 1) r(s_t)] = E_{s* ~ mu(.|s, a)}[r(s*)] / (1 - gamma).

Training (generative TD). For a data transition (s, a, s') the target sample is s* = s' with probability
1 - gamma, and otherwise s* ~ mu_target(. | s', a') with a' ~ pi(s'); the loss is -log mu_theta(s* | s, a),
averaged over a batch. Its expectation is the cross-entropy from the right-hand side of the recursion above, so
the fixed point is mu. mu_target is a Polyak copy, target <- polyak * theta + (1 - polyak) * target after every
update, which keeps the bootstrap target from chasing the model's latest errors. ``td_loss="weighted"`` uses both
sources for every transition instead, -[(1 - gamma) log mu_theta(s' | s, a) + gamma log mu_theta(s_boot | s, a)]:
the same expectation with less variance. Adam, its step size cosine-decayed from ``lr`` to ``lr_final * lr`` over
the run, gradients clipped to global norm 10 (a mixture's gradients spike when a component narrows).

Family: a mixture density network (MDN). An MLP of (2s - 1, a) gives K logits, K means m_k = s + delta_k and K
diagonal scales sigma_k = softplus(. - 2) + min_scale:

    mu_theta(s* | s, a) = sum_k w_k N(s*; m_k, diag sigma_k^2),     w = softmax(logits)

Why: the state is 2-D, where a few dozen Gaussians can draw the non-Gaussian shapes the wall makes (mass piled
against it, a tongue through the gap); its log-likelihood and its samples are exact and cheap, so training is
plain maximum likelihood that runs reliably on a CPU in minutes, and the reported log-likelihood is a true one.

Data: ``dataset_size`` independent transitions (s, a, s') made in ``load_data`` from the run's seed: s uniform
over the free space, a ~ pi, s' from the room's dynamics (an offline dataset with even coverage of the room);
batches are drawn uniformly with replacement.

Evaluation (``evaluate``; the Monte Carlo side is computed once, in ``load_data``). Four fixed pairs (s, a)
(``EVAL_PAIRS``): ``eval_samples`` draws from the model and from the room's exact sampler of mu
(``pointroom.future_states``, geometric t, no horizon cut), and a second Monte Carlo set of the same size for the
noise floor. The reward is a Gaussian bump of width 0.1 at (0.8, 0.3), right of the wall (``BUMP``). Its Monte
Carlo values come from ``value_rollouts`` discounted rollouts per state (``pointroom.mc_value``, standard errors
reported). The model's Q = E_{s* ~ mu_theta}[r(s*)] / (1 - gamma) takes the expectation in closed form, since a
Gaussian bump integrates exactly against a Gaussian mixture (``Bump.mixture_mean``), rather than averaging r over
model samples: the same quantity without sampling noise (the tests check it against the sample average).
V(s) = E_{a ~ pi} Q(s, a) averages Q over ``value_actions`` random actions, on a ``value_grid`` square grid.

Deviations from the paper, all deliberate:
- An MDN instead of the paper's GAN and normalising flow (see Family). A mixture cannot represent the one-step
  atom at s when a move is rejected, nor the wall's sharp edges: its Gaussian tails leak mass into the wall and
  out of the room, and bootstrapping copies that leak into the targets. ``outside`` measures it.
- The target draws one of the two sources by a coin flip by default, as the post states the recursion; the
  ``weighted`` loss is offered beside it (in our runs the two were within noise of each other).
- A small 2-D room and a random policy, where the true mu can be sampled exactly, instead of MuJoCo tasks.

Measured (``quick``, seed 0, 2 CPU cores, about 1.5 minutes): at gamma = 0.9 energy 0.0039 against the Monte Carlo
floor 0.0004, sample means 0.025 apart, 7.9% of model samples outside the free space, V within 15% (mean absolute
error 0.09; Monte Carlo standard error 0.03); at gamma = 0.5 energy 0.0025 (floor 0.0002), V within 6%; at
gamma = 0 energy 0.0009, means 0.005 apart. The remaining error is mostly the leak above: mass smoothed across the
wall beside it (pair 1 of ``EVAL_PAIRS``), and value seen through the wall.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from athanor.core import jaxtools
from athanor.core.config import ConfigError, TrainConfig, param
from athanor.envs import pointroom as R

# (s, a) pairs evaluated and drawn: mid-left room; beside the wall below the gap, moving up along it; at the gap,
# moving through it; right room near the reward.
EVAL_PAIRS = np.array([[[0.25, 0.5], [1.0, 0.0]], [[0.40, 0.3], [0.5, 1.0]], [[0.45, 0.7], [1.0, 0.0]],
                       [[0.75, 0.25], [0.0, -1.0]]], np.float32)


@dataclasses.dataclass(frozen=True)
class Bump:
    """The evaluation reward r(s) = exp(-|s - centre|^2 / (2 width^2)), earned on arrival (hashable)."""

    centre: tuple[float, float] = (0.8, 0.3)
    width: float = 0.1

    def __call__(self, p: jax.Array) -> jax.Array:
        return jnp.exp(-jnp.sum(jnp.square(p - jnp.asarray(self.centre)), axis=-1) / (2.0 * self.width**2))

    def mixture_mean(self, logits: jax.Array, means: jax.Array, scales: jax.Array) -> jax.Array:
        """E[r(x)] for x from the Gaussian mixture (logits (..., K), means and scales (..., K, 2)) -> (...), exactly:
        sum_k w_k prod_d width / sqrt(width^2 + sigma_kd^2) exp(-(m_kd - c_d)^2 / (2 (width^2 + sigma_kd^2)))."""
        var = jnp.square(scales) + self.width**2
        per_axis = self.width / jnp.sqrt(var) * jnp.exp(-jnp.square(means - jnp.asarray(self.centre)) / (2.0 * var))
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * jnp.prod(per_axis, axis=-1), axis=-1)


BUMP = Bump()


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(100_000, lo=1)  # gradient updates
    inner_steps: int = param(500, lo=1)  # updates fused per jitted call (speed only)
    eval_every: int = param(10_000, lo=0)  # updates between evaluations
    gamma: float = param(0.9, lo=0.0, hi=0.999)  # discount of mu; 0 = the one-step model
    components: int = param(32, lo=1)  # K, Gaussians in the mixture
    hidden: tuple[int, ...] = (256, 256)  # widths of the MDN's ReLU layers
    min_scale: float = param(0.005, lo=1e-6)  # floor on every component's std (room units)
    lr: float = param(1e-3, lo=0.0, hi=1.0)  # Adam step size at the start ...
    lr_final: float = param(0.05, lo=0.0, hi=1.0)  # ... cosine-decayed to this fraction of it at ``steps``
    batch_size: int = param(512, lo=1)  # transitions per update
    td_loss: str = param("sample", choices=("sample", "weighted"))  # coin-flip target (the post) or both terms
    polyak: float = param(0.005, lo=0.0, hi=1.0)  # target <- polyak * online + (1 - polyak) * target
    dataset_size: int = param(100_000, lo=1)  # offline transitions from uniform free states under pi
    step_size: float = param(0.1, lo=0.0, hi=0.5)  # room: a move is step_size * a
    noise_std: float = param(0.01, lo=0.0, hi=0.5)  # room: Gaussian noise per move and axis
    eval_samples: int = param(2000, lo=2)  # model and Monte Carlo samples per evaluation pair
    value_grid: int = param(12, lo=2)  # the value map is value_grid x value_grid cell centres
    value_actions: int = param(256, lo=1)  # actions a ~ pi per state for the model's V(s) = E_a Q(s, a)
    value_rollouts: int = param(512, lo=1)  # Monte Carlo rollouts per state for Q and V


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 40, "inner_steps": 20, "eval_every": 20, "hidden": (32,), "components": 4, "batch_size": 64,
             "dataset_size": 2000, "eval_samples": 128, "value_grid": 4, "value_actions": 16, "value_rollouts": 16},
    "quick": {"steps": 20_000, "eval_every": 5000, "components": 16, "batch_size": 256, "eval_samples": 1000,
              "value_grid": 8, "value_actions": 128, "value_rollouts": 256},
    "full": {"ckpt_every": 20_000},
}


class State(struct.PyTreeNode):
    params: Any  # the MDN's weights theta
    target: Any  # the Polyak copy that makes the bootstrap samples
    opt_state: Any
    key: jax.Array


def room(cfg: Config) -> R.Room:
    return R.Room(step_size=cfg.step_size, noise_std=cfg.noise_std)


class MDN(nn.Module):
    """(s, a) (n, 2) each -> mixture logits (n, K), means (n, K, 2), scales (n, K, 2)."""

    hidden: tuple[int, ...]
    components: int
    min_scale: float

    @nn.compact
    def __call__(self, s, a):
        h = jnp.concatenate([2.0 * s - 1.0, a], axis=-1)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        k = self.components
        logits = nn.Dense(k)(h)
        delta = nn.Dense(2 * k)(h).reshape(*h.shape[:-1], k, 2)
        scales = jax.nn.softplus(nn.Dense(2 * k)(h).reshape(*h.shape[:-1], k, 2) - 2.0) + self.min_scale
        return logits, s[..., None, :] + delta, scales


def _mdn(cfg: Config) -> MDN:
    return MDN(tuple(cfg.hidden), cfg.components, cfg.min_scale)


def mixture_log_prob(logits: jax.Array, means: jax.Array, scales: jax.Array, x: jax.Array) -> jax.Array:
    """log sum_k softmax(logits)_k N(x; means_k, diag scales_k^2) for logits (..., K), means and scales (..., K, D)
    and x (..., D) -> (...)."""
    z = (x[..., None, :] - means) / scales
    log_normal = jnp.sum(-0.5 * jnp.square(z) - jnp.log(scales) - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)
    return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + log_normal, axis=-1)


def mixture_sample(key: jax.Array, logits: jax.Array, means: jax.Array, scales: jax.Array) -> jax.Array:
    """One draw per row: logits (n, K), means and scales (n, K, D) -> (n, D)."""
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, logits, axis=-1)  # (n,)
    m = jnp.take_along_axis(means, comp[:, None, None], axis=1)[:, 0]
    sd = jnp.take_along_axis(scales, comp[:, None, None], axis=1)[:, 0]
    return m + sd * jax.random.normal(k_noise, m.shape)


def mixture(params, cfg: Config, s: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """mu_theta(. | s, a) for rows of s, a (n, 2): logits (n, K), means (n, K, 2), scales (n, K, 2)."""
    return _mdn(cfg).apply({"params": params}, s, a)


def log_prob(params, cfg: Config, s: jax.Array, a: jax.Array, x: jax.Array) -> jax.Array:
    """log mu_theta(x | s, a) for rows of s, a, x (n, 2) -> (n,)."""
    return mixture_log_prob(*mixture(params, cfg, s, a), x)


def sample(params, cfg: Config, key: jax.Array, s: jax.Array, a: jax.Array) -> jax.Array:
    """One s* ~ mu_theta(. | s, a) per row of s, a (n, 2) -> (n, 2)."""
    return mixture_sample(key, *mixture(params, cfg, s, a))


def q_value(params, cfg: Config, s: jax.Array, a: jax.Array) -> jax.Array:
    """Q(s, a) = E_{s* ~ mu_theta(.|s, a)}[r(s*)] / (1 - gamma) of the reward ``BUMP``, rows of s, a (n, 2) -> (n,),
    with the expectation in closed form (``Bump.mixture_mean``)."""
    return BUMP.mixture_mean(*mixture(params, cfg, s, a)) / (1.0 - cfg.gamma)


def td_target(key: jax.Array, target_params, cfg: Config, s_next: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The bootstrapped target s* (n, 2) for next states s' (n, 2): s' with probability 1 - gamma, else the draw
    of mu_target(. | s', a'), a' ~ pi (exactly s' at gamma = 0); and those draws (n, 2) themselves."""
    k_coin, k_act, k_boot = jax.random.split(key, 3)
    boot = sample(target_params, cfg, k_boot, s_next, R.policy(k_act, (s_next.shape[0],)))
    keep = jax.random.uniform(k_coin, (s_next.shape[0],)) < 1.0 - cfg.gamma
    return jnp.where(keep[:, None], s_next, boot), boot


def td_loss(params, target_params, cfg: Config, s: jax.Array, a: jax.Array, s_next: jax.Array,
            key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The generative TD loss of a batch, and the bootstrap draws (n, 2) it used: -mean log mu_theta(s* | s, a)
    (``td_loss="sample"``), or -mean[(1 - gamma) log mu_theta(s' | s, a) + gamma log mu_theta(boot | s, a)]
    (``"weighted"``)."""
    s_star, boot = td_target(key, target_params, cfg, s_next)
    if cfg.td_loss == "sample":
        return -jnp.mean(log_prob(params, cfg, s, a, s_star)), boot
    one_step, bootstrapped = log_prob(params, cfg, s, a, s_next), log_prob(params, cfg, s, a, boot)
    return -jnp.mean((1.0 - cfg.gamma) * one_step + cfg.gamma * bootstrapped), boot


def _optimizer(cfg: Config) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(cfg.lr, cfg.steps, alpha=cfg.lr_final)
    return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule))


def load_data(cfg: Config, seed: int) -> dict[str, jax.Array]:
    """The offline transitions (``s``, ``a``, ``s_next``) and the fixed Monte Carlo references: future samples
    ``mc`` and ``mc2`` (P, eval_samples, 2) at the ``EVAL_PAIRS``, their values ``q_mc`` (P,), the value-map
    states ``grid`` (G * G, 2, x-major) and their values ``v_mc`` (G * G,)."""
    if any(w < 1 for w in cfg.hidden) or not cfg.hidden:
        raise ConfigError(f"config key 'hidden' = {cfg.hidden}: give one or more positive layer widths, e.g. 256,256")
    env = room(cfg)
    keys = jax.random.split(jax.random.fold_in(jaxtools.key(seed), 7), 6)
    s = R.sample_free_states(keys[0], cfg.dataset_size, env)
    a = R.policy(keys[1], (cfg.dataset_size,))
    data = {"s": s, "a": a, "s_next": R.step(keys[2], s, a, env)}
    pairs = jnp.asarray(EVAL_PAIRS)
    ps, pa = (jnp.repeat(pairs[:, i], cfg.eval_samples, axis=0) for i in (0, 1))
    p = pairs.shape[0]
    both = R.future_states(keys[3], jnp.tile(ps, (2, 1)), jnp.tile(pa, (2, 1)), cfg.gamma, env)[0]
    data["mc"], data["mc2"] = both.reshape(2, p, cfg.eval_samples, 2)
    data["q_mc"], data["q_mc_se"] = R.mc_value(keys[4], pairs[:, 0], pairs[:, 1], BUMP, cfg.gamma,
                                               cfg.value_rollouts, env)
    centres = (jnp.arange(cfg.value_grid) + 0.5) / cfg.value_grid
    data["grid"] = jnp.stack(jnp.meshgrid(centres, centres, indexing="ij"), axis=-1).reshape(-1, 2)
    data["v_mc"], data["v_mc_se"] = R.mc_value(keys[5], data["grid"], None, BUMP, cfg.gamma, cfg.value_rollouts,
                                               env)
    return data


def init(cfg: Config, seed: int, data) -> State:
    k_init, k_state = jax.random.split(jaxtools.key(seed))
    params = _mdn(cfg).init(k_init, jnp.zeros((1, 2)), jnp.zeros((1, 2)))["params"]
    return State(params=params, target=params, opt_state=_optimizer(cfg).init(params), key=k_state)


@functools.partial(jax.jit, static_argnames="cfg")
def step(state: State, data, cfg: Config) -> tuple[State, dict[str, jax.Array]]:
    """``cfg.inner_steps`` generative-TD updates in one ``lax.scan``, the target following each by Polyak."""
    env, n = room(cfg), data["s"].shape[0]

    def batch_loss(params, target, key):
        k_idx, k_tgt = jax.random.split(key)
        idx = jax.random.randint(k_idx, (cfg.batch_size,), 0, n)
        loss, boot = td_loss(params, target, cfg, data["s"][idx], data["a"][idx], data["s_next"][idx], k_tgt)
        return loss, {"boot_outside": jnp.mean(~R.is_free(boot, env))}

    return jaxtools.scan_updates(state, cfg, _optimizer(cfg), batch_loss, target=cfg.polyak)


def energy_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| over the empirical measures of x (n, D) and y (m, D) (the V-statistic:
    non-negative, zero only for equal samples; two independent samples of one law give about (E|X - X'|) / n)."""

    def mean_dist(u, v):
        return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(u[:, None] - v[None]), axis=-1) + 1e-12))

    return 2.0 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


@functools.partial(jax.jit, static_argnames="cfg")
def _predict(params, data, cfg: Config, key: jax.Array) -> dict[str, jax.Array]:
    """Model samples at the evaluation pairs, the log-likelihood of the Monte Carlo samples, and model Q and V."""
    k_pairs, k_v = jax.random.split(key)
    p, n = data["mc"].shape[:2]
    pairs = jnp.asarray(EVAL_PAIRS)
    ps, pa = (jnp.repeat(pairs[:, i], n, axis=0) for i in (0, 1))
    samples = sample(params, cfg, k_pairs, ps, pa).reshape(p, n, 2)
    loglik = log_prob(params, cfg, ps, pa, data["mc"].reshape(-1, 2)).reshape(p, n)
    q = q_value(params, cfg, pairs[:, 0], pairs[:, 1])
    m = cfg.value_actions
    vs = jnp.repeat(data["grid"], m, axis=0)
    v = jnp.mean(q_value(params, cfg, vs, R.policy(k_v, (vs.shape[0],))).reshape(-1, m), axis=1)
    return {"samples": samples, "loglik": loglik, "q": q, "v": v}


def _analysis(state: State, data, cfg: Config, seed: int) -> dict[str, np.ndarray]:
    out = _predict(state.params, data, cfg, jaxtools.key(seed))
    return {k: np.asarray(v) for k, v in out.items()}


def in_wall_centres(grid: jax.Array, cfg: Config) -> jax.Array:
    """Which value-map states (G * G, 2) lie in the wall (drawn blank, left out of ``v_error``)."""
    return R.in_wall(grid, room(cfg))


def _metrics(pred: dict[str, np.ndarray], data, cfg: Config) -> dict[str, float]:
    mc, mc2 = np.asarray(data["mc"]), np.asarray(data["mc2"])
    energy = [float(energy_distance(jnp.asarray(x), jnp.asarray(y))) for x, y in zip(pred["samples"], mc, strict=True)]
    floor = [float(energy_distance(jnp.asarray(x), jnp.asarray(y))) for x, y in zip(mc2, mc, strict=True)]
    free = ~np.asarray(in_wall_centres(data["grid"], cfg))
    v_mc, v_err = np.asarray(data["v_mc"])[free], np.abs(pred["v"] - np.asarray(data["v_mc"]))[free]
    return {
        "energy": float(np.mean(energy)),
        "energy_mc": float(np.mean(floor)),
        "loglik": float(np.mean(pred["loglik"])),
        "mean_error": float(np.mean(np.linalg.norm(pred["samples"].mean(1) - mc.mean(1), axis=-1))),
        "outside": float(np.mean(~np.asarray(R.is_free(pred["samples"], room(cfg))))),
        "q_error": float(np.mean(np.abs(pred["q"] - np.asarray(data["q_mc"])))),
        "v_error": float(np.mean(v_err)),
        "v_rel_error": float(np.mean(v_err) / max(float(np.mean(np.abs(v_mc))), 1e-12)),
        "q_mc_se": float(np.mean(np.asarray(data["q_mc_se"]))),
        "v_mc_se": float(np.mean(np.asarray(data["v_mc_se"])[free])),
    }


def evaluate(state: State, data, cfg: Config, seed: int) -> dict[str, float]:
    """Model against Monte Carlo (means over the four ``EVAL_PAIRS``; values of the reward ``BUMP``):
    ``energy`` energy distance of model to Monte Carlo samples, ``energy_mc`` the same between two Monte Carlo
    sets of the same size (the noise floor), ``loglik`` mean log mu_theta of the Monte Carlo samples (nats),
    ``mean_error`` distance between the two sample means, ``outside`` fraction of model samples outside the free
    space, ``q_error`` mean |Q_model - Q_mc|, ``v_error`` mean |V_model - V_mc| over the value map and
    ``v_rel_error`` that divided by the mean |V_mc|."""
    return _metrics(_analysis(state, data, cfg, seed), data, cfg)


def _figures(pred: dict[str, np.ndarray], data, cfg: Config) -> dict[str, Any]:
    from athanor.viz.figures import grid_panels, image_grid, scatter2d

    env = room(cfg)
    panels = []
    for name, sets in (("Monte Carlo", np.asarray(data["mc"])), ("gamma model", pred["samples"])):
        for i, ((s, a), points) in enumerate(zip(EVAL_PAIRS, sets, strict=True)):
            arrow = np.stack([s, s + env.step_size * a])
            guides = [*R.outline(env), (arrow, {"color": "red", "linewidth": 1.5, "alpha": 1.0}),
                      (s[None], {"color": "red", "marker": "o", "markersize": 4, "alpha": 1.0})]
            panels.append(scatter2d(points, guides=guides, xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), equal=True,
                                    size=(3.0, 3.0), max_points=2000,
                                    title=f"{name}, pair {i}\ns=({s[0]:.2f}, {s[1]:.2f}), a=({a[0]:g}, {a[1]:g})"))
    g = cfg.value_grid
    blank = np.asarray(in_wall_centres(data["grid"], cfg)).reshape(g, g)
    maps = [np.where(blank, np.nan, v.reshape(g, g)) for v in (pred["v"], np.asarray(data["v_mc"]))]
    values = grid_panels(maps, [f"V from the gamma model (gamma={cfg.gamma:g})", "V by Monte Carlo rollouts"],
                         extent=(0.0, 1.0, 0.0, 1.0), xlabel="x", ylabel="y", label="V(s), bump reward at "
                         f"({BUMP.centre[0]:g}, {BUMP.centre[1]:g})")
    return {"future_samples": image_grid(panels, nrow=len(EVAL_PAIRS), pad=4), "value_map": values}


def artifacts(state: State, data, cfg: Config, seed: int) -> dict[str, Any]:
    """``future_samples``: model and Monte Carlo samples of mu(. | s, a) at each evaluation pair over the room
    (wall outlined, s and its move in red); ``value_map``: V of the bump reward from the model beside the Monte
    Carlo V."""
    return _figures(_analysis(state, data, cfg, seed), data, cfg)


def final(state: State, data, cfg: Config, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The metrics and figures from one pass of model sampling."""
    pred = _analysis(state, data, cfg, seed)
    return _metrics(pred, data, cfg), _figures(pred, data, cfg)
