"""IQL maths against closed forms: expectile loss, Polyak averaging, the loss wiring, each head on a two-action
bandit, DDPG+BC's scale invariance, the action tokeniser and the `modes` statistic."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from athanor.core.errors import ConfigError
from athanor.systems.offline_rl import iql

A_HI, A_LO = np.array([0.5, 0.5], np.float32), np.array([-0.5, -0.5], np.float32)


def cfg_for(head, **kw):
    # the bandit tests build plain-MLP critics by hand; the loss test and the contract test cover LayerNorm
    kw.setdefault("layer_norm", False)
    return iql.Config(head=head, hidden=16, **kw)


# ------------------------------------------------------------------------------------------ expectile loss


def test_expectile_at_half_is_half_the_squared_error():
    diff = jnp.array([-3.0, -0.5, 0.0, 0.25, 2.0])
    np.testing.assert_allclose(iql.expectile_loss(diff, 0.5), 0.5 * diff**2, rtol=1e-6)


def test_expectile_is_asymmetric_by_hand():
    # |tau - 1(d < 0)| d^2: tau = 0.9 weighs a positive residual 0.9 and a negative one 0.1
    np.testing.assert_allclose(iql.expectile_loss(jnp.array([2.0, -2.0]), 0.9), [3.6, 0.4], rtol=1e-6)
    np.testing.assert_allclose(iql.expectile_loss(jnp.array([2.0, -2.0]), 0.2), [0.8, 3.2], rtol=1e-6)


def test_expectile_minimiser_is_the_tau_expectile():
    # samples {0, 1}: 0.9 (1 - m) = 0.1 m  =>  m = 0.9 (the mean would be 0.5)
    x = jnp.array([0.0, 1.0])
    grid = jnp.linspace(0.0, 1.0, 1001)
    losses = jax.vmap(lambda m: jnp.mean(iql.expectile_loss(x - m, 0.9)))(grid)
    assert float(grid[jnp.argmin(losses)]) == pytest.approx(0.9, abs=1e-3)


def test_polyak_closed_form():
    online = {"w": jnp.array([2.0, -1.0])}
    target = {"w": jnp.array([0.0, 3.0])}
    tau, k = 0.1, 7
    for _ in range(k):
        target = iql.polyak(target, online, tau)
    expected = online["w"] + (1 - tau) ** k * (jnp.array([0.0, 3.0]) - online["w"])
    np.testing.assert_allclose(target["w"], expected, rtol=1e-6)


# ------------------------------------------------------------------------------------- the loss, by hand


def _synthetic(cfg, n=512, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-4, 12, (n, 2)).astype(np.float32)
    act = np.clip(rng.normal(size=(n, 2)), -1, 1).astype(np.float32)
    r = (rng.uniform(size=n) < 0.2).astype(np.float32)
    return iql.prepare(obs, act, obs + 0.2 * act, r, 1 - r, cfg, jax.random.PRNGKey(seed))


def _standardise(data, s):
    """The observation standardisation, written out here rather than taken from the module."""
    return (s - data["obs_mean"]) / data["obs_std"]


def _loss_setup(cfg):
    """Synthetic data, a fresh state, a target critic that differs from the online one, and a batch of 64."""
    data = _synthetic(cfg)
    state = iql.init(cfg, 1, data)
    target = jax.tree_util.tree_map(lambda x: x + 0.05, state.params["critic"])  # target != online
    batch = {k: data[k][:64] for k in ("obs", "actions", "next_obs", "rewards", "masks")}
    return data, state, target, batch


def _assert_own_gradient(net, own_loss, state, target, batch, data, cfg):
    """The summed loss's gradient for ``net`` equals the gradient of ``net``'s own loss term alone."""
    def grad_of(term):
        def f(p):
            total, info = iql.iql_loss({**state.params, net: p}, target, batch, data, cfg)
            return total if term is None else info[term]
        return jax.jit(jax.grad(f))(state.params[net])

    for x, y in zip(jax.tree_util.tree_leaves(grad_of(None)), jax.tree_util.tree_leaves(grad_of(own_loss)),
                    strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_loss_matches_the_equations_and_each_net_gets_its_own_gradient(layer_norm):
    cfg = cfg_for("awr", expectile=0.7, discount=0.9, stat_states=32, layer_norm=layer_norm)
    data, state, target, batch = _loss_setup(cfg)
    loss, info = iql.iql_loss(state.params, target, batch, data, cfg)

    s, s2, a = _standardise(data, batch["obs"]), _standardise(data, batch["next_obs"]), batch["actions"]
    critic, value = iql.TwinCritic(cfg.hidden, layer_norm), iql.MLP(cfg.hidden, 1, layer_norm)
    u = np.minimum(*[np.asarray(q) for q in critic.apply({"params": target}, s, a)])
    v = np.asarray(value.apply({"params": state.params["value"]}, s)[:, 0])
    v2 = np.asarray(value.apply({"params": state.params["value"]}, s2)[:, 0])
    d = u - v
    v_loss = np.mean(np.where(d < 0, 0.3, 0.7) * d**2)
    y = np.asarray(batch["rewards"]) + 0.9 * np.asarray(batch["masks"]) * v2
    q1, q2 = (np.asarray(q) for q in critic.apply({"params": state.params["critic"]}, s, a))
    q_loss = np.mean((q1 - y) ** 2 + (q2 - y) ** 2)
    assert float(info["v_loss"]) == pytest.approx(v_loss, rel=1e-4)
    assert float(info["q_loss"]) == pytest.approx(q_loss, rel=1e-4)
    assert float(loss) == pytest.approx(v_loss + q_loss + float(info["actor_loss"]), rel=1e-4)
    # the maze reward shift: rewards in {0, 1} become {-1, 0}
    assert set(np.unique(np.asarray(data["rewards"]))) <= {-1.0, 0.0}

    _assert_own_gradient("value", "v_loss", state, target, batch, data, cfg)
    _assert_own_gradient("critic", "q_loss", state, target, batch, data, cfg)


@pytest.mark.parametrize("which", ["target", "online"])
def test_ddpg_actor_climbs_the_chosen_critic_and_leaves_it_alone(which):
    cfg = cfg_for("ddpg", ddpg_critic=which, stat_states=32)
    data, state, target, batch = _loss_setup(cfg)
    _, info = iql.iql_loss(state.params, target, batch, data, cfg)

    s = _standardise(data, batch["obs"])
    pi = jnp.tanh(iql._actor(cfg).apply({"params": state.params["actor"]}, s)[0])
    climbed = target if which == "target" else state.params["critic"]
    q_pi = np.minimum(*[np.asarray(q) for q in iql._critic(cfg).apply({"params": climbed}, s, pi)])
    assert float(info["actor_loss"]) == pytest.approx(-np.mean(q_pi), rel=1e-4)
    # the actor's loss sends no gradient into the critic it climbs: the critic's gradient is the Q loss's alone
    _assert_own_gradient("critic", "q_loss", state, target, batch, data, cfg)


# --------------------------------------------------------------------------------- heads on a bandit


def _linear_critic(cfg, scale=1.0):
    """Both Qs = scale * (w . a - 5) with w = (A_HI - A_LO) / 2: the table Q(A_HI) > Q(A_LO), differentiable in a."""
    params = iql.TwinCritic(cfg.hidden).init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros((1, 2)))["params"]
    w = (A_HI - A_LO) / 2
    h = cfg.hidden

    def mlp():
        k0 = np.zeros((4, h), np.float32)
        k0[2:, 0] = w
        b0 = np.zeros(h, np.float32)
        b0[0] = 10.0  # keeps the ReLU in its linear part for actions in [-1, 1]^2
        k1 = np.zeros((h, h), np.float32)
        k1[0, 0] = 1.0
        k2 = np.zeros((h, 1), np.float32)
        k2[0, 0] = scale
        return {"Dense_0": {"kernel": k0, "bias": b0}, "Dense_1": {"kernel": k1, "bias": np.zeros(h, np.float32)},
                "Dense_2": {"kernel": k2, "bias": np.array([-15.0 * scale], np.float32)}}

    out = {name: mlp() for name in params}
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(params)
    return jax.tree_util.tree_map(jnp.asarray, out)


def _bandit_batch(n=64):
    s = jnp.zeros((n, 2))
    a = jnp.asarray(np.where(np.arange(n)[:, None] % 2 == 0, A_HI, A_LO))
    adv = jnp.where(jnp.arange(n) % 2 == 0, 1.0, -1.0)  # Q table (1, -1) minus V = 0
    return s, a, adv


def _descend(cfg, actor_params, target, centres, steps=25, lr=0.05):
    s, a, adv = _bandit_batch()
    grad = jax.jit(jax.grad(lambda p: iql.actor_loss(p, target, s, a, adv, cfg, centres)[0]))
    for _ in range(steps):
        actor_params = jax.tree_util.tree_map(lambda p, g: p - lr * g, actor_params, grad(actor_params))
    return actor_params


def _actor_init(cfg, seed=3):
    return iql._actor(cfg).init(jax.random.PRNGKey(seed), jnp.zeros((1, 2)))["params"]


def test_awr_gaussian_moves_towards_the_better_action():
    cfg = cfg_for("awr", beta=1.0)
    p0 = _actor_init(cfg)
    p1 = _descend(cfg, p0, None, None)

    def margin(p):
        out, log_std = iql._actor(cfg).apply({"params": p}, jnp.zeros((1, 2)))
        mean = jnp.tanh(out)
        lp = lambda a: iql.gaussian_log_prob(jnp.asarray(a)[None], mean, log_std)[0]  # noqa: E731
        return float(lp(A_HI) - lp(A_LO))

    assert margin(p1) > margin(p0) + 0.1


def test_awr_discrete_moves_towards_the_better_token():
    cfg = cfg_for("awr_discrete", beta=1.0, n_tokens=2)
    centres = jnp.stack([A_HI, A_LO])
    p0 = _actor_init(cfg)
    p1 = _descend(cfg, p0, None, centres)
    prob_hi = lambda p: float(jax.nn.softmax(iql._actor(cfg).apply({"params": p}, jnp.zeros((1, 2)))[0])[0, 0])  # noqa: E731
    assert prob_hi(p1) > prob_hi(p0) + 0.1
    assert prob_hi(p1) > 0.6


@pytest.mark.parametrize("head", ["ddpg", "ddpg_bc"])
def test_ddpg_heads_move_towards_the_better_action(head):
    cfg = cfg_for(head, bc_alpha=0.0)
    target = _linear_critic(cfg)
    p0 = _actor_init(cfg)
    p1 = _descend(cfg, p0, target, None, steps=10, lr=0.02 if head == "ddpg" else 0.1)

    def pi(p):
        return np.asarray(jnp.tanh(iql._actor(cfg).apply({"params": p}, jnp.zeros((1, 2)))[0][0]))

    q = lambda a: float(iql.TwinCritic(cfg.hidden).apply({"params": target}, jnp.zeros((1, 2)), a[None])[0][0])  # noqa: E731
    assert q(pi(p1)) > q(pi(p0)) + 0.05
    assert np.linalg.norm(pi(p1) - A_HI) < np.linalg.norm(pi(p0) - A_HI)


def test_ddpg_bc_is_invariant_to_the_scale_of_q_and_ddpg_is_not():
    s, a, adv = _bandit_batch()
    for head, invariant in (("ddpg_bc", True), ("ddpg", False)):
        cfg = cfg_for(head, bc_alpha=0.3)
        p0 = _actor_init(cfg)
        g = [jax.grad(lambda p, t: iql.actor_loss(p, t, s, a, adv, cfg)[0])(p0, _linear_critic(cfg, c))  # noqa: B023
             for c in (1.0, 7.0)]
        same = all(np.allclose(x, y, rtol=1e-4, atol=1e-7) for x, y in
                   zip(jax.tree_util.tree_leaves(g[0]), jax.tree_util.tree_leaves(g[1]), strict=True))
        assert same == invariant, head


def test_bc_alpha_defaults_per_head():
    assert iql.bc_alpha(iql.Config(head="ddpg")) == 0.0
    assert iql.bc_alpha(iql.Config(head="ddpg_bc")) == iql.DDPG_BC_ALPHA
    assert iql.bc_alpha(iql.Config(head="ddpg", bc_alpha=0.5)) == 0.5


# -------------------------------------------------------------------------------------------- tokeniser


def test_bins_round_trip_and_grid():
    c = iql.bin_centres(16)
    assert c.shape == (16, 2)
    np.testing.assert_array_equal(iql.encode(c, c), np.arange(16))
    np.testing.assert_allclose(iql.decode(iql.encode(c, c), c), c)
    np.testing.assert_allclose(np.unique(np.asarray(c)), [-1.0, -1 / 3, 1 / 3, 1.0], rtol=1e-6)
    # an action is mapped to its nearest centre
    assert int(iql.encode(jnp.array([[0.9, -0.8]]), c)[0]) == int(np.argmin(np.sum((np.asarray(c) - [1, -1]) ** 2, 1)))
    with pytest.raises(ConfigError, match="square"):
        iql.bin_centres(12)


def test_kmeans_recovers_blobs_and_inertia_never_rises():
    rng = np.random.default_rng(0)
    means = np.array([[0.8, 0.8], [-0.8, 0.7], [0.7, -0.9], [-0.6, -0.6]], np.float32)
    x = jnp.asarray((means[rng.integers(4, size=4000)] + 0.05 * rng.normal(size=(4000, 2))).astype(np.float32))
    centres, inertia = iql.kmeans(x, 4, 15, jax.random.PRNGKey(0))
    inertia = np.asarray(inertia)
    assert np.all(np.diff(inertia) <= 1e-6 * inertia[:-1])
    order = lambda c: np.asarray(c)[np.lexsort(np.asarray(c).T)]  # noqa: E731
    np.testing.assert_allclose(order(centres), order(means), atol=0.01)
    np.testing.assert_array_equal(iql.encode(centres, centres), np.arange(4))
    np.testing.assert_allclose(iql.decode(iql.encode(centres, centres), centres), centres)
    again, _ = iql.kmeans(x, 4, 15, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(centres, again)  # deterministic for a fixed key


def test_kmeans_inertia_decreases_on_spread_data():
    x = jax.random.uniform(jax.random.PRNGKey(1), (3000, 2), minval=-1, maxval=1)
    _, inertia = iql.kmeans(x, 32, 20, jax.random.PRNGKey(2))
    inertia = np.asarray(inertia)
    assert np.all(np.diff(inertia) <= 1e-6 * inertia[:-1]) and inertia[-1] < inertia[0]


def test_prepare_rejects_bad_token_settings():
    with pytest.raises(ConfigError, match="square"):
        _synthetic(cfg_for("awr_discrete", discretiser="bins", n_tokens=10, stat_states=8))
    with pytest.raises(ConfigError, match="n_tokens"):
        _synthetic(cfg_for("awr_discrete", n_tokens=1000, stat_states=8), n=100)


# ---------------------------------------------------------------------------------- policy statistics


def _ring(angles, norm=1.0):
    angles = np.asarray(angles, np.float32)
    return jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], -1) * norm)


_count_modes = jax.jit(iql.count_modes)


def _modes(actions, weights=None):
    w = jnp.full(actions.shape[0], 1.0 / actions.shape[0]) if weights is None else jnp.asarray(weights)
    return float(_count_modes(actions, w))


def test_modes_on_hand_built_distributions():
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.05, 0.05, 200)
    assert _modes(_ring(0.3 + jitter)) == 1
    boundary = -math.pi + 4 * 2 * math.pi / iql.N_SECTORS  # a sector edge: half the mass either side
    assert _modes(_ring(boundary + np.linspace(-0.1, 0.1, 200))) == 1
    assert _modes(_ring(np.concatenate([0.3 + jitter, 0.3 + math.pi + jitter]))) == 2
    assert _modes(_ring(np.concatenate([0.0 + jitter[:70], 2.1 + jitter[:70], 4.2 + jitter[:60]]))) == 3
    four = _ring([0.0, math.pi / 2, math.pi, 3 * math.pi / 2])
    assert _modes(four, [0.45, 0.05, 0.45, 0.05]) == 2  # 5% is below the 10% share
    assert _modes(four, [0.3, 0.4, 0.3, 0.0]) == 3  # 90 degrees apart: separate runs of sectors
    assert _modes(_ring([0.1, 0.1 + 2 * math.pi / iql.N_SECTORS])) == 1  # neighbouring sectors: one run
    assert _modes(_ring(0.3 + jitter, norm=0.3)) == 0  # no mass at ||a|| >= 0.5
    # Gaussian samples as the awr head draws them: a shifted one is one direction, a centred one none in particular
    eps = rng.normal(size=(4096, 2)).astype(np.float32)
    assert _modes(jnp.clip(jnp.array([0.7, 0.0]) + 0.4 * eps, -1, 1)) == 1
    assert _modes(jnp.clip(0.6 * eps, -1, 1)) == 0  # every sector holds ~1/16 < 10%


def test_action_stats_by_hand():
    acts = jnp.array([[[1.0, 0.0], [0.5, 0.0]], [[0.0, 0.9], [0.0, 0.1]]])  # (S=2, M=2, 2)
    w = jnp.array([[0.5, 0.5], [0.25, 0.75]])
    out = {k: float(v) for k, v in jax.jit(iql.action_stats)(acts, w).items()}
    assert out["action_norm"] == pytest.approx(((0.5 + 0.25) + (0.225 + 0.075)) / 2)
    assert out["circle_frac"] == pytest.approx((0.5 + 0.25) / 2)
    assert out["modes"] == pytest.approx(1.0)  # each state has one direction with moving mass


def test_step_updates_every_network_and_the_key_and_stays_finite():
    cfg = dataclasses.replace(cfg_for("ddpg_bc", stat_states=16), batch_size=32, inner_steps=5)
    data = _synthetic(cfg)
    state = iql.init(cfg, 0, data)
    new, info = iql.step(state, data, cfg)
    assert all(np.isfinite(float(v)) for v in info.values())
    for net in ("critic", "value", "actor"):
        assert not _leaves_equal(new.params[net], state.params[net]), net
    assert not _leaves_equal(new.target, state.target)  # the Polyak target follows
    assert not np.array_equal(np.asarray(new.key), np.asarray(state.key))  # the next call draws new batches


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                                                   strict=True))


def test_actor_warmup_holds_the_actor_for_exactly_n_updates():
    """On the DDPG head, the one the warm-up is for; the optimiser's mask does not depend on the head."""
    base = dataclasses.replace(cfg_for("ddpg", stat_states=16), batch_size=32, inner_steps=5)
    data = _synthetic(base)

    def after_five(warmup):
        cfg = dataclasses.replace(base, actor_warmup=warmup)
        state = iql.init(cfg, 0, data)
        return state, iql.step(state, data, cfg)[0]

    start, held = after_five(5)  # updates 0-4 are all inside the warm-up
    _, moved = after_five(4)  # update 4 is the actor's first step
    _, plain = after_five(0)
    assert _leaves_equal(held.params["actor"], start.params["actor"])
    assert not _leaves_equal(moved.params["actor"], start.params["actor"])
    assert not _leaves_equal(plain.params["actor"], start.params["actor"])
    # the actor's Adam moments follow its gradients during the warm-up
    first_moment = optax.tree_utils.tree_get(held.opt_state, "mu")["actor"]
    assert any(float(jnp.abs(m).max()) > 0 for m in jax.tree_util.tree_leaves(first_moment))
    for net in ("critic", "value"):  # V and Q never read the actor: the warm-up leaves them untouched
        for x, y in zip(jax.tree_util.tree_leaves(held.params[net]), jax.tree_util.tree_leaves(plain.params[net]),
                        strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        assert not _leaves_equal(held.params[net], start.params[net])


# ------------------------------------------------------------------ evaluation: tanh(mu) or clip(mu, -1, 1)


def _constant_actor(params, mu):
    """Actor parameters whose output is ``mu`` at every state: every weight and bias zero but the last bias."""
    actor = jax.tree_util.tree_map(jnp.zeros_like, params["actor"])
    actor["MLP_0"]["Dense_2"]["bias"] = jnp.asarray(mu, jnp.float32)
    return {**params, "actor": actor}


MU = (0.7, 0.5)  # tanh -> (0.604, 0.462), norm 0.76 (off the circle); clip -> (0.7, 0.5), norm 0.86 (on it)


@pytest.mark.parametrize("head", ["ddpg", "ddpg_bc"])
def test_ddpg_evaluation_action_is_tanh_or_clip_of_mu(head):
    cfg = cfg_for(head, stat_states=16)
    data = _synthetic(cfg)
    params = _constant_actor(iql.init(cfg, 0, data).params, MU)
    obs = jnp.asarray(np.random.default_rng(0).uniform(-4, 12, (5, 2)), jnp.float32)
    np.testing.assert_allclose(iql.policy_action(params, data, obs, cfg, "tanh"), np.tile(np.tanh(MU), (5, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(iql.policy_action(params, data, obs, cfg, "clip"), np.tile(MU, (5, 1)), rtol=1e-6)
    big = _constant_actor(params, (3.0, -2.5))
    np.testing.assert_array_equal(iql.policy_action(big, data, obs, cfg, "clip"), np.tile([1.0, -1.0], (5, 1)))
    # the action statistics read the configured map: off the unit circle with tanh, on it with clip
    for mode, frac in (("tanh", 0.0), ("clip", 1.0)):
        c = dataclasses.replace(cfg, eval_action=mode)
        acts, w = iql.action_distribution(params, data, obs, jax.random.PRNGKey(0), c)
        assert float(iql.action_stats(acts, w)["circle_frac"]) == frac


def test_awr_heads_ignore_the_clip_map():
    cfg = cfg_for("awr", stat_states=16)
    data = _synthetic(cfg)
    params = _constant_actor(iql.init(cfg, 0, data).params, MU)
    obs = jnp.zeros((3, 2), jnp.float32)
    for mode in ("tanh", "clip"):  # the Gaussian's mean is tanh(mu) whatever eval_action says
        np.testing.assert_allclose(iql.policy_action(params, data, obs, cfg, mode), np.tile(np.tanh(MU), (3, 1)),
                                   rtol=1e-6)


def test_rollouts_score_both_maps_on_the_same_episodes():
    """The offline-rl claim tanh_equals_clip compares success_tanh and success_clip: both must come from the
    same weights on the same episodes, and each must act with its own map."""
    pytest.importorskip("mujoco")
    pytest.importorskip("ogbench")
    base = cfg_for("ddpg", stat_states=16, eval_max_steps=25)
    data = _synthetic(base)
    state = iql.init(base, 0, data)
    state = state.replace(params=_constant_actor(state.params, MU))
    key = jax.random.PRNGKey(4)
    out = {}
    for mode in ("tanh", "clip"):
        cfg = dataclasses.replace(base, eval_action=mode)
        metrics, roll = iql._rollouts(state, data, cfg, key, episodes=6, record=6)
        assert metrics["success"] == metrics[f"success_{mode}"]
        assert {"success_tanh", "success_clip"} <= set(metrics)
        want = np.tanh(MU) if mode == "tanh" else np.asarray(MU)
        np.testing.assert_allclose(roll["actions"], np.broadcast_to(want, roll["actions"].shape), rtol=1e-6)
        out[mode] = metrics, roll
    np.testing.assert_array_equal(out["tanh"][1]["xy"][:, 0], out["clip"][1]["xy"][:, 0])  # the same starts
    assert out["tanh"][0]["success_clip"] == out["clip"][0]["success_clip"]
    assert out["tanh"][0]["success_tanh"] == out["clip"][0]["success_tanh"]
    assert not np.array_equal(out["tanh"][1]["xy"], out["clip"][1]["xy"])  # the maps moved the point differently


@pytest.mark.slow
def test_values_learn_the_maze_distances():
    """20k updates on the medium maze: near the goal, V falls with the BFS distance to the goal.

    Far cells are left out: after 20k updates their values still sit near the same not-yet-propagated level
    (the horizon there is ~160 steps), so only the first few cells' ordering is a fair check at this budget.
    """
    maze = pytest.importorskip("athanor.envs.pointmaze")
    from athanor.core.config import resolve

    cfg = resolve(iql.Config, iql.PRESETS, "quick", sets=["steps=20000", "inner_steps=1000"])
    data = iql.load_data(cfg, 0)
    state = iql.init(cfg, 0, data)
    for _ in range(cfg.steps // cfg.inner_steps):
        state, info = iql.step(state, data, cfg)
    m, task = maze.get_maze(cfg.maze), iql.make_task(cfg)
    dist = maze.bfs_distances(m.grid, task.goal_ij)[m.free[:, 0], m.free[:, 1]]
    xy = jnp.asarray(maze.ij_to_xy(m.free), jnp.float32)
    v = np.asarray(iql._value(cfg).apply({"params": state.params["value"]}, iql._norm(data, xy))[:, 0])
    by_distance = [float(v[dist == d].mean()) for d in range(5)]
    assert all(a > b for a, b in zip(by_distance, by_distance[1:], strict=False)), by_distance
    assert by_distance[0] - by_distance[1] > 5.0, by_distance  # the goal cell is worth far more than its neighbours
