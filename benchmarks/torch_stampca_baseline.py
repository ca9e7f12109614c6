"""A PyTorch implementation of the `stampca` training update (the emoji autoencoder), the baseline that
benchmarks/bench_stampca.py times next to the JAX update.

    python benchmarks/torch_stampca_baseline.py [--updates 3] [--steps 48] [--compile] [--threads N]

It does the same work as ``athanor.systems.stampca.autoencoder._step`` with ``pool_size=0`` and a fixed growth
length (``grow_min = grow_max``), at the same shapes:

- draw ``batch`` training emoji (premultiplied RGBA, 32 x 32) uniformly;
- encoder: three stride-2 3x3 convolutions (32, 64, 128 channels, ReLU; padded like Flax's ``"SAME"``, which for
  stride 2 on an even side pads one cell after and none before), Dense 256 ReLU, Dense C - 4;
- seed cell [0, 0, 0, 1, code] in the centre of an empty world;
- ``steps`` NCA steps, unrolled: perception [x, sobel_x(x), sobel_y(x)] per channel with zero padding, the
  per-cell MLP as two 1x1 convolutions (hidden 128, ReLU, the last one zero-initialised), the per-cell fire mask
  (``rand < fire_rate``), the alive mask before and after (3x3 max-pool of alpha > 0.1);
- loss: mean squared error over the visible channels; backward through the whole rollout;
- each parameter's gradient divided by its own L2 norm (+ 1e-8), then Adam (lr 2e-3, betas 0.9 / 0.999,
  eps 1e-8: optax's and torch's defaults agree). The JAX learning-rate schedule drops the rate after a quarter
  of training; a benchmark never gets there, so the rate here is constant.

Layout: NCHW, torch's native one for convolutions. Perception comes in two forms (``Rule``): one depthwise 3x3
convolution whose three filters per channel are the identity and the two Sobel stencils ("conv"), or array slices
("slices"). Each mode uses the faster one, measured in one process, interleaved, single-threaded on the 2-core
machine under load (batch 8, 48 steps, seconds per update): eager, conv 1.65 and slices 1.95; compiled, slices
1.57 and conv 1.82 (inductor fuses the slice arithmetic with the masks, while the convolution stays a library
call). An NHWC layout with slices and ``Linear`` layers was 5-10% slower eager than either NCHW form. The conv form
interleaves the perception channels per channel (3c + k) where the JAX code concatenates [x, sobel_x, sobel_y];
``load_jax_params`` permutes the first Dense kernel accordingly.

``torch.compile`` (``compiled=True``) compiles the per-step function ``nca_step`` (the step with its masks; its
backward is compiled with it), called ``steps`` times in a Python loop; the encoder, the normalisation and Adam
stay eager (a small share of the work). Compiling the whole unrolled loss instead took 227 s for the first call
(a 48-fold graph) and ran no faster (1.75-2.0 s against 2.03 s per update for the per-step compile, both with
conv perception, same conditions).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIZE = 32  # world and emoji side
RGBA = 4
ALIVE_THRESHOLD = 0.1
PERCEPTIONS = ("conv", "slices")
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0  # correlation, x to the right


class Encoder(nn.Module):
    """Premultiplied RGBA (n, 4, 32, 32) -> codes (n, code_dim)."""

    def __init__(self, code_dim: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(i, o, 3, stride=2) for i, o in ((4, 32), (32, 64), (64, 128))])
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, code_dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = y
        for conv in self.convs:
            h = F.relu(conv(F.pad(h, (0, 1, 0, 1))))  # Flax "SAME" at stride 2: the extra cell goes after
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


class Rule(nn.Module):
    """Perception and the per-cell MLP: worlds (b, C, h, w) -> dx (b, C, h, w).

    perception: "conv" (one depthwise convolution; channel 3c + k is filter k of channel c, filters identity,
    sobel_x, sobel_y) or "slices" (array slices; channels [x, sobel_x, sobel_y] in blocks of C, as in JAX)."""

    def __init__(self, channels: int, hidden: int = 128, perception: str = "conv"):
        super().__init__()
        if perception not in PERCEPTIONS:
            raise ValueError(f"perception={perception!r}; choose one of {PERCEPTIONS}")
        ident = np.zeros((3, 3))
        ident[1, 1] = 1.0
        filters = np.stack([ident, SOBEL_X, SOBEL_X.T])  # (3, 3, 3): identity, sobel_x, sobel_y
        self.register_buffer("filters", torch.tensor(np.tile(filters, (channels, 1, 1))[:, None], dtype=torch.float32))
        self.channels, self.perception = channels, perception
        self.w1 = nn.Conv2d(3 * channels, hidden, 1)
        self.w2 = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.w2.weight)  # an untrained rule leaves every world unchanged, as in the JAX code
        nn.init.zeros_(self.w2.bias)

    def perceive(self, x: torch.Tensor) -> torch.Tensor:
        """(b, C, h, w) -> (b, 3C, h, w), channels in the order of ``perception`` (see the class)."""
        if self.perception == "conv":
            return F.conv2d(x, self.filters, padding=1, groups=self.channels)
        h, w = x.shape[2], x.shape[3]
        xp = F.pad(x, (1, 1, 1, 1))
        v = [[xp[:, :, dy:dy + h, dx:dx + w] for dx in range(3)] for dy in range(3)]  # v[dy][dx]: that neighbour
        right = v[0][2] + 2.0 * v[1][2] + v[2][2]
        left = v[0][0] + 2.0 * v[1][0] + v[2][0]
        down = v[2][0] + 2.0 * v[2][1] + v[2][2]
        up = v[0][0] + 2.0 * v[0][1] + v[0][2]
        return torch.cat([x, (right - left) / 8.0, (down - up) / 8.0], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.relu(self.w1(self.perceive(x))))


def alive_mask(x: torch.Tensor) -> torch.Tensor:
    """(b, 1, h, w) bool: some cell of the 3x3 neighbourhood has alpha > 0.1 (max_pool2d pads with -inf)."""
    return F.max_pool2d(x[:, 3:4], 3, stride=1, padding=1) > ALIVE_THRESHOLD


def nca_step(rule: Rule, x: torch.Tensor, fire_rate: float) -> torch.Tensor:
    """One NCA step of the worlds x (b, C, h, w)."""
    dx = rule(x)
    fire = torch.rand(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device) < fire_rate
    new = x + dx * fire
    return new * (alive_mask(x) & alive_mask(new))


class StampCA(nn.Module):
    """The encoder and the update rule; ``loss`` grows every target from its seed and scores the result."""

    def __init__(self, channels: int = 64, hidden: int = 128, perception: str = "conv"):
        super().__init__()
        self.channels = channels
        self.encoder = Encoder(channels - RGBA)
        self.rule = Rule(channels, hidden, perception)

    def seeds(self, targets: torch.Tensor) -> torch.Tensor:
        """Seed cells (n, C) = [0, 0, 0, 1, E(target)] for targets (n, 4, 32, 32)."""
        code = self.encoder(targets)
        visible = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(code.shape[0], RGBA)
        return torch.cat([visible, code], dim=1)

    def centred(self, seeds: torch.Tensor) -> torch.Tensor:
        """One empty world per seed (n, C, 32, 32), the seed in the centre cell."""
        centre = torch.zeros(1, 1, SIZE, SIZE)
        centre[..., SIZE // 2, SIZE // 2] = 1.0
        return seeds[:, :, None, None] * centre

    def loss(self, targets: torch.Tensor, steps: int, fire_rate: float, step_fn=nca_step) -> torch.Tensor:
        x = self.centred(self.seeds(targets))
        for _ in range(steps):
            x = step_fn(self.rule, x, fire_rate)
        return torch.mean(torch.square(x[:, :RGBA] - targets))


class Trainer:
    """One `stampca` update per ``update()`` call: draw a batch, grow, backward, normalise, Adam.

    images: (n, 32, 32, 4) premultiplied RGBA (the JAX layout); the first ``n_train`` are the training emoji.
    compiled: run the NCA step through ``torch.compile`` (compiled on the first update).
    perception: "conv" or "slices" (see ``Rule``); default the faster one of each mode: conv eager, slices compiled.
    """

    def __init__(self, images: np.ndarray, n_train: int, *, batch_size: int = 8, channels: int = 64,
                 hidden: int = 128, steps: int = 48, fire_rate: float = 0.5, lr: float = 2e-3, seed: int = 0,
                 compiled: bool = False, perception: str | None = None, jax_params: Any = None):
        torch.manual_seed(seed)
        self.perception = perception or ("slices" if compiled else "conv")
        self.model = StampCA(channels, hidden, self.perception)
        if jax_params is not None:
            load_jax_params(self.model, jax_params)
        self.images = torch.tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2).contiguous()
        self.n_train, self.batch_size, self.steps, self.fire_rate = n_train, batch_size, steps, fire_rate
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.step_fn = torch.compile(nca_step) if compiled else nca_step

    def update(self, targets: torch.Tensor | None = None) -> float:
        """One update on ``targets`` (n, 4, 32, 32), or on a uniformly drawn training batch; returns the loss."""
        if targets is None:
            idx = torch.randint(0, self.n_train, (self.batch_size,), generator=self.generator)
            targets = self.images[idx]
        self.opt.zero_grad(set_to_none=True)
        loss = self.model.loss(targets, self.steps, self.fire_rate, self.step_fn)
        loss.backward()
        with torch.no_grad():
            for p in self.params:  # the growing-NCA normalisation: each gradient over its own norm
                p.grad.div_(torch.linalg.vector_norm(p.grad) + 1e-8)
        self.opt.step()
        return float(loss.detach())


def load_jax_params(model: StampCA, params: Any) -> None:
    """Copy the JAX `stampca` parameters ``{"encoder": ..., "rule": ...}`` (Flax names, any arrays) into ``model``.

    Flax conv kernels are (kh, kw, in, out), torch's (out, in, kh, kw); Dense kernels are (in, out), torch's
    (out, in). The encoder's first Dense reads the (4, 4, 128) feature map flattened as (h, w, c), torch's
    flattening is (c, h, w); the rule's first Dense reads [x, sobel_x, sobel_y] as blocks of C, torch's
    perception interleaves them per channel (3c + k)."""
    def t(a) -> torch.Tensor:
        return torch.tensor(np.asarray(a), dtype=torch.float32)

    enc, rule = params["encoder"], params["rule"]
    c = model.channels
    with torch.no_grad():
        for i, conv in enumerate(model.encoder.convs):
            conv.weight.copy_(t(enc[f"Conv_{i}"]["kernel"]).permute(3, 2, 0, 1))
            conv.bias.copy_(t(enc[f"Conv_{i}"]["bias"]))
        k = t(enc["Dense_0"]["kernel"])  # (4 * 4 * 128, 256), rows in (h, w, c) order
        model.encoder.fc1.weight.copy_(k.reshape(4, 4, 128, -1).permute(2, 0, 1, 3).reshape(k.shape).T)
        model.encoder.fc1.bias.copy_(t(enc["Dense_0"]["bias"]))
        model.encoder.fc2.weight.copy_(t(enc["Dense_1"]["kernel"]).T)
        model.encoder.fc2.bias.copy_(t(enc["Dense_1"]["bias"]))
        k = t(rule["Dense_0"]["kernel"])  # (3C, hidden), row k * C + c
        if model.rule.perception == "conv":  # torch's channel 3c + k
            k = k.reshape(3, c, -1).permute(1, 0, 2).reshape(3 * c, -1)
        model.rule.w1.weight.copy_(k.T[:, :, None, None])
        model.rule.w1.bias.copy_(t(rule["Dense_0"]["bias"]))
        model.rule.w2.weight.copy_(t(rule["Dense_1"]["kernel"]).T[:, :, None, None])
        model.rule.w2.bias.copy_(t(rule["Dense_1"]["bias"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=3, help="timed updates after one warm-up update")
    ap.add_argument("--steps", type=int, default=48, help="NCA steps per rollout")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--compile", action="store_true", help="torch.compile the NCA step")
    ap.add_argument("--perception", choices=PERCEPTIONS, help="default: conv eager, slices compiled")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images = np.random.default_rng(0).uniform(size=(64, SIZE, SIZE, RGBA)).astype(np.float32)  # speed only
    trainer = Trainer(images, len(images), batch_size=args.batch, steps=args.steps, compiled=args.compile,
                      perception=args.perception)
    t = time.perf_counter()
    trainer.update()
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(args.updates):
        trainer.update()
    per = (time.perf_counter() - t) / args.updates
    print(json.dumps({"impl": "torch compiled" if args.compile else "torch eager",
                      "perception": trainer.perception, "s_per_update": round(per, 4),
                      "first_update_s": round(first_s, 2), "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
