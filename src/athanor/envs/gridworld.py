"""Small discrete MDPs as plain NumPy arrays: gridworlds from ASCII layouts, a three-state Markov chain, the exact
value oracles (policy evaluation, value iteration) and a transition sampler for offline datasets.

Gridworld. A layout is a list of equal-length rows of '#' (wall) and '.' (free). The states are the free cells in
row-major order (state k sits at ``cells[k]`` = (row, col)); the actions are up, down, left, right (``ACTIONS``).
A move into a wall or off the border leaves the agent where it is. With probability ``slip`` the move is replaced
by one in a direction drawn uniformly from all four (the intended one included), so

    P[a, s, s'] = (1 - slip) [s' = next(s, a)] + (slip / 4) sum_d [s' = next(s, d)].

``four_rooms()`` is Sutton, Precup & Singh's four-rooms layout (1999) without its outer wall (the border plays that
part): 11 x 11 cells, 104 free, four rooms joined by four one-cell doorways. ``open_room(n)`` is an n x n room.

The A/B/C chain. The successor-representation post starts from a state A that moves to a distribution over A, B
and C; it gives no numbers, so ``abc_chain()`` is an illustration with transition matrix (rows: from A, B, C)

    [[0.1, 0.6, 0.3],
     [0.0, 0.3, 0.7],
     [0.5, 0.0, 0.5]].

Values (the oracles the successor systems are checked against). The reward is paid on arrival, r[s'], and the
return counts from the next state: V(s) = E[sum_{t >= 0} gamma^t r(s_{t+1}) | s_0 = s]. Then

    Q[a, s] = sum_s' P[a, s, s'] (r[s'] + gamma V[s'])
    policy evaluation:  V = (I - gamma P_pi)^-1 P_pi r,   P_pi[s, s'] = sum_a pi[s, a] P[a, s, s']
    value iteration:    V <- max_a Q[a, :]  until the largest change is below ``tol``

Policies are arrays pi[s, a] whose rows sum to 1. Nothing here draws: pictures are made from ``cells``, ``shape``
and per-state values (``Gridworld.to_grid``) by ``athanor.viz``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["ACTIONS", "MOVES", "FOUR_ROOMS", "Gridworld", "make_gridworld", "four_rooms", "open_room", "abc_chain",
           "ABC_LABELS", "policy_matrix", "uniform_policy", "greedy_policy", "evaluate_chain", "q_values",
           "policy_evaluation", "value_iteration", "sample_transitions", "sample_trajectories"]

ACTIONS = ("up", "down", "left", "right")
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # (d_row, d_col) per action

FOUR_ROOMS = (
    ".....#.....",
    ".....#.....",
    "...........",
    ".....#.....",
    ".....#.....",
    "#.####.....",
    ".....###.##",
    ".....#.....",
    ".....#.....",
    "...........",
    ".....#.....",
)

ABC_LABELS = ("A", "B", "C")


@dataclasses.dataclass(frozen=True, eq=False)
class Gridworld:
    """A gridworld MDP: ``P`` (A, S, S) with rows summing to 1, ``cells`` (S, 2) the (row, col) of each state,
    ``free`` (H, W) bool, True on free cells, and the ``slip`` it was built with."""

    P: np.ndarray  # (A, S, S) float64
    cells: np.ndarray  # (S, 2) int (row, col)
    free: np.ndarray  # (H, W) bool
    slip: float

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the layout."""
        return tuple(self.free.shape)

    @property
    def n_states(self) -> int:
        return self.P.shape[1]

    @property
    def n_actions(self) -> int:
        return self.P.shape[0]

    def state(self, row: int, col: int) -> int:
        """The state index of a free cell; ValueError for a wall or a cell outside the layout."""
        hits = np.flatnonzero((self.cells[:, 0] == row) & (self.cells[:, 1] == col))
        if not len(hits):
            raise ValueError(f"cell ({row}, {col}) is not a free cell of this {self.shape[0]}x{self.shape[1]} layout")
        return int(hits[0])

    def to_grid(self, values, fill: float = np.nan) -> np.ndarray:
        """Per-state values (S,) laid out on the layout -> (H, W), walls set to ``fill``."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_states,):
            raise ValueError(f"to_grid() takes one value per state, shape ({self.n_states},); got {values.shape}")
        grid = np.full(self.shape, fill, dtype=np.float64)
        grid[self.cells[:, 0], self.cells[:, 1]] = values
        return grid


def _parse(layout: str | Sequence[str]) -> np.ndarray:
    rows = layout.strip().splitlines() if isinstance(layout, str) else list(layout)
    rows = [r.strip() for r in rows]
    if not rows or not rows[0]:
        raise ValueError("a gridworld layout needs at least one row of '#' and '.'")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"gridworld layout rows differ in length: {[len(r) for r in rows]}")
    bad = sorted(set("".join(rows)) - {"#", "."})
    if bad:
        raise ValueError(f"gridworld layout may contain only '#' (wall) and '.' (free), found {bad}")
    free = np.array([[c == "." for c in r] for r in rows])
    if not free.any():
        raise ValueError("gridworld layout has no free cell")
    return free


def make_gridworld(layout: str | Sequence[str], slip: float = 0.0) -> Gridworld:
    """The gridworld of an ASCII layout (rows of '#' and '.'), with slip probability ``slip`` in [0, 1]."""
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip is a probability in [0, 1], got {slip}")
    free = _parse(layout)
    h, w = free.shape
    cells = np.argwhere(free)  # row-major order
    index = np.full((h, w), -1)
    index[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    n = len(cells)
    # nxt[d, s]: the state reached from s by moving in direction d without slipping
    nxt = np.empty((len(MOVES), n), dtype=np.int64)
    for d, (dr, dc) in enumerate(MOVES):
        r, c = cells[:, 0] + dr, cells[:, 1] + dc
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        target = np.where(inside, index[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)], -1)
        nxt[d] = np.where(target >= 0, target, np.arange(n))
    det = np.zeros((len(MOVES), n, n))
    det[np.arange(len(MOVES))[:, None], np.arange(n)[None, :], nxt] = 1.0
    P = (1.0 - slip) * det + slip * det.mean(axis=0, keepdims=True)
    return Gridworld(P=P, cells=cells, free=free, slip=float(slip))


def four_rooms(slip: float = 0.0) -> Gridworld:
    """Sutton et al.'s four rooms: 11 x 11 cells, 104 states (``FOUR_ROOMS``)."""
    return make_gridworld(FOUR_ROOMS, slip)


def open_room(size: int = 7, slip: float = 0.0) -> Gridworld:
    """An empty ``size`` x ``size`` room."""
    if size < 1:
        raise ValueError(f"open_room() needs size >= 1, got {size}")
    return make_gridworld(["." * size] * size, slip)


def abc_chain() -> np.ndarray:
    """The illustrative A/B/C Markov chain (3, 3) of the module docstring (rows: from A, B, C)."""
    return np.array([[0.1, 0.6, 0.3],
                     [0.0, 0.3, 0.7],
                     [0.5, 0.0, 0.5]])


def _check_policy(pi: np.ndarray, n_states: int, n_actions: int) -> np.ndarray:
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (n_states, n_actions):
        raise ValueError(f"a policy is an array pi[s, a] of shape ({n_states}, {n_actions}), got {pi.shape}")
    if np.any(pi < 0) or not np.allclose(pi.sum(axis=1), 1.0):
        raise ValueError("a policy's rows pi[s, :] must be probabilities that sum to 1")
    return pi


def policy_matrix(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """P_pi[s, s'] = sum_a pi[s, a] P[a, s, s'] for P (A, S, S) and pi (S, A) -> (S, S)."""
    P = np.asarray(P, dtype=np.float64)
    pi = _check_policy(pi, P.shape[1], P.shape[0])
    return np.einsum("sa,ast->st", pi, P)


def uniform_policy(n_states: int, n_actions: int = len(ACTIONS)) -> np.ndarray:
    """The uniformly random policy (S, A), every entry 1 / A."""
    return np.full((n_states, n_actions), 1.0 / n_actions)


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """The deterministic policy (S, A) that picks argmax_a Q[a, s] (the first action on ties), as one-hot rows."""
    Q = np.asarray(Q)
    pi = np.zeros((Q.shape[1], Q.shape[0]))
    pi[np.arange(Q.shape[1]), np.argmax(Q, axis=0)] = 1.0
    return pi


def _check_gamma(gamma: float) -> None:
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"the discount gamma must be in [0, 1), got {gamma}")


def evaluate_chain(P_pi: np.ndarray, r: np.ndarray, gamma: float) -> np.ndarray:
    """V = (I - gamma P_pi)^-1 P_pi r for a Markov chain (S, S) and a reward on arrival r (S,) -> V (S,)."""
    _check_gamma(gamma)
    P_pi = np.asarray(P_pi, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    return np.linalg.solve(np.eye(len(P_pi)) - gamma * P_pi, P_pi @ r)


def q_values(P: np.ndarray, r: np.ndarray, V: np.ndarray, gamma: float) -> np.ndarray:
    """Q[a, s] = sum_s' P[a, s, s'] (r[s'] + gamma V[s']) -> (A, S)."""
    return np.asarray(P, dtype=np.float64) @ (np.asarray(r, dtype=np.float64) + gamma * np.asarray(V))


def policy_evaluation(P: np.ndarray, pi: np.ndarray, r: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """V^pi (S,) and Q^pi (A, S) of policy pi (S, A) in the MDP P (A, S, S), reward on arrival r (S,), in closed
    form (a linear solve)."""
    V = evaluate_chain(policy_matrix(P, pi), r, gamma)
    return V, q_values(P, r, V, gamma)


def value_iteration(P: np.ndarray, r: np.ndarray, gamma: float, tol: float = 1e-10,
                    max_iter: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """V* (S,) and Q* (A, S) for a reward on arrival r (S,), by value iteration from V = 0 until the largest change
    of V is below ``tol`` (then |V - V*| <= tol * gamma / (1 - gamma)); RuntimeError if ``max_iter`` is reached.
    Rewards r (S, K) are solved all at once: V* (S, K), Q* (A, S, K)."""
    _check_gamma(gamma)
    P = np.asarray(P, dtype=np.float64)
    V = np.zeros(np.shape(r))
    for _ in range(max_iter):
        Q = q_values(P, r, V, gamma)
        new = Q.max(axis=0)
        done = np.max(np.abs(new - V)) < tol
        V = new
        if done:
            return V, q_values(P, r, V, gamma)
    raise RuntimeError(f"value iteration did not reach tol={tol} in {max_iter} sweeps (gamma={gamma})")


def _categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of probs (n, k) by inverting the cumulative sums."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cdf[:, -1]
    return np.minimum((u[:, None] >= cdf).sum(axis=1), probs.shape[1] - 1)


def sample_transitions(P: np.ndarray, pi: np.ndarray, n: int, rng: np.random.Generator,
                       start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` independent transitions (s, a, s') (each (n,) int64): s from ``start`` (probabilities over states;
    default uniform), a ~ pi[s], s' ~ P[a, s]."""
    P = np.asarray(P, dtype=np.float64)
    n_actions, n_states = P.shape[:2]
    pi = _check_policy(pi, n_states, n_actions)
    s = rng.integers(0, n_states, n) if start is None else rng.choice(n_states, size=n, p=start)
    a = _categorical(pi[s], rng)
    return s, a, _categorical(P[a, s], rng)


def sample_trajectories(P: np.ndarray, pi: np.ndarray, starts: np.ndarray, horizon: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One trajectory of ``horizon`` steps from each start state (n,): states (n, horizon + 1) with states[:, 0] =
    starts, and actions (n, horizon) drawn from pi."""
    P = np.asarray(P, dtype=np.float64)
    pi = _check_policy(pi, P.shape[1], P.shape[0])
    states = np.empty((len(starts), horizon + 1), dtype=np.int64)
    actions = np.empty((len(starts), horizon), dtype=np.int64)
    states[:, 0] = starts
    for t in range(horizon):
        actions[:, t] = _categorical(pi[states[:, t]], rng)
        states[:, t + 1] = _categorical(P[actions[:, t], states[:, t]], rng)
    return states, actions
