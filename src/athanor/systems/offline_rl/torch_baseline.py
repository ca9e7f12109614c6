"""A straightforward PyTorch implementation of the IQL update, the baseline of `athanor bench iql`.

It performs the same update as :mod:`athanor.systems.offline_rl.iql` at the same shapes: a batch of 256
transitions drawn uniformly from an in-memory dataset, (256, 256) ReLU MLPs, a twin Q critic with a Polyak
target, a state-value network V fitted to the expectile of min(Q1, Q2)(target), Q fitted to
r + gamma * mask * V(s'), and the selected policy-extraction head (AWR Gaussian by default). It is written the
way such code usually is in PyTorch (CORL-style): one Adam optimiser per network and one backward pass per
loss, in eager mode. ``torch.compile`` can be timed as an extra field but is never the headline number.

Caveat (measured on the 2-core machines this project targets): PyTorch's default intra-op thread pool uses
every core, and when another job shares the cores its throughput collapses (8x and more), whereas JAX slows by
its fair share. The baseline is measured with torch's default threads, as a user would run it; on a shared
machine its number is therefore pessimistic and ``ratio`` optimistic. To blunt that, the timed updates are split
into blocks and the fastest block's rate is reported. ``threads`` records the pool size.

The observations, actions and rewards are synthetic (uniform states and actions in the 2-D maze's ranges,
sparse rewards): throughput does not depend on their values.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from athanor.core.errors import AthanorError

HEADS = ("awr", "awr_discrete", "ddpg", "ddpg_bc")


def _torch():
    try:
        import torch
    except ImportError:
        raise AthanorError("the PyTorch baseline of `athanor bench iql` needs torch; install it with "
                           "pip install -e '.[bench]'") from None
    return torch


def _mlp(torch, inp: int, hidden: int, out: int, layer_norm: bool = False):
    nn = torch.nn
    norm = (lambda: nn.LayerNorm(hidden, elementwise_affine=False)) if layer_norm else nn.Identity
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), norm(), nn.Linear(hidden, hidden), nn.ReLU(), norm(),
                         nn.Linear(hidden, out))


def _build(torch, head: str, hidden: int, obs_dim: int, act_dim: int, n_tokens: int,
           layer_norm: bool) -> dict[str, Any]:
    q1, q2 = (_mlp(torch, obs_dim + act_dim, hidden, 1, layer_norm) for _ in range(2))
    critic = torch.nn.ModuleList([q1, q2])
    value = _mlp(torch, obs_dim, hidden, 1, layer_norm)
    actor = _mlp(torch, obs_dim, hidden, n_tokens if head == "awr_discrete" else act_dim)
    log_std = torch.nn.Parameter(torch.zeros(act_dim))
    actor_params = list(actor.parameters()) + ([log_std] if head == "awr" else [])
    return {
        "critic": critic, "target": copy.deepcopy(critic).requires_grad_(False), "value": value,
        "actor": actor, "log_std": log_std,
        "opt_critic": torch.optim.Adam(critic.parameters(), lr=3e-4),
        "opt_value": torch.optim.Adam(value.parameters(), lr=3e-4),
        "opt_actor": torch.optim.Adam(actor_params, lr=3e-4),
    }


def _twin(critic, s, a):
    import torch

    x = torch.cat([s, a], dim=-1)
    return critic[0](x).squeeze(-1), critic[1](x).squeeze(-1)


def make_update(head: str = "awr", *, expectile: float = 0.9, beta: float = 10.0, discount: float = 0.99,
                tau: float = 0.005, adv_clip: float = 100.0, bc_alpha: float = 0.003, hidden: int = 256,
                n_tokens: int = 256, obs_dim: int = 2, act_dim: int = 2, layer_norm: bool = True):
    """Build the networks and return ``update(batch) -> None`` (one IQL gradient step) and the nets.

    ``layer_norm`` puts a LayerNorm without scale and shift after each hidden ReLU of V and Q, as the JAX agent's
    default does."""
    torch = _torch()
    if head not in HEADS:
        raise AthanorError(f"unknown head '{head}' for the torch baseline; choose one of {', '.join(HEADS)}")
    m = _build(torch, head, hidden, obs_dim, act_dim, n_tokens, layer_norm)
    centres = torch.rand(n_tokens, act_dim) * 2 - 1

    def update(s, a, r, mask, s2):
        with torch.no_grad():
            q1t, q2t = _twin(m["target"], s, a)
            q_t = torch.minimum(q1t, q2t)
        v = m["value"](s).squeeze(-1)
        diff = q_t - v
        weight = torch.abs(expectile - (diff < 0).float())
        v_loss = (weight * diff.pow(2)).mean()
        m["opt_value"].zero_grad(set_to_none=True)
        v_loss.backward()
        m["opt_value"].step()

        with torch.no_grad():
            adv = q_t - m["value"](s).squeeze(-1)
            y = r + discount * mask * m["value"](s2).squeeze(-1)
        out = m["actor"](s)
        if head == "awr":
            w = torch.clamp(torch.exp(beta * adv), max=adv_clip)
            std = torch.exp(m["log_std"].clamp(-5.0, 2.0))
            logp = torch.distributions.Normal(torch.tanh(out), std).log_prob(a).sum(-1)
            actor_loss = -(w * logp).mean()
        elif head == "awr_discrete":
            w = torch.clamp(torch.exp(beta * adv), max=adv_clip)
            tokens = torch.cdist(a, centres).argmin(-1)
            logp = torch.log_softmax(out, -1).gather(-1, tokens[:, None]).squeeze(-1)
            actor_loss = -(w * logp).mean()
        else:
            pi = torch.tanh(out)
            q1p, q2p = _twin(m["target"], s, pi)
            q_pi = torch.minimum(q1p, q2p)
            bc = (pi - a).pow(2).sum(-1).mean()
            if head == "ddpg":
                actor_loss = -q_pi.mean()
            else:
                actor_loss = -q_pi.mean() / q_pi.abs().mean().detach() + bc_alpha * bc
        m["opt_actor"].zero_grad(set_to_none=True)
        actor_loss.backward()
        m["opt_actor"].step()

        q1, q2 = _twin(m["critic"], s, a)
        q_loss = ((q1 - y).pow(2) + (q2 - y).pow(2)).mean()
        m["opt_critic"].zero_grad(set_to_none=True)
        q_loss.backward()
        m["opt_critic"].step()

        with torch.no_grad():
            for p_t, p in zip(m["target"].parameters(), m["critic"].parameters(), strict=True):
                p_t.mul_(1.0 - tau).add_(p, alpha=tau)

    return update, m


def _dataset(torch, n: int, obs_dim: int, act_dim: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, obs_dim, generator=g) * 10.0
    next_obs = obs + 0.1 * (torch.rand(n, obs_dim, generator=g) - 0.5)
    actions = torch.rand(n, act_dim, generator=g) * 2 - 1
    rewards = (torch.rand(n, generator=g) < 0.01).float()
    return obs, actions, rewards - 1.0, 1.0 - rewards, next_obs


def block_timer(batch: int = 256, hidden: int = 256, head: str = "awr", n_tokens: int = 256, *,
                compiled: bool = False, dataset_size: int = 100_000, seed: int = 0, layer_norm: bool = True):
    """``run(n) -> seconds`` for n eager (or ``torch.compile``d) updates on batches drawn from a synthetic dataset.

    The first call of a compiled update compiles it; time a warm-up block before the measured ones.
    """
    torch = _torch()
    torch.manual_seed(seed)
    obs, actions, rewards, masks, next_obs = _dataset(torch, dataset_size, 2, 2, seed)
    g = torch.Generator().manual_seed(seed + 1)
    update, _ = make_update(head, hidden=hidden, n_tokens=n_tokens, layer_norm=layer_norm)
    fn = torch.compile(update) if compiled else update

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(0, dataset_size, (batch,), generator=g)
            fn(obs[idx], actions[idx], rewards[idx], masks[idx], next_obs[idx])
        return time.perf_counter() - t

    return run


def measure(batch: int = 256, hidden: int = 256, updates: int = 300, warmup: int = 30, head: str = "awr",
            n_tokens: int = 256, compile: bool = False, dataset_size: int = 100_000, seed: int = 0,
            blocks: int = 3, layer_norm: bool = True) -> dict:
    """Steady-state IQL updates/s of the eager PyTorch implementation (and, with ``compile``, torch.compile).

    The ``updates`` are timed in ``blocks`` equal blocks and ``per_s`` is the fastest block's rate: a block
    that shared the cores with another job (where torch's thread pool stalls) does not set the figure.
    Returns ``{"unit": "updates", "per_s", "block_per_s", "impl", "head", "batch", "hidden", "threads",
    "torch", ...}``; ``per_s`` is always the eager figure.
    """
    torch = _torch()
    run = block_timer(batch, hidden, head, n_tokens, dataset_size=dataset_size, seed=seed, layer_norm=layer_norm)
    run(warmup)
    size = max(1, updates // blocks)
    rates = [size / run(size) for _ in range(blocks)]
    out = {"unit": "updates", "per_s": round(max(rates), 2), "block_per_s": [round(r, 2) for r in rates],
           "impl": "torch eager (Adam per network, one backward per loss)", "head": head, "batch": batch,
           "hidden": hidden, "layer_norm": layer_norm, "updates_timed": size * blocks,
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "note": "default torch threads; under CPU contention torch eager collapses, so on a shared machine "
                   "this baseline is pessimistic"}
    if compile:
        run_c = block_timer(batch, hidden, head, n_tokens, compiled=True, dataset_size=dataset_size, seed=seed,
                            layer_norm=layer_norm)
        out["compile_s"] = round(run_c(1), 2)
        run_c(warmup)
        out["compiled_per_s"] = round(max(size / run_c(size) for _ in range(blocks)), 2)
    return out
