"""The toy least-squares regression again, in PyTorch: proof that a system need not be JAX.

Everything a PyTorch system needs beyond the required functions is here: integer seeds become
``torch.Generator``s (no global RNG), the state (weights, SGD-with-momentum optimiser, the minibatch generator)
is checkpointed as a safetensors file of tensors through ``save_state`` / ``load_state``, and ``runtime_info``
records torch's version and devices. ``step`` works on a copy of the state, so the run loop still holds the
last finite state when an update diverges (the contract: ``step`` must not modify its input).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from athanor.core import torchtools
from athanor.core.artifacts import Heatmap
from athanor.core.config import TrainConfig, param
from athanor.core.seeds import derive

runtime_info = torchtools.runtime_info
block = torchtools.block


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = 40
    inner_steps: int = 10
    dim: int = param(4, lo=1)
    lr: float = param(0.05, lo=0.0)
    momentum: float = param(0.5, lo=0.0, hi=1.0)
    batch_size: int = param(8, lo=1)


PRESETS = {"tiny": {"steps": 40, "eval_every": 20, "ckpt_every": 20}, "quick": {"steps": 200},
           "full": {"steps": 1000}}


@dataclasses.dataclass
class State:
    w: torch.Tensor  # (dim,) requires grad
    opt: torch.optim.Optimizer
    gen: torch.Generator  # minibatch indices


def load_data(cfg, seed):
    gen = torchtools.generator(seed)
    x = torch.randn(64, cfg.dim, generator=gen)
    w_true = torch.arange(1.0, cfg.dim + 1.0)
    return {"x": x, "y": x @ w_true}


def init(cfg, seed, data):
    w = torch.zeros(cfg.dim, requires_grad=True)
    gen = torchtools.generator(derive(seed, 1))  # a stream apart from the data's
    return State(w, torch.optim.SGD([w], lr=cfg.lr, momentum=cfg.momentum), gen)


def step(state, data, cfg):
    state = copy.deepcopy(state)
    losses = []
    for _ in range(cfg.inner_steps):
        idx = torch.randint(0, data["x"].shape[0], (cfg.batch_size,), generator=state.gen)
        loss = 0.5 * torch.mean((data["x"][idx] @ state.w - data["y"][idx]) ** 2)
        state.opt.zero_grad()
        loss.backward()
        state.opt.step()
        losses.append(loss.item())
    return state, {"loss": float(np.mean(losses))}


def evaluate(state, data, cfg, seed):
    with torch.no_grad():
        mse = torch.mean((data["x"] @ state.w - data["y"]) ** 2).item()
    return {"mse": mse, "probe": torch.randn((), generator=torchtools.generator(seed)).item()}


def artifacts(state, data, cfg, seed):
    img = np.zeros((8, 8, 3), np.uint8)
    img[:4] = 255
    w = state.w.detach().numpy()
    return {"square": img, "weights": Heatmap(w[None, :], ["w"], [f"w{i}" for i in range(cfg.dim)], "weights")}


def save_state(state):
    return torchtools.tensors_to_bytes({"w": state.w, "rng": state.gen.get_state(),
                                        **torchtools.optimizer_tensors(state.opt)})


def load_state(template, payload):
    tensors = torchtools.tensors_from_bytes(payload)
    if tensors["w"].shape != template.w.shape:
        raise ValueError(f"w has shape {tuple(tensors['w'].shape)}, this config's is {tuple(template.w.shape)}")
    with torch.no_grad():
        template.w.copy_(tensors["w"])
    template.gen.set_state(tensors["rng"])
    torchtools.load_optimizer_tensors(template.opt, tensors)
    return template
