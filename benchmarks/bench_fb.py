"""Benchmark the forward-backward (FB) training update of `successor/fb` against a PyTorch implementation of the
same update, in one process.

    python benchmarks/bench_fb.py [--repeats 5] [--threads N] [--quick] [--out benchmarks/results/fb.json]

The work per update is the same in both (the default Config, mode "fb"): a batch of 1024 transitions (s, a, s') of
the 104-state four-rooms gridworld, states one-hot; a task vector z per transition (Gaussian on the sphere of radius
sqrt(d), d = 50, or with probability ``mix_ratio`` the stopped B of the batch's next states rolled by one); the
forward net F(s, z) -> (A, d) (input layer: two 128-wide Dense -> LayerNorm -> tanh branches, on s and on (s, z),
then Dense 256 -> ReLU -> Dense) and the backward net B(s') -> d (Dense 256 -> LayerNorm -> tanh -> Dense 256 -> ReLU
-> Dense, B scaled to radius sqrt(d)); the target next action argmax_a F-bar(s', a, z)^T z and the target
matrix gamma F-bar(s', a', z) B-bar(s')^T from the Polyak copies; L_FB + ortho_coef * L_ortho; the backward pass,
Adam and the Polyak update of both targets. The JAX side is the system itself (``load_data``, ``init``, ``step`` of
``athanor.systems.successor.fb``: ``inner_steps`` updates per jitted call, 50 here rather than the Config's 500 so
that a round is short); the PyTorch side (``TorchFB`` below, eager mode) starts from the same parameters and draws
its batches with numpy from the same dataset arrays. ``equivalence`` evaluates both losses on one batch (the first
256 transitions) with the same z from those parameters (online = target, as at ``init``): the evidence that the
baseline does the same maths (tests/test_bench_fb.py asserts it).

Method. Each implementation's first block (for JAX: trace and compile, plus the block's work) is timed on its
own as ``first_call_s``. Then ``repeats`` rounds each time one block of ``inner_steps`` updates of each
implementation in turn, so a change in the machine's load hits both alike; the headline ``s_per_update`` is the
fastest block, the median is kept beside it, and ``updates_per_s`` is the headline's inverse. ``evaluation_s``
times one zero-shot evaluation (``fb.evaluate``: z_r of every evaluation reward from ``z_samples`` next states,
F on every state and action, exact policy evaluation of each greedy policy), its eager JAX work included.
``--threads N`` restricts the process to N cores (before JAX starts) and sets torch's threads to N. The eager
update is many small ops, each a barrier of torch's intra-op threads, so with more than one thread its time is very
sensitive to other load on the same cores; on a shared machine, run ``--threads 1`` beside the default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

from _paired import cli, run_facts, time_blocks

FULL = {"inner_steps": 50}
QUICK = {"hidden": (32,), "dim": 8, "batch_size": 64, "inner_steps": 5, "dataset_size": 2000, "z_samples": 500,
         "dense_rewards": 2}
EQUIVALENCE_BATCH = 256



def make_torch_fb(params: Any, cfg):
    """The PyTorch FB (eager), its online and target networks copied from the JAX ``params`` ({"F", "B"}, Flax
    ``Net`` parameters); returns the model object."""
    import copy

    import numpy as np
    import torch

    def tensor(x) -> torch.Tensor:
        return torch.from_numpy(np.array(x, dtype=np.float32))

    class TorchNet(torch.nn.Module):
        """fb.Net: a LayerNorm -> tanh input layer (two side-by-side branches, state alone and state with the second
        input, when called with two inputs), then Dense -> ReLU per further width, then Dense (reshaped by the
        caller). Flax kernels are (in, out), torch weights (out, in)."""

        def __init__(self, p):
            super().__init__()
            self.branches = 2 if "LayerNorm_1" in p else 1
            self.linears = torch.nn.ModuleList()
            for i in range(len(cfg.hidden) + self.branches):
                kernel = np.asarray(p[f"Dense_{i}"]["kernel"])
                lin = torch.nn.Linear(*kernel.shape)
                with torch.no_grad():
                    lin.weight.copy_(tensor(kernel.T))
                    lin.bias.copy_(tensor(p[f"Dense_{i}"]["bias"]))
                self.linears.append(lin)
            self.norms = torch.nn.ModuleList()
            for i in range(self.branches):
                scale = np.asarray(p[f"LayerNorm_{i}"]["scale"])
                norm = torch.nn.LayerNorm(scale.shape[0], eps=1e-6)  # Flax's default epsilon (torch's is 1e-5)
                with torch.no_grad():
                    norm.weight.copy_(tensor(scale))
                    norm.bias.copy_(tensor(p[f"LayerNorm_{i}"]["bias"]))
                self.norms.append(norm)

        def forward(self, s, c=None):
            if c is None:
                h = torch.tanh(self.norms[0](self.linears[0](s)))
            else:
                h = torch.cat([torch.tanh(self.norms[0](self.linears[0](s))),
                               torch.tanh(self.norms[1](self.linears[1](torch.cat([s, c], dim=-1))))], dim=-1)
            for lin in self.linears[self.branches:-1]:
                h = torch.relu(lin(h))
            return self.linears[-1](h)

    def to_sphere(x: torch.Tensor) -> torch.Tensor:
        return math.sqrt(cfg.dim) * x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-12)

    def off_diagonal_mean(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        return (x.sum() - torch.diagonal(x).sum()) / (n * (n - 1))

    class TorchFB(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.F, self.B = TorchNet(params["F"]), TorchNet(params["B"])
            self.n_actions = self.F.linears[-1].out_features // cfg.dim
            self.F_bar = copy.deepcopy(self.F).requires_grad_(False)
            self.B_bar = copy.deepcopy(self.B).requires_grad_(False)
            self.online = [*self.F.parameters(), *self.B.parameters()]
            self.targets = [*self.F_bar.parameters(), *self.B_bar.parameters()]
            # optax.adam's defaults: b1 0.9, b2 0.999, eps 1e-8 added outside the square root (as torch does)
            self.opt = torch.optim.Adam(self.online, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)

        def forward_f(self, net, s1h, z):
            return net(s1h, z).reshape(s1h.shape[0], self.n_actions, cfg.dim)

        def backward_b(self, net, s1h):
            b = net(s1h)
            return to_sphere(b) if cfg.b_norm else b

        def sample_z(self, b_next, gauss, mix):
            """fb.sample_z from its random draws: Gaussian ``gauss`` (n, d) on the sphere, or where ``mix`` (n,) the
            stopped online B of the batch's next states rolled by one, on the same sphere."""
            from_b = to_sphere(torch.roll(b_next.detach(), 1, dims=0))
            return torch.where(mix[:, None], from_b, to_sphere(gauss))

        def loss(self, s1h, a, n1h, gauss, mix):
            b_next = self.backward_b(self.B, n1h)
            z = self.sample_z(b_next, gauss, mix)
            F_sa = self.forward_f(self.F, s1h, z)[torch.arange(s1h.shape[0]), a]  # (n, d)
            with torch.no_grad():
                F_next = self.forward_f(self.F_bar, n1h, z)  # (n, A, d)
                a_next = torch.einsum("nad,nd->na", F_next, z).argmax(dim=1)
                F_next_a = F_next[torch.arange(n1h.shape[0]), a_next]  # (n, d)
                target_m = cfg.gamma * (F_next_a @ self.backward_b(self.B_bar, n1h).T)
            m = F_sa @ b_next.T
            l_fb = 0.5 * off_diagonal_mean((m - target_m) ** 2) - torch.diagonal(m).mean()
            gram = b_next @ b_next.T
            l_ortho = off_diagonal_mean(gram**2) - 2.0 * torch.diagonal(gram).mean() + b_next.shape[1]
            return l_fb + cfg.ortho_coef * l_ortho

        def update(self, s1h, a, n1h, gauss, mix):
            self.opt.zero_grad(set_to_none=True)
            self.loss(s1h, a, n1h, gauss, mix).backward()
            self.opt.step()
            with torch.no_grad():
                for t, p in zip(self.targets, self.online, strict=True):
                    t.lerp_(p, cfg.polyak)  # target <- polyak * online + (1 - polyak) * target

    return TorchFB()


def equivalence(cfg, params, data) -> dict:
    """Both losses on the first 256 transitions (fewer if the dataset is smaller) with the same z, from the same
    parameters (online = target). The JAX loss is ``fb.fb_batch_loss`` itself under a fixed key; the torch loss gets
    that key's Gaussian draw and mixing mask (as ``fb.sample_z`` draws them) and forms z from them with its own B."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from athanor.systems.successor import fb

    n_states = data["P"].shape[1]
    n = min(EQUIVALENCE_BATCH, data["s"].shape[0])
    s1h, a, n1h, _ = fb._batch(data, jnp.arange(n), n_states)
    key = jax.random.PRNGKey(0)
    j = float(fb.fb_batch_loss(params, params, cfg, s1h, a, n1h, key)[0])
    k_gauss, k_mix = jax.random.split(key)  # fb.sample_z's draws
    gauss = np.asarray(jax.random.normal(k_gauss, (n, cfg.dim)))
    mix = np.asarray(jax.random.uniform(k_mix, (n,)) < cfg.mix_ratio)
    model = make_torch_fb(jax.device_get(params), cfg)
    t = float(model.loss(torch.tensor(np.asarray(s1h)), torch.tensor(np.asarray(a)).long(),
                         torch.tensor(np.asarray(n1h)), torch.tensor(gauss), torch.tensor(mix)).detach())
    return {"loss_jax": j, "loss_torch": t, "abs_diff": abs(j - t), "batch": n, "mixed": int(mix.sum())}


def run(sizes: dict[str, Any], repeats: int, threads: int) -> dict:
    import jax
    import numpy as np
    import torch

    from athanor.systems.successor import fb

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    cfg = dataclasses.replace(fb.Config(), **sizes)
    data = fb.load_data(cfg, 0)
    state = fb.init(cfg, 0, data)
    n_actions, n_states = data["P"].shape[:2]
    n = cfg.inner_steps
    result: dict[str, Any] = {"sizes": {k: getattr(cfg, k) for k in ("mode", "env", "hidden", "dim", "batch_size",
                                                                     "inner_steps", "dataset_size", "z_samples",
                                                                     "dense_rewards")},
                              "n_states": int(n_states), "n_actions": int(n_actions), "repeats": repeats,
                              "threads": threads}
    result["equivalence"] = equivalence(cfg, state.params, data)

    s_all, a_all, n_all = (np.asarray(data[k]).astype(np.int64) for k in ("s", "a", "s_next"))
    model = make_torch_fb(jax.device_get(state.params), cfg)
    rng = np.random.default_rng(0)

    def torch_block():
        for _ in range(n):
            idx = torch.from_numpy(rng.integers(0, len(s_all), cfg.batch_size))
            s1h = torch.nn.functional.one_hot(torch.from_numpy(s_all)[idx], n_states).float()
            n1h = torch.nn.functional.one_hot(torch.from_numpy(n_all)[idx], n_states).float()
            model.update(s1h, torch.from_numpy(a_all)[idx], n1h, torch.randn(cfg.batch_size, cfg.dim),
                         torch.rand(cfg.batch_size) < cfg.mix_ratio)

    def jax_block():
        nonlocal state
        state, info = fb.step(state, data, cfg)
        jax.block_until_ready(info)

    timers = {"jax": jax_block, "torch_eager": torch_block}
    result.update(time_blocks(timers, repeats, n, digits=8))
    for name in timers:
        result[name]["updates_per_s"] = round(1.0 / result[name]["s_per_update"], 3)
    result["jax"]["impl"] = f"athanor successor/fb step, {n} updates per jitted call (lax.scan)"
    result["torch_eager"]["impl"] = ("torch eager, nn.Linear/LayerNorm nets F and B, Polyak targets by in-place "
                                     "lerp, Adam; batches drawn with numpy, one-hot in torch")
    result["speedup_jax_over_torch"] = round(result["torch_eager"]["s_per_update"] / result["jax"]["s_per_update"], 2)

    t = time.perf_counter()
    fb.evaluate(state, data, cfg, 0)
    result["evaluation_s"] = round(time.perf_counter() - t, 3)
    result.update(run_facts(load_before, ("jax", "jaxlib", "flax", "optax", "torch")))
    return result


def main(argv: list[str] | None = None) -> dict:
    return cli(__doc__.split("\n")[0], run, QUICK, FULL, argv)


if __name__ == "__main__":
    main()
