"""Data-parallel training steps: updates/s of one sharded ``step`` on 1 vs N devices (the ``devices`` option).

    python benchmarks/bench_sharding.py [--devices 1,2,4] [--systems vae,diffusion,iql] [--calls 5]
                                        [--inner 50] [--out benchmarks/results/sharding.json]

Each (system, N) is measured in its own process, because JAX fixes its device count when it starts: on CPU the
child is started with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (N host devices that share the same
cores), on a GPU machine N is capped at the number of GPUs (powers of two up to it) and the flag is inert. The
script needs no change between the two: the first child probes the backend and the device kind, and the JSON says
what was measured on. Systems run their ``quick`` preset (the real batch sizes and networks) with
``inner_steps = --inner`` updates per ``step`` call; IQL's dataset is cut to 50 episodes (a step draws batches by
index, so the size of the dataset does not change its cost). ``updates_per_s`` = calls x inner / time of
``calls`` calls after the first (which compiles, ``compile_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

SYSTEMS = {  # name -> (module, overrides of the quick preset)
    "vae": ("athanor.systems.generative.vae", {}),
    "gan-mbd": ("athanor.systems.generative.gan", {"minibatch": True}),
    "diffusion": ("athanor.systems.generative.diffusion", {}),
    "iql": ("athanor.systems.offline_rl.iql", {"data_episodes": 50}),
}


def probe() -> dict:
    import jax

    devices = jax.devices()
    return {"backend": jax.default_backend(), "device_count": len(devices),
            "device_kind": devices[0].device_kind, "devices": [str(d) for d in devices]}


def child(system: str, devices: int, calls: int, inner: int) -> dict:
    import importlib

    import jax

    from athanor.core import config as C

    module_name, overrides = SYSTEMS[system]
    module = importlib.import_module(module_name)
    cfg = C.resolve(module.Config, module.PRESETS, "quick",
                    experiment={**overrides, "inner_steps": inner, "devices": devices})
    data = module.load_data(cfg, 0)
    state = module.init(cfg, 0, data)
    t = time.perf_counter()
    state, info = module.step(state, data, cfg)
    jax.block_until_ready((state, info))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(calls):
        state, info = module.step(state, data, cfg)
    jax.block_until_ready((state, info))
    elapsed = time.perf_counter() - t
    batch = cfg.batch_size
    return {"system": system, "devices": devices, "batch_size": batch, "per_device_batch": batch // devices,
            "inner_steps": inner, "calls": calls, "compile_s": round(compile_s, 2),
            "updates_per_s": round(calls * inner / elapsed, 2), "loss": float(info["loss"]),
            "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
            "mesh_devices": [str(d) for d in jax.devices()[:devices]]}


def _run(args: list[str], devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="1,2,4", help="device counts on CPU (on GPU: powers of two up to the GPUs)")
    ap.add_argument("--systems", default="vae,gan-mbd,diffusion,iql")
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--out", default="benchmarks/results/sharding.json")
    ap.add_argument("--child", nargs=2, metavar=("SYSTEM", "DEVICES"), help=argparse.SUPPRESS)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        print(json.dumps(probe()))
        return
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.calls, args.inner)))
        return

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    machine = _run(["--probe"], 1)
    if machine["backend"] == "cpu":
        counts = [int(n) for n in args.devices.split(",")]
    else:  # accelerators: every power of two up to the devices present
        counts = [n for n in (1, 2, 4, 8, 16) if n <= machine["device_count"]]
    results = []
    for system in args.systems.split(","):
        for n in counts:
            r = _run(["--child", system, str(n), "--calls", str(args.calls), "--inner", str(args.inner)], n)
            results.append(r)
            base = next(x["updates_per_s"] for x in results if x["system"] == system and x["devices"] == 1)
            print(f"{system:10s} devices={n:2d} ({r['backend']}, {r['device_kind']}): batch {r['batch_size']} "
                  f"({r['per_device_batch']} per device)  {r['updates_per_s']:8.1f} updates/s  "
                  f"x{r['updates_per_s'] / base:.2f} vs 1  compile {r['compile_s']:.1f} s", flush=True)
    from athanor.core.rundir import git_sha, write_json

    report = {
        "git_sha": git_sha(), "backend": machine["backend"], "device_kind": machine["device_kind"],
        "device_count_without_flags": machine["device_count"], "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "calls": args.calls, "inner_steps": args.inner,
        "load_average_1min": {"start": load_start,
                              "end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "note": ("CPU host devices (--xla_force_host_platform_device_count) share the same cores: no speed-up is "
                 "expected; on CPU this measures the cost of splitting a step, the point is correctness"
                 if machine["backend"] == "cpu" else "one process per device count, all devices of one machine"),
        "results": results,
    }
    out = Path(args.out)
    write_json(out, report)
    print(out)


if __name__ == "__main__":
    main()
