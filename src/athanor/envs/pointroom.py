"""The point room: a point in the unit square with one inner wall that has a gap, in JAX, with a uniformly random
behaviour policy and Monte Carlo estimates of its discounted future-state distribution and of values.

World (all lengths in room units; the defaults of ``Room``)
- state s = (x, y) in the free space F = [0, 1]^2 minus the wall; action a in [-1, 1]^2 (clipped).
- the wall is the closed set [wall_x - w, wall_x + w] x ([0, gap_low] u [gap_high, 1]) (w = ``wall_half_width``):
  a vertical wall at x = 0.5, 0.04 thick, from the floor to the ceiling except the gap 0.6 < y < 0.8.
- one step: the proposal p = s + step_size * a + noise_std * eps, eps ~ N(0, I_2) (step_size 0.1, noise_std 0.01).
  The move is *rejected* (s' = s) when p leaves the room or the straight segment from s to p touches the wall;
  otherwise s' = p. Rejection, not clipping or stopping at the wall, is deliberate: it never piles probability
  mass onto the room's edges or the wall's faces (clipping puts a line of mass there, which no density model
  can fit), so the distribution of s_t is a density for every t >= 2; only the one-step distribution of s_1 given
  (s, a) has an atom, at s, whose mass is the probability that the move is rejected. ``free_move`` implements it
  (the segment test is exact: y is linear along the segment, so the part of it inside the wall's slab
  |x - wall_x| <= w misses the wall iff its two ends lie inside the open gap).
- the behaviour policy pi(a | s) is uniform on [-1, 1]^2 whatever the state.

Monte Carlo, in the convention where the future starts at the next state (the successor representation
M = (1 - gamma) P (I - gamma P)^-1 of a tabular chain, whose gamma = 0 case is the one-step model P):
- ``future_times``: t ~ Geometric(1 - gamma) on {1, 2, ...}, P(t) = (1 - gamma) gamma^(t - 1), mean 1 / (1 - gamma)
  (t = 1 + floor(log u / log gamma) for u ~ U(0, 1]; float32 u resolves tails down to about 1e-7).
- ``future_states``: s* = s_t of a rollout from (s, a) that takes a first and then follows pi, with t drawn as
  above: one exact sample of the discounted future-state distribution
  mu(s* | s, a) = (1 - gamma) sum_{t >= 1} gamma^(t - 1) p(s_t = s* | s, a). No horizon is cut: each example
  steps until its own t (a batched ``lax.while_loop``).
- ``mc_value``: Q(s, a) = E[sum_{t >= 1} gamma^(t - 1) r(s_t)] (the reward is earned on arrival) from discounted
  rollouts truncated at H = ceil(log(tol) / log(gamma)) steps (gamma^H <= tol; the bias is at most
  max|r| tol / (1 - gamma)); V(s) when no first action is given (it is drawn from pi). The identity
  Q = E_{s* ~ mu}[r(s*)] / (1 - gamma) relates the two estimators.

Pictures: ``outline(room)`` gives the room and the wall as plain closed polylines (M, 2); ``athanor.viz`` draws.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Room", "ROOM", "in_room", "in_wall", "is_free", "crosses_wall", "free_move", "transition", "step",
           "policy", "rollout", "sample_free_states", "future_times", "future_states", "value_horizon",
           "mc_value", "outline"]


@dataclasses.dataclass(frozen=True)
class Room:
    """The room's geometry and noise (hashable: a static argument of the jitted functions)."""

    step_size: float = 0.1  # a move is step_size * a, a in [-1, 1]^2
    noise_std: float = 0.01  # std of the Gaussian noise added to each proposed move, per axis
    wall_x: float = 0.5  # the wall's centre line
    wall_half_width: float = 0.02  # the wall spans wall_x +- this
    gap_low: float = 0.6  # the gap is the open interval gap_low < y < gap_high
    gap_high: float = 0.8


ROOM = Room()


def in_room(p: jax.Array) -> jax.Array:
    """p (..., 2) lies in the closed unit square."""
    return jnp.all((p >= 0.0) & (p <= 1.0), axis=-1)


def in_wall(p: jax.Array, room: Room = ROOM) -> jax.Array:
    """p (..., 2) lies in the closed wall (inside the slab and not inside the open gap)."""
    x, y = p[..., 0], p[..., 1]
    in_slab = jnp.abs(x - room.wall_x) <= room.wall_half_width
    return in_slab & ~((y > room.gap_low) & (y < room.gap_high))


def is_free(p: jax.Array, room: Room = ROOM) -> jax.Array:
    """p (..., 2) lies in the free space: in the room and not in the wall."""
    return in_room(p) & ~in_wall(p, room)


_is_free = jax.jit(is_free, static_argnames="room")


def crosses_wall(s: jax.Array, p: jax.Array, room: Room = ROOM) -> jax.Array:
    """The segment from s (2,) to p (2,) touches the wall (exactly; see the module docstring)."""
    lo, hi = room.wall_x - room.wall_half_width, room.wall_x + room.wall_half_width
    dx = p[0] - s[0]
    flat = dx == 0.0
    safe = jnp.where(flat, 1.0, dx)
    ta, tb = (lo - s[0]) / safe, (hi - s[0]) / safe
    t0 = jnp.where(flat, 0.0, jnp.maximum(jnp.minimum(ta, tb), 0.0))  # the segment's parameters inside the slab
    t1 = jnp.where(flat, 1.0, jnp.minimum(jnp.maximum(ta, tb), 1.0))
    meets_slab = jnp.where(flat, (s[0] >= lo) & (s[0] <= hi), t0 <= t1)
    y0, y1 = s[1] + t0 * (p[1] - s[1]), s[1] + t1 * (p[1] - s[1])

    def in_gap(y):
        return (y > room.gap_low) & (y < room.gap_high)

    return meets_slab & ~(in_gap(y0) & in_gap(y1))


def free_move(s: jax.Array, p: jax.Array, room: Room = ROOM) -> jax.Array:
    """The next state for a free s (2,) and a proposal p (2,): p if it is in the room and the segment s-p misses
    the wall, else s (the move is rejected)."""
    ok = in_room(p) & ~crosses_wall(s, p, room)
    return jnp.where(ok, p, s)


def transition(key: jax.Array, s: jax.Array, a: jax.Array, room: Room = ROOM) -> jax.Array:
    """One step for one example: s (2,), a (2,) -> s' (2,)."""
    proposal = s + room.step_size * jnp.clip(a, -1.0, 1.0) + room.noise_std * jax.random.normal(key, (2,))
    return free_move(s, proposal, room)


@functools.partial(jax.jit, static_argnames="room")
def step(key: jax.Array, s: jax.Array, a: jax.Array, room: Room = ROOM) -> jax.Array:
    """One step for a batch: s (n, 2), a (n, 2) -> s' (n, 2), each example with its own noise."""
    return jax.vmap(transition, in_axes=(0, 0, 0, None))(jax.random.split(key, s.shape[0]), s, a, room)


def policy(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Actions of the uniformly random behaviour policy: shape + (2,), uniform on [-1, 1]^2."""
    return jax.random.uniform(key, (*shape, 2), minval=-1.0, maxval=1.0)


@functools.partial(jax.jit, static_argnames=("horizon", "room"))
def rollout(key: jax.Array, s: jax.Array, a: jax.Array, horizon: int, room: Room = ROOM) -> jax.Array:
    """States s_1 .. s_horizon (horizon, n, 2) from s (n, 2): the first action is a (n, 2), then pi."""

    def body(carry, k):
        pos, act = carry
        k_step, k_act = jax.random.split(k)
        nxt = step(k_step, pos, act, room)
        return (nxt, policy(k_act, (pos.shape[0],))), nxt

    _, states = jax.lax.scan(body, (s, a), jax.random.split(key, horizon))
    return states


def sample_free_states(key: jax.Array, n: int, room: Room = ROOM) -> jax.Array:
    """n states (n, 2) uniform over the free space (rejection sampling from the unit square; host-side loop)."""
    out, have, i = [], 0, 0
    while have < n:
        candidates = jax.random.uniform(jax.random.fold_in(key, i), (max(2 * (n - have), 64), 2))
        keep = np.asarray(candidates)[np.asarray(_is_free(candidates, room))]
        out.append(keep)
        have, i = have + len(keep), i + 1
    return jnp.asarray(np.concatenate(out)[:n])


def future_times(key: jax.Array, shape: tuple[int, ...], gamma: float) -> jax.Array:
    """t ~ Geometric(1 - gamma) on {1, 2, ...} (int32, ``shape``); gamma = 0 gives t = 1."""
    u = 1.0 - jax.random.uniform(key, shape)  # in (0, 1]
    t = 1.0 + jnp.floor(jnp.log(u) / jnp.log(jnp.asarray(gamma, jnp.float32)))
    return t.astype(jnp.int32)


def _future_one(key: jax.Array, s: jax.Array, a: jax.Array, t: jax.Array, room: Room) -> jax.Array:
    """s_t of one rollout from (s, a): t steps, the first with action a and the rest with pi."""

    def body(carry):
        i, pos, act, k = carry
        k, k_step, k_act = jax.random.split(k, 3)
        return i + 1, transition(k_step, pos, act, room), policy(k_act), k

    _, pos, _, _ = jax.lax.while_loop(lambda c: c[0] < t, body, (jnp.int32(0), s, a, key))
    return pos


@functools.partial(jax.jit, static_argnames=("gamma", "room"))
def future_states(key: jax.Array, s: jax.Array, a: jax.Array, gamma: float,
                  room: Room = ROOM) -> tuple[jax.Array, jax.Array]:
    """One sample s* ~ mu(. | s, a) per row of s (n, 2), a (n, 2), and its time t (n,) (module docstring)."""
    k_t, k_roll = jax.random.split(key)
    t = future_times(k_t, (s.shape[0],), gamma)
    keys = jax.random.split(k_roll, s.shape[0])
    return jax.vmap(_future_one, in_axes=(0, 0, 0, 0, None))(keys, s, a, t, room), t


def value_horizon(gamma: float, tol: float = 1e-3) -> int:
    """The rollout length H with gamma^H <= tol (1 for gamma = 0)."""
    return 1 if gamma <= 0.0 else max(1, math.ceil(math.log(tol) / math.log(gamma)))


@functools.partial(jax.jit, static_argnames=("reward", "gamma", "rollouts", "horizon", "room"))
def _mc_value(key, s, a, reward, gamma, rollouts, horizon, room):
    n = s.shape[0]
    k_first, k_roll = jax.random.split(key)
    pos = jnp.repeat(s, rollouts, axis=0)  # (n * rollouts, 2), example-major
    act = policy(k_first, (n * rollouts,)) if a is None else jnp.repeat(a, rollouts, axis=0)

    def body(carry, k):
        pos, act, ret, discount = carry
        k_step, k_act = jax.random.split(k)
        pos = step(k_step, pos, act, room)
        ret = ret + discount * reward(pos)
        return (pos, policy(k_act, (pos.shape[0],)), ret, discount * gamma), None

    init = (pos, act, jnp.zeros(pos.shape[0]), jnp.ones(()))
    (_, _, ret, _), _ = jax.lax.scan(body, init, jax.random.split(k_roll, horizon))
    ret = ret.reshape(n, rollouts)
    return jnp.mean(ret, axis=1), jnp.std(ret, axis=1) / math.sqrt(rollouts)


def mc_value(key: jax.Array, s: jax.Array, a: jax.Array | None, reward: Callable[[jax.Array], jax.Array],
             gamma: float, rollouts: int, room: Room = ROOM, tol: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """Monte Carlo Q(s, a) (or V(s) for a = None) of ``reward`` (positions (..., 2) -> (...), earned on arrival)
    for each row of s (n, 2): the mean over ``rollouts`` discounted returns truncated at ``value_horizon``, and its
    standard error; both (n,)."""
    return _mc_value(key, s, a, reward, float(gamma), rollouts, value_horizon(gamma, tol), room)


def outline(room: Room = ROOM) -> list[np.ndarray]:
    """The room's border and the wall's two pieces as closed polylines (M, 2), for drawing."""

    def box(x0, x1, y0, y1):
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], np.float64)

    lo, hi = room.wall_x - room.wall_half_width, room.wall_x + room.wall_half_width
    return [box(0.0, 1.0, 0.0, 1.0), box(lo, hi, 0.0, room.gap_low), box(lo, hi, room.gap_high, 1.0)]
