"""Benchmark the `vib` training update against a PyTorch implementation of the same update, in one process, and
project the epoch time and the `full` sweep's wall time.

    python benchmarks/bench_vib.py [--repeats 5] [--threads N] [--quick] [--out benchmarks/results/vib.json]

The work per update is the same in both: a batch of 100 MNIST images through the encoder 784-1024-1024-2K
(K = 256), a reparameterised draw of z, the linear decoder, cross-entropy + beta * KL in bits, the backward pass,
Adam (beta1 = 0.5) and the weight EMA. The JAX side is the system itself (``load_data``, ``init``, ``step`` of
``athanor.systems.vib.vib``: ``inner_steps`` updates per jitted call); the PyTorch side (``TorchVIB`` below, eager
mode) starts from the same parameters. ``equivalence`` evaluates both losses on one batch with one noise draw from
those parameters: the evidence that the baseline does the same maths (tests/test_bench_vib.py asserts it).

Method. Each implementation's first block (for JAX: trace and compile, plus the block's work) is timed on its
own as ``first_call_s``. Then ``repeats`` rounds each time one block of ``inner_steps`` updates of each
implementation in turn, so a change in the machine's load hits both alike; the headline ``s_per_update`` is the
fastest block, the median is kept beside it. ``epoch_s`` is 600 updates (60,000 images in batches of 100) at that
speed. ``evaluation_s`` times one evaluation (10,000 test and 10,000 train images, 12 draws of z) and
``attacks_s`` the attacks at the end of a run (1,000 images, FGSM and 10-step PGD at three radii).
``--threads N`` restricts the process to N cores (before JAX starts) and sets torch's threads to N.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

from _paired import cli, run_facts, time_blocks

QUICK = {"hidden": 64, "latent_dim": 8, "inner_steps": 20, "eval_examples": 500, "adv_examples": 50}



def make_torch_vib(params: Any, beta: float, lr: float, b1: float, ema: float):
    """The PyTorch VIB (eager), its weights copied from the JAX ``params``; returns the model object."""
    import numpy as np
    import torch

    class TorchVIB(torch.nn.Module):
        def __init__(self):
            super().__init__()
            enc, dec = params["encoder"], params["decoder"]
            self.layers = torch.nn.ModuleList()
            for layer in (enc["Dense_0"], enc["Dense_1"], enc["Dense_2"], dec["Dense_0"]):
                kernel = np.asarray(layer["kernel"])
                lin = torch.nn.Linear(*kernel.shape)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
                    lin.bias.copy_(torch.from_numpy(np.asarray(layer["bias"]).copy()))
                self.layers.append(lin)
            self.latent = self.layers[2].out_features // 2
            self.opt = torch.optim.Adam(self.parameters(), lr=lr, betas=(b1, 0.999), eps=1e-8)
            self.ema = [p.detach().clone() for p in self.parameters()]

        def loss(self, x, y, noise):
            h = torch.relu(self.layers[0](2 * x - 1))
            h = torch.relu(self.layers[1](h))
            out = self.layers[2](h)
            mu, sigma = out[:, : self.latent], torch.nn.functional.softplus(out[:, self.latent:] - 5.0)
            logits = self.layers[3](mu + sigma * noise)
            ce = torch.nn.functional.cross_entropy(logits, y) / math.log(2)
            kl = (0.5 * (mu**2 + sigma**2 - 1) - torch.log(sigma)).sum(-1).mean() / math.log(2)
            return ce + beta * kl

        def update(self, x, y, noise):
            self.opt.zero_grad(set_to_none=True)
            self.loss(x, y, noise).backward()
            self.opt.step()
            with torch.no_grad():
                for e, p in zip(self.ema, self.parameters(), strict=True):
                    e.mul_(ema).add_(p, alpha=1 - ema)

    return TorchVIB()


def equivalence(cfg, params, data) -> dict:
    """Both losses on the first 100 training images with one noise draw, from the same parameters."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from athanor.systems.vib import vib as V

    x = V._pixels(data["x_train"][:100])
    y = data["y_train"][:100]
    noise = np.random.default_rng(0).standard_normal((100, cfg.latent_dim)).astype(np.float32)
    mu, sigma = V.encode(params, cfg, x)
    logits = V.decode(params, cfg, mu + sigma * jnp.asarray(noise))
    ce = jnp.mean(V._class_bits(logits, y))
    j = float(ce + cfg.beta * jnp.mean(V.gaussian_kl(mu, sigma)) / math.log(2))
    model = make_torch_vib(jax.device_get(params), cfg.beta, cfg.lr, cfg.adam_b1, cfg.ema)
    t = float(model.loss(torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y)).long(),
                         torch.from_numpy(noise)).detach())
    return {"loss_jax": j, "loss_torch": t, "abs_diff": abs(j - t)}


def run(sizes: dict[str, int], repeats: int, threads: int) -> dict:
    import jax
    import numpy as np
    import torch

    from athanor.systems.vib import vib as V

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    cfg = dataclasses.replace(V.Config(), **sizes)
    data = V.load_data(cfg, 0)
    state = V.init(cfg, 0, data)
    n = cfg.inner_steps
    result: dict[str, Any] = {"sizes": {k: getattr(cfg, k) for k in ("hidden", "latent_dim", "batch_size",
                                                                     "inner_steps")},
                              "repeats": repeats, "threads": threads}
    result["equivalence"] = equivalence(cfg, state.params, data)

    x_all, y_all = np.asarray(data["x_train"]), np.asarray(data["y_train"]).astype(np.int64)
    model = make_torch_vib(jax.device_get(state.params), cfg.beta, cfg.lr, cfg.adam_b1, cfg.ema)
    rng = np.random.default_rng(0)

    def torch_block():
        for _ in range(n):
            idx = rng.integers(0, len(x_all), cfg.batch_size)
            x = torch.from_numpy(x_all[idx].astype(np.float32) / 255.0)
            model.update(x, torch.from_numpy(y_all[idx]), torch.randn(cfg.batch_size, cfg.latent_dim))

    def jax_block():
        nonlocal state
        state, info = V.step(state, data, cfg)
        jax.block_until_ready(info)

    timers = {"jax": jax_block, "torch_eager": torch_block}
    result.update(time_blocks(timers, repeats, n, digits=5))
    for name in timers:
        result[name]["epoch_s"] = round(600 * result[name]["s_per_update"], 2)
    result["jax"]["impl"] = f"athanor vib step, {n} updates per jitted call (lax.scan)"
    result["torch_eager"]["impl"] = "torch eager, nn.Linear layers, Adam, EMA by in-place lerp"
    result["speedup_jax_over_torch"] = round(result["torch_eager"]["s_per_update"] / result["jax"]["s_per_update"], 2)

    t = time.perf_counter()
    V.evaluate(state, data, cfg, 0)
    result["evaluation_first_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    V.evaluate(state, data, cfg, 1)
    result["evaluation_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    V.robustness(state, data, cfg, 0)
    result["attacks_s"] = round(time.perf_counter() - t, 2)
    result.update(run_facts(load_before, ("jax", "jaxlib", "flax", "optax", "torch")))
    return result


def main(argv: list[str] | None = None) -> dict:
    return cli(__doc__.split("\n")[0], run, QUICK, {}, argv)


if __name__ == "__main__":
    main()
