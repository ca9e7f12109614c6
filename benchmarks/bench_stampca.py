"""Benchmark the `stampca` training update (the emoji autoencoder) against PyTorch, eager and torch.compile, in
one process.

    python benchmarks/bench_stampca.py [--repeats 5] [--threads N] [--quick] [--skip-compile]
                                       [--out benchmarks/results/stampca.json]

The work per update is the same in all three: batch 8 of 32 x 32 emoji, 64 channels, hidden 128, 48 NCA steps
(``grow_min = grow_max = 48``: a fixed growth length), no sample pool (``pool_size = 0``), fire rate 0.5, MSE on
RGBA, backward through the rollout, per-parameter gradient normalisation and Adam. The JAX side is the system
itself (``load_data``, ``init``, ``step`` of ``athanor.systems.stampca.autoencoder``, ``inner_steps`` updates per
jitted call); the PyTorch side is benchmarks/torch_stampca_baseline.py, started from the same initial parameters.

Method. Each implementation's first call (trace and compile for JAX and torch.compile, plus that call's work) is
timed on its own as ``first_call_s``. Then ``repeats`` rounds run, each timing one block of ``inner_steps``
updates of every implementation in turn, so that a change in the machine's load hits all three alike; the
headline ``s_per_update`` of each is its fastest block (the least disturbed), the median is kept next to it.
``equivalence`` grows the same emoji from the same (perturbed, so that no layer is zero) parameters in both
frameworks for a few steps with every cell firing, and records the two losses and their difference: the
evidence that the baseline does the same maths (tests/test_bench_stampca.py asserts it).

``--threads N`` restricts the process to N cores (CPU affinity, which sets XLA's thread pool, set before JAX
starts) and sets torch's intra-op threads to N; the default is every core the process may use. ``run_wall_s`` is
the whole run, start to JSON, compiles included. Timings share the machine with whatever else runs; the JSON
records the load average before and after. On a busy machine torch's thread pool collapses when it has more
threads than there are free cores (measured on the 2-core machine with another job running: an eager rollout took
15-45 s with 2 threads against 1.7 s with 1), so compare there with ``--threads 1`` and leave the default for an
idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

from _cores import set_threads

FULL = {"batch_size": 8, "channels": 64, "hidden": 128, "steps": 48, "inner_steps": 2, "max_emoji": 0}
QUICK = {"batch_size": 2, "channels": 8, "hidden": 16, "steps": 4, "inner_steps": 2, "max_emoji": 8}
EQUIVALENCE_STEPS = 8  # NCA steps of the equivalence check (fire rate 1, so both rollouts are deterministic)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def jax_config(sizes: dict[str, int], fire_rate: float = 0.5):
    from athanor.systems.stampca import autoencoder as A

    return A.Config(batch_size=sizes["batch_size"], channels=sizes["channels"], hidden=sizes["hidden"],
                    grow_min=sizes["steps"], grow_max=sizes["steps"], pool_size=0,
                    inner_steps=sizes["inner_steps"], max_emoji=sizes["max_emoji"], fire_rate=fire_rate)


def perturbed(params: Any, seed: int = 1, scale: float = 0.05) -> Any:
    """``params`` plus Gaussian noise on every leaf: the zero-initialised last layer of the rule becomes non-zero,
    so a comparison exercises the whole update rule and the encoder (at the initial parameters the rollout is
    the seed alone and neither gets a gradient)."""
    import jax

    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [leaf + scale * jax.random.normal(k, leaf.shape)
                                               for k, leaf in zip(keys, leaves, strict=True)])


def loss_and_grads(cfg, params: Any, targets, steps: int, perception: str = "conv") -> tuple[dict, dict]:
    """The `stampca` loss of growing ``targets`` (n, 32, 32, 4) for ``steps`` steps with every cell firing, and
    its gradients, in JAX and in the PyTorch baseline from the same parameters: ({"loss", "grads"} per framework,
    the gradients as {name: array} in torch's layout)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch
    import torch_stampca_baseline as tb

    from athanor.systems.stampca import autoencoder as A
    from athanor.systems.stampca import nca

    def loss_fn(p):  # the loss of autoencoder._step without the pool, the draw and the variable length
        x0 = nca.centred(A.seeds(p, cfg, targets), (A.SIZE, A.SIZE))
        x = nca.grow(A._rule(cfg), p["rule"], x0, jax.random.PRNGKey(0), steps, fire_rate=1.0)
        return jnp.mean(nca.visible_mse(x, targets))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    model = tb.StampCA(cfg.channels, cfg.hidden, perception)
    tb.load_jax_params(model, params)
    t_loss = model.loss(torch.tensor(np.asarray(targets)).permute(0, 3, 1, 2), steps, 1.0)
    t_loss.backward()
    # the JAX gradients in torch's layout: load them as if they were parameters and read them back
    mirror = tb.StampCA(cfg.channels, cfg.hidden, perception)
    tb.load_jax_params(mirror, grads)
    jax_grads = {n: p.detach().numpy() for n, p in mirror.named_parameters()}
    torch_grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    return {"loss": float(loss), "grads": jax_grads}, {"loss": float(t_loss.detach()), "grads": torch_grads}


def equivalence(cfg, params: Any, images, n: int = 4, steps: int = EQUIVALENCE_STEPS) -> dict:
    """Loss and gradient agreement of the two implementations on ``n`` distinct emoji (see ``loss_and_grads``),
    for each of the baseline's perceptions (the eager and the compiled baseline use different ones)."""
    import numpy as np

    out: dict[str, Any] = {"emoji": n, "nca_steps": steps, "fire_rate": 1.0,
                           "params": "JAX init + N(0, 0.05^2) on every leaf"}
    for perception in ("conv", "slices"):
        j, t = loss_and_grads(cfg, perturbed(params), images[:n], steps, perception)
        rel = max(float(np.abs(j["grads"][k] - t["grads"][k]).max() / (np.abs(j["grads"][k]).max() + 1e-12))
                  for k in j["grads"])
        out[f"torch_{perception}"] = {"loss_jax": j["loss"], "loss_torch": t["loss"],
                                      "abs_diff": abs(j["loss"] - t["loss"]), "grad_max_rel_diff": rel}
    out["max_abs_diff"] = max(out[f"torch_{p}"]["abs_diff"] for p in ("conv", "slices"))
    return out


def _block_timer(fn, block) -> Any:
    """``run() -> seconds`` for one call of ``fn`` followed by ``block`` on its result."""
    def run() -> float:
        t = time.perf_counter()
        block(fn())
        return time.perf_counter() - t
    return run


def _summary(times: list[float], updates: int, first: float) -> dict:
    per = sorted(t / updates for t in times)
    return {"s_per_update": round(per[0], 4), "s_per_update_median": round(per[len(per) // 2], 4),
            "updates_per_s": round(1.0 / per[0], 3), "blocks_s_per_update": [round(t / updates, 4) for t in times],
            "first_call_s": round(first, 2)}


def run(sizes: dict[str, int], repeats: int, threads: int, compile_torch: bool = True) -> dict:
    import jax
    import numpy as np
    import torch
    import torch_stampca_baseline as tb

    from athanor.core.rundir import git_sha, package_versions
    from athanor.systems.stampca import autoencoder as A

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    cfg = jax_config(sizes)
    data = A.load_data(cfg, 0)
    state = A.init(cfg, 0, data)
    n = cfg.inner_steps
    result: dict[str, Any] = {"sizes": {**sizes, "fire_rate": cfg.fire_rate, "pool_size": 0, "world": A.SIZE},
                              "repeats": repeats, "threads": threads}
    print("equivalence (fixed parameters, every cell firing) ...", file=sys.stderr, flush=True)
    result["equivalence"] = equivalence(cfg, state.params, data["images"][data["train"]])

    def jax_block():
        nonlocal state
        state, info = A.step(state, data, cfg)
        return state, info

    images = np.asarray(data["images"])
    trainers = {"torch_eager": tb.Trainer(images, len(data["train"]), batch_size=cfg.batch_size,
                                          channels=cfg.channels, hidden=cfg.hidden, steps=sizes["steps"],
                                          fire_rate=cfg.fire_rate, jax_params=state.params)}
    if compile_torch:
        trainers["torch_compiled"] = tb.Trainer(images, len(data["train"]), batch_size=cfg.batch_size,
                                                channels=cfg.channels, hidden=cfg.hidden, steps=sizes["steps"],
                                                fire_rate=cfg.fire_rate, jax_params=state.params, compiled=True)
    timers = {"jax": _block_timer(jax_block, jax.block_until_ready)}
    for name, tr in trainers.items():
        timers[name] = _block_timer(lambda tr=tr: [tr.update() for _ in range(n)], lambda _: None)

    first, failed, rss = {}, {}, {}
    for name, timer in timers.items():  # first calls: compiles (and, for torch, n updates' work)
        print(f"first call: {name} ...", file=sys.stderr, flush=True)
        try:
            first[name] = timer()
        except Exception as e:  # torch.compile needs a working C++ toolchain; record why it could not run
            if name != "torch_compiled":
                raise
            failed[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        rss[name] = _rss_mb()
    times: dict[str, list[float]] = {name: [] for name in first}
    for r in range(repeats):
        for name in first:
            times[name].append(timers[name]())
        print(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1] / n:.3f} s/update" for k, v in times.items()),
              file=sys.stderr, flush=True)

    for name in timers:
        if name in failed:
            result[name] = {"failed": failed[name]}
            continue
        result[name] = {**_summary(times[name], n, first[name]), "peak_rss_mb_after_first_call": rss[name]}
    result["jax"]["impl"] = f"athanor stampca step, {n} updates per jitted call (lax.scan)"
    result["torch_eager"]["impl"] = f"torch eager, NCHW, {trainers['torch_eager'].perception} perception, " \
                                    "1x1-conv MLP, Adam"
    if "torch_compiled" in trainers:
        result["torch_compiled"]["impl"] = f"torch.compile (default mode) of the NCA step and its backward, " \
                                           f"{trainers['torch_compiled'].perception} perception; encoder and Adam eager"
    jax_s = result["jax"]["s_per_update"]
    result["ratios"] = {f"jax_speedup_vs_{k[6:]}": round(result[k]["s_per_update"] / jax_s, 3)
                        for k in ("torch_eager", "torch_compiled") if "s_per_update" in result.get(k, {})}
    result["ratios"].update({f"jax_over_{k[6:]}_time": round(jax_s / result[k]["s_per_update"], 3)
                             for k in ("torch_eager", "torch_compiled") if "s_per_update" in result.get(k, {})})
    compiled = result.get("torch_compiled", {}).get("s_per_update")
    result["target_faster_than_compiled_torch"] = (jax_s < compiled) if compiled else None
    result["peak_rss_mb"] = _rss_mb()
    result["load_avg_before"] = [round(x, 2) for x in load_before]
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = {"platform": platform.platform(), "processor": platform.machine(),
                         "python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
                         "cpus_total": os.cpu_count()}
    result["versions"] = package_versions(("athanor", "jax", "jaxlib", "flax", "optax", "numpy", "torch"))
    result["git_sha"] = git_sha()
    return result


def main() -> None:
    start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (one block per implementation each)")
    ap.add_argument("--threads", type=int, default=0, help="cores for XLA and torch (default: all)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    ap.add_argument("--skip-compile", action="store_true", help="leave out torch.compile (it compiles for minutes)")
    ap.add_argument("--out", default="benchmarks/results/stampca.json")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the baseline next to this script
    result = {"system": "stampca", "quick": args.quick,
              **run(QUICK if args.quick else FULL, args.repeats, threads, not args.skip_compile)}
    result["run_wall_s"] = round(time.perf_counter() - start, 1)
    from athanor.core.rundir import write_json

    out = Path(args.out)
    write_json(out, result)
    for name in ("jax", "torch_eager", "torch_compiled"):
        r = result.get(name)
        if r and "s_per_update" in r:
            print(f"{name:15s} {r['s_per_update']:.3f} s/update (median {r['s_per_update_median']:.3f}), "
                  f"first call {r['first_call_s']:.1f} s")
        elif r:
            print(f"{name:15s} failed: {r['failed']}")
    print(f"ratios {result['ratios']}; equivalence |dloss| {result['equivalence']['max_abs_diff']:.2e}; "
          f"wall {result['run_wall_s']} s")
    print(out, file=sys.stderr)


if __name__ == "__main__":
    main()
