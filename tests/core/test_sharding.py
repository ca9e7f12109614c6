"""Data parallelism (``core.jaxtools``: data_mesh, shard_batch, replicate, sharded_map and the ``devices`` option).

JAX fixes its device count when it initialises, so the checks run in one subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` and ``JAX_PLATFORMS=cpu`` (this file run as a script); the
tests below read its JSON report. For every sharded system it runs two ``step`` calls (2 updates each) of the
``tiny`` preset with ``devices=4`` and ``devices=1`` from the same initial state and compares them (the plain GAN
is the same ``step`` as gan-mbd with the batch statistic switched off, so gan-mbd, the stricter case, stands for
both; Oceanworld's N-device run starts from the 1-device ``init`` replicated, which saves a physics compile).

Tolerances, and why. Splitting a batch changes only the order of floating-point sums (each device sums its slice,
then XLA all-reduces the partial sums), so float32 results differ by rounding, never by method:

- metrics (``info`` of each step call): ``|a - b| <= 1e-4 |b| + 1e-5``. Rounding is ~1e-7 relative per sum;
  four updates of an adversarial or bootstrapped objective amplify it by a few orders, never to 1e-4.
- parameters: at least 99.9% of all entries satisfy ``|a - b| <= 1e-4 |b| + 1e-5``, and every entry
  ``|a - b| <= 3 lr`` per update. The second bound is loose on purpose: Adam's step is ``lr m / (sqrt(v) + eps)``,
  ``eps = 1e-8``, so for the few parameters whose gradient is itself at rounding level (~1e-8, e.g. output units of
  a saturated sigmoid) a rounding difference changes the step's sign or size, by up to ~2 lr (measured: GAN with
  minibatch discrimination, a handful of generator weights after one update).
- Oceanworld evaluates every creature on one device either way, so its archive must match exactly.

A statistic over the whole batch must stay global: GAN minibatch discrimination on a sharded batch equals the
unsharded value, and is far from the statistic of each device's slice alone. ``devices = 1`` never builds a mesh,
so it is the code path of a system without the option (the existing system tests pin those results).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEVICES = 4
UPDATES = 4  # two step calls of inner_steps = 2
METRIC_RTOL, METRIC_ATOL = 1e-4, 1e-5
PARAM_RTOL, PARAM_ATOL, PARAM_SHARE = 1e-4, 1e-5, 0.999
ADAM_FLIP = 3.0  # x lr per update: the bound on parameters whose gradient is at rounding level


# ------------------------------------------------------------------------------------- the subprocess side


def _systems():
    from athanor.systems.generative import autoregressive, diffusion, flow, gan, vae
    from athanor.systems.oceanworld import qd
    from athanor.systems.offline_rl import iql
    from athanor.systems.stampca import autoencoder

    short = {"inner_steps": 2, "steps": 4}
    return {  # name -> (module, overrides, learning rates)
        "vae": (vae, short, ("lr",)),
        "gan-mbd": (gan, {**short, "minibatch": True}, ("lr", "d_lr")),
        "autoregressive": (autoregressive, short, ("lr",)),
        "diffusion": (diffusion, short, ("lr",)),
        "flow": (flow, short, ("lr",)),
        "iql": (iql, short, ("lr",)),
        "oceanworld": (qd, {"algorithm": "mapelites"}, ()),
        "stampca": (autoencoder, {**short, "batch_size": 4, "pool_size": 8}, ("lr",)),
    }


def _compare_system(name: str, module, overrides: dict, lrs: tuple) -> dict:
    import time

    import jax
    import numpy as np

    from athanor.core import config as C
    from athanor.core import jaxtools

    t0 = time.perf_counter()
    cfg1 = C.resolve(module.Config, module.PRESETS, "tiny", experiment={**overrides, "devices": 1})
    cfgn = C.resolve(module.Config, module.PRESETS, "tiny", experiment={**overrides, "devices": DEVICES})
    data = module.load_data(cfg1, 0)
    start = module.init(cfg1, 0, data)
    if module.__name__.endswith("qd"):  # init is not placement-dependent; its physics compile is the costly one
        start_n = jaxtools.replicate(start, jaxtools.mesh_for(DEVICES))
    else:
        start_n = module.init(cfgn, 0, data)
    runs = {}
    for devices, cfg, state in ((1, cfg1, start), (DEVICES, cfgn, start_n)):
        infos = []
        for _ in range(2):
            state, info = module.step(state, data, cfg)
            infos.append({k: float(v) for k, v in info.items()})
        runs[devices] = (jax.device_get(state), infos, state)
    a, b = runs[DEVICES], runs[1]
    leaves_a, leaves_b = jax.tree.leaves(a[0]), jax.tree.leaves(b[0])
    floats = [(np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in zip(leaves_a, leaves_b, strict=True)
              if np.issubdtype(np.asarray(y).dtype, np.floating)]
    exact = all(np.array_equal(x, y, equal_nan=True) for x, y in zip(leaves_a, leaves_b, strict=True))
    close = total = 0
    worst = 0.0
    for x, y in floats:
        finite = np.isfinite(y)  # empty archive cells hold -inf: equal where both are, a mismatch otherwise
        d = np.zeros(y.shape)
        d[finite] = np.abs(x[finite] - y[finite])
        d[~finite] = np.where(x[~finite] == y[~finite], 0.0, np.inf)
        close += int(np.sum(d <= PARAM_RTOL * np.abs(np.where(finite, y, 0.0)) + PARAM_ATOL))
        total += d.size
        worst = max(worst, float(d.max(initial=0.0)))
    metric_err = max((abs(ia[k] - ib[k]) - METRIC_RTOL * abs(ib[k]) for ia, ib in zip(a[1], b[1], strict=True)
                      for k in ib), default=0.0)
    same_keys = all(set(ia) == set(ib) for ia, ib in zip(a[1], b[1], strict=True))
    # the compiled N-device step: collectives mean the work really was split (gradients or outputs combined)
    compiled = module.step.lower(a[2], data, cfgn).compile().as_text()
    placed = [leaf.sharding for leaf in jax.tree.leaves(a[2])]
    return {
        "exact": exact, "param_share_close": close / max(total, 1), "param_max_diff": worst,
        "adam_bound": ADAM_FLIP * UPDATES * max((getattr(cfg1, lr) for lr in lrs), default=0.0),
        "metric_excess": metric_err, "same_metric_keys": same_keys,
        "collectives": sorted({op for op in ("all-reduce", "all-gather", "reduce-scatter", "all-to-all")
                               if op in compiled}),
        "state_devices": sorted({len(s.device_set) for s in placed}),
        "state_replicated": all(s.is_fully_replicated for s in placed),
        "seconds": time.perf_counter() - t0,
    }


def _placement() -> dict:
    import jax
    import jax.numpy as jnp

    from athanor.core import jaxtools
    from athanor.systems.generative import common, gan

    mesh = jaxtools.data_mesh(DEVICES)
    batch = common.draw_batch(jax.random.PRNGKey(0), common.load_data(None, 0), 32)
    placed = jaxtools.shard_batch({"x": batch}, mesh)["x"]
    inside = jax.jit(lambda x: jaxtools.shard_batch(x * 2.0, mesh))(batch)
    rep = jaxtools.replicate(jnp.ones(3), mesh)
    # minibatch discrimination on a sharded batch: global, not per slice
    h = jax.random.normal(jax.random.PRNGKey(1), (64, 64))
    T = 0.1 * jax.random.normal(jax.random.PRNGKey(2), (64, 8, 4))
    feats = jax.jit(gan.minibatch_features)
    whole = feats(h, T)
    split = feats(jaxtools.shard_batch(h, mesh), jaxtools.replicate(T, mesh))
    slices = jnp.concatenate([gan.minibatch_features(s, T) for s in jnp.split(h, DEVICES)])
    # sharded_map: each device runs the function on its own slice (here: subtract the slice's own mean)
    centred = jaxtools.sharded_map(lambda x: x - jnp.mean(x), mesh)(jnp.arange(8.0))
    return {
        "batch_devices": len(placed.sharding.device_set),
        "batch_shard_shapes": sorted({tuple(s.data.shape) for s in placed.addressable_shards}),
        "batch_spec": str(placed.sharding.spec), "jit_devices": len(inside.sharding.device_set),
        "jit_shard_rows": sorted({s.data.shape[0] for s in inside.addressable_shards}),
        "replicated": rep.sharding.is_fully_replicated and len(rep.sharding.device_set) == DEVICES,
        "mbd_sharded_vs_whole": float(jnp.max(jnp.abs(split - whole))),
        "mbd_slices_vs_whole": float(jnp.max(jnp.abs(slices - whole))),
        "sharded_map": [float(v) for v in centred],
    }


def _errors() -> dict:
    import jax.numpy as jnp

    from athanor.core import config as C
    from athanor.core import jaxtools
    from athanor.core.errors import ConfigError
    from athanor.systems.generative import vae
    from athanor.systems.oceanworld import qd

    def message(fn) -> str:
        try:
            fn()
        except ConfigError as e:
            return str(e)
        return ""

    def init(module, **sets):
        cfg = C.resolve(module.Config, module.PRESETS, "tiny", experiment=sets)
        return module.init(cfg, 0, module.load_data(cfg, 0))

    return {
        "batch": message(lambda: init(vae, devices=4, batch_size=30)),
        "population": message(lambda: init(qd, devices=4, batch=10)),
        "too_many": message(lambda: jaxtools.data_mesh(8)),
        "leading": message(lambda: jaxtools.shard_batch(jnp.ones((6, 2)), jaxtools.data_mesh(4))),
    }


def _worker() -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import jax

    out: dict = {"devices": len(jax.devices()), "backend": jax.default_backend()}
    # two threads: most of the time is XLA compiling, which runs outside the GIL, so two cores both work
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(_compare_system, name, *spec) for name, spec in _systems().items()}
        out["placement"] = _placement()
        out["errors"] = _errors()
        out["systems"] = {name: f.result() for name, f in futures.items()}
    return out


# ----------------------------------------------------------------------------------------- the pytest side


@pytest.fixture(scope="module")
def report() -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES}", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


SYSTEMS = ("vae", "gan-mbd", "autoregressive", "diffusion", "flow", "iql", "oceanworld", "stampca")


def test_the_subprocess_sees_four_cpu_devices(report):
    assert report["devices"] == DEVICES and report["backend"] == "cpu"


@pytest.mark.parametrize("name", SYSTEMS)
def test_sharded_steps_match_one_device(report, name):
    got = report["systems"][name]
    assert got["same_metric_keys"]
    assert got["metric_excess"] <= METRIC_ATOL, got
    assert got["param_share_close"] >= PARAM_SHARE, got
    if name == "oceanworld":
        assert got["exact"], got  # each creature is simulated whole on one device: nothing is summed differently
    else:
        assert got["param_max_diff"] <= got["adam_bound"], got
    # the N-device program combines results across devices, and the state stays replicated on all of them
    assert got["collectives"], got
    assert got["state_devices"] == [DEVICES] and got["state_replicated"], got


def test_the_batch_is_split_over_the_devices(report):
    p = report["placement"]
    assert p["batch_devices"] == DEVICES and p["batch_spec"] == "P('data',)"
    assert p["batch_shard_shapes"] == [[32 // DEVICES, 28, 28, 3]]
    assert p["jit_devices"] == DEVICES and p["jit_shard_rows"] == [32 // DEVICES]
    assert p["replicated"]


def test_minibatch_discrimination_stays_global_when_sharded(report):
    p = report["placement"]
    assert p["mbd_sharded_vs_whole"] < 1e-4  # rounding only
    assert p["mbd_slices_vs_whole"] > 1.0  # what a per-device statistic would have given instead


def test_sharded_map_runs_each_slice_separately(report):
    assert report["placement"]["sharded_map"] == [-0.5, 0.5] * DEVICES


def test_clear_errors(report):
    e = report["errors"]
    assert "'batch_size' = 30 is not divisible by devices = 4" in e["batch"] and "--set batch_size=32" in e["batch"]
    assert "'batch' = 10 is not divisible by devices = 4" in e["population"]
    assert "devices' = 8" in e["too_many"] and "--xla_force_host_platform_device_count=8" in e["too_many"]
    assert "multiple of 4" in e["leading"]


def test_one_device_builds_no_mesh():
    from athanor.core import jaxtools

    assert jaxtools.mesh_for(1, batch_size=7) is None
    tree = {"x": object()}
    assert jaxtools.shard_batch(tree, None) is tree and jaxtools.replicate(tree, None) is tree


if __name__ == "__main__":
    print(json.dumps(_worker()))
