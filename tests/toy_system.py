"""A least-squares regression fitted by minibatch SGD in JAX: the smallest system that exercises the run loop.

Loss = mean over a minibatch of (x.w - y)^2 / 2 with y = x.w_true; the regression data come from the run's seed
(``load_data``), the minibatch indices from the state's key, so determinism and resume depend on the key
threading like a real system's. A learning rate above 2 / lambda_max makes the iterates diverge to inf/NaN,
which the run loop must catch. ARCHITECTURE.md walks through this file as the worked example.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from athanor.core import jaxtools
from athanor.core.artifacts import Heatmap
from athanor.core.config import TrainConfig, param


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = 40
    inner_steps: int = 10
    dim: int = param(4, lo=1)
    lr: float = param(0.1, lo=0.0)
    batch_size: int = param(8, lo=1)


PRESETS = {"tiny": {"steps": 40, "eval_every": 20, "ckpt_every": 20}, "quick": {"steps": 200},
           "full": {"steps": 1000}}


class State(flax.struct.PyTreeNode):
    w: jax.Array
    key: jax.Array


def load_data(cfg, seed):
    x = jax.random.normal(jax.random.fold_in(jaxtools.key(seed), 1), (64, cfg.dim))
    w_true = jnp.arange(1.0, cfg.dim + 1.0)
    return {"x": x, "y": x @ w_true}


def init(cfg, seed, data):
    return State(w=jnp.zeros(cfg.dim), key=jaxtools.key(seed))


@functools.partial(jax.jit, static_argnames="cfg")
def step(state, data, cfg):
    def one(st, _):
        key, sub = jax.random.split(st.key)
        idx = jax.random.randint(sub, (cfg.batch_size,), 0, data["x"].shape[0])
        x, y = data["x"][idx], data["y"][idx]
        loss, g = jax.value_and_grad(lambda w: 0.5 * jnp.mean((x @ w - y) ** 2))(st.w)
        return State(w=st.w - cfg.lr * g, key=key), loss

    state, losses = jax.lax.scan(one, state, None, length=cfg.inner_steps)
    return state, {"loss": losses.mean()}


def evaluate(state, data, cfg, seed):
    resid = data["x"] @ state.w - data["y"]
    noise = jax.random.normal(jaxtools.key(seed), ())
    return {"mse": float(jnp.mean(resid**2)), "probe": float(noise)}


def artifacts(state, data, cfg, seed):
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4] = 255
    return {"square": img, "weights": Heatmap(np.asarray(state.w)[None, :], ["w"],
                                              [f"w{i}" for i in range(cfg.dim)], "weights")}
