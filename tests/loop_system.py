"""A system with its own loop (``run(cfg, ctx)``, the contract's escape hatch): least squares by SGD in NumPy.

It exports only Config, PRESETS and run. The minibatch of update t comes from ``default_rng([seed, t])``, so
the state is just the weights (checkpointed by the default Flax msgpack hooks) and a resumed run draws the same
minibatches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from athanor.core.config import TrainConfig, param


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = 40
    inner_steps: int = 10
    dim: int = param(3, lo=1)
    lr: float = param(0.1, lo=0.0)
    batch_size: int = param(8, lo=1)


PRESETS = {"tiny": {"steps": 40, "eval_every": 20, "ckpt_every": 20}, "quick": {"steps": 200},
           "full": {"steps": 1000}}


def _data(cfg, seed):
    x = np.random.default_rng([seed, 1]).normal(size=(64, cfg.dim))
    return x, x @ np.arange(1.0, cfg.dim + 1.0)


def run(cfg, ctx):
    x, y = _data(cfg, ctx.seed)
    fresh = {"w": np.zeros(cfg.dim)}
    w = (ctx.restore(fresh) or fresh)["w"].copy()
    done = ctx.start_step
    while done < cfg.steps:
        losses = []
        for t in range(done, done + cfg.inner_steps):
            idx = np.random.default_rng([ctx.seed, 2, t]).integers(0, len(x), cfg.batch_size)
            resid = x[idx] @ w - y[idx]
            losses.append(0.5 * np.mean(resid**2))
            w = w - cfg.lr * x[idx].T @ resid / cfg.batch_size
        done += cfg.inner_steps
        ctx.log(done, {"loss": float(np.mean(losses))})
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            ctx.log(done, {"mse": float(np.mean((x @ w - y) ** 2))}, kind="eval")
        if ctx.tick({"w": w}, done):
            return None
    probe = float(np.random.default_rng(ctx.eval_seed(done)).normal())
    img = np.zeros((6, 6, 3), np.uint8)
    img[::2] = 200
    return {"mse": float(np.mean((x @ w - y) ** 2)), "probe": probe}, {"stripes": img}
