"""StampCA worlds: many seeds stamped into one canvas, grown by the same NCA, and how close they may come.

Because every design is grown by the same local rule from its own seed cell, one large world can hold many
designs at once ("StampCA", section on growing several designs in the same world). This module places seeds
(``grid_layout``, ``random_layout``, ``path_layout`` for a circle or the strokes of a word), grows the world
(``Grower``), and measures interference as a function of spacing (``interference_curve``):

    for a spacing d, g x g seeds of different designs at distance d from each other, centred in one canvas
    (the widest spacing's, (g - 1) max(d) + 32 cells a side, so every spacing sees the same borders); each seed's
    error is the mean squared error of the 32 x 32 window centred on it against its own target; the same seed is
    also grown alone in the same canvas at the same place.

    world error(d) = mean over seeds of the window error with all seeds present
    alone error(d) = mean over seeds of the window error with that seed alone

The difference is what the neighbours do. With d >= 32 the windows do not overlap, so a difference comes from
the dynamics only (a neighbour's growth spilling over, or cells reviving between designs); with d < 32 the
neighbours' designs also lie inside the window, as they must when seeds are that close.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from athanor.systems.stampca import nca

SPACINGS = (12, 16, 24, 32, 40, 48)  # cells between neighbouring seeds; the designs are 32 cells wide


@functools.partial(jax.jit, static_argnames=("rule", "steps", "fire_rate", "frames"))
def _grow(rule, params, x, key, steps: int, fire_rate: float, frames: bool):
    return nca.grow(rule, params, x, key, steps, fire_rate=fire_rate, frames=frames)


@dataclasses.dataclass(frozen=True)
class Grower:
    """A trained StampCA: ``seed_fn(codes) -> seed cells (n, C)`` and the NCA rule. The codes are whatever the
    model makes its seeds from: target emoji (n, 32, 32, 4) for the autoencoder, latents (n, d) for MNIST."""

    seed_fn: Callable[[jax.Array], jax.Array]
    rule: nca.UpdateRule
    params: Any
    fire_rate: float

    def world(self, codes: jax.Array, positions, shape: tuple[int, int]) -> jax.Array:
        """An empty world (1, H, W, C) with the seed of codes[i] at positions[i] (row, col)."""
        return nca.stamp(self.seed_fn(codes), positions, shape)

    def grow(self, x: jax.Array, key: jax.Array, steps: int, frames: bool = False):
        return _grow(self.rule, self.params, x, key, steps, self.fire_rate, frames)


def grid_layout(rows: int, cols: int, spacing: int, margin: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Seed positions (rows * cols, 2) on a regular grid and the canvas shape that holds them with ``margin``
    cells around the outer seeds."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    pos = np.stack([margin + r.ravel() * spacing, margin + c.ravel() * spacing], axis=1)
    return pos, (2 * margin + (rows - 1) * spacing, 2 * margin + (cols - 1) * spacing)


def random_layout(n: int, shape: tuple[int, int], min_distance: float, margin: int,
                  rng: np.random.Generator, tries: int = 10_000) -> np.ndarray:
    """Up to n positions (m, 2) drawn uniformly inside ``margin`` of the border, each at least ``min_distance``
    (Euclidean) from the others; fewer when the canvas is full after ``tries`` draws."""
    out: list[np.ndarray] = []
    for _ in range(tries):
        if len(out) == n:
            break
        p = rng.integers([margin, margin], [shape[0] - margin, shape[1] - margin])
        if all(np.hypot(*(p - q)) >= min_distance for q in out):
            out.append(p)
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def path_layout(points: np.ndarray, spacing: float) -> np.ndarray:
    """Positions every ``spacing`` cells along the polyline ``points`` (m, 2) (row, col), rounded to cells."""
    pts = np.asarray(points, dtype=np.float64)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.arange(0.0, arc[-1] + 1e-9, spacing)
    return np.round(np.stack([np.interp(at, arc, pts[:, 0]), np.interp(at, arc, pts[:, 1])], axis=1)).astype(int)


def circle_points(centre: tuple[float, float], radius: float, n: int = 256) -> np.ndarray:
    """A closed circle as a polyline (n + 1, 2)."""
    a = np.linspace(0.0, 2.0 * np.pi, n + 1)
    return np.stack([centre[0] + radius * np.sin(a), centre[1] + radius * np.cos(a)], axis=1)


def window(x: jax.Array, centre, size: int) -> jax.Array:
    """The size x size window of world x (1, H, W, C) centred on ``centre`` (row, col): (size, size, C)."""
    r0, c0 = int(centre[0]) - size // 2, int(centre[1]) - size // 2
    return x[0, r0:r0 + size, c0:c0 + size]


@dataclasses.dataclass(frozen=True)
class InterferenceCurve:
    spacings: tuple[int, ...]
    world: tuple[float, ...]  # mean window error with all seeds present
    alone: tuple[float, ...]  # mean window error with each seed alone

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for d, w, a in zip(self.spacings, self.world, self.alone, strict=True):
            out[f"world_mse_d{d}"] = w
            out[f"alone_mse_d{d}"] = a
        return out

    def figure(self) -> np.ndarray:
        from athanor.viz.figures import curves

        records = [{"spacing": d, "kind": kind, "window MSE vs own target": v}
                   for kind, values in (("all seeds in one world", self.world), ("each seed alone", self.alone))
                   for d, v in zip(self.spacings, values, strict=True)]
        return curves(records, ["window MSE vs own target"], "interference vs spacing", x="spacing",
                      xlabel="spacing between seeds (cells)", log_loss=False)


def interference_curve(grower: Grower, targets: jax.Array, steps: int, key: jax.Array, *, size: int = 32,
                       spacings: Sequence[int] = SPACINGS) -> InterferenceCurve:
    """World and alone errors (module docstring) for each spacing, with up to 3 x 3 seeds of ``targets``."""
    n = targets.shape[0]
    g = 3 if n >= 9 else (2 if n >= 4 else 1)
    targets = targets[: g * g]
    # one canvas for every spacing (the widest layout's), the seeds centred in it: one compiled rollout
    _, canvas = grid_layout(g, g, max(spacings), size // 2)
    world_err, alone_err = [], []
    for i, d in enumerate(spacings):
        pos, shape = grid_layout(g, g, d, size // 2)
        pos = pos + (np.asarray(canvas) - np.asarray(shape)) // 2
        k = jax.random.fold_in(key, i)
        together = grower.grow(grower.world(targets, pos, canvas), k, steps)
        # each seed alone with the same key, so the fire masks match the shared world's cell for cell
        alone = [grower.grow(grower.world(targets[j:j + 1], pos[j:j + 1], canvas), k, steps) for j in range(g * g)]
        w = [_err(window(together, p, size), targets[j]) for j, p in enumerate(pos)]
        a = [_err(window(alone[j], p, size), targets[j]) for j, p in enumerate(pos)]
        world_err.append(float(np.mean(w)))
        alone_err.append(float(np.mean(a)))
    return InterferenceCurve(tuple(int(d) for d in spacings), tuple(world_err), tuple(alone_err))


def _err(cells: jax.Array, target: jax.Array) -> float:
    return float(jnp.mean(jnp.square(cells[..., : nca.RGBA] - target)))
