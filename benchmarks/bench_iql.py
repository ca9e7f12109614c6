"""Benchmark the IQL agents: updates/s at batch 256 with (256, 256) MLPs against the PyTorch baseline.

    python benchmarks/bench_iql.py [--systems iql iql-ddpg ...] [--preset quick] [--calls 10] [--rounds 6]
                                   [--set KEY=VALUE ...] [--out benchmarks/results/iql.json]

Two measurements per IQL system, both written to ``--out`` (a list, one entry per system):

1. ``athanor bench`` (the shape of `athanor bench --json`): one subprocess per system; the first ``step`` call
   is the compile time, then ``calls`` timed calls of ``inner_steps`` updates, then, in the same process, the
   eager PyTorch implementation of the same update and head (``athanor.systems.offline_rl.torch_baseline``);
   ``ratio`` is JAX over PyTorch. ``projected_full_s`` is the source's 1M updates at the measured rate (the
   target: under an hour on 2 CPU cores).
2. ``paired``: JAX and PyTorch timed in alternating blocks in one process (``rounds`` blocks each: one jitted
   ``step`` call of ``inner_steps`` updates, then ``torch_block`` PyTorch updates), reporting each side's best and
   median block and the ratios of those. Alternating blocks see the same machine load, and the best block of each
   side approximates its speed on idle cores, so ``paired.ratio_best`` is the figure to quote on a shared machine.

PyTorch's default thread pool collapses under contention while JAX slows by its fair share, so a busy machine
inflates the single-shot ``ratio``; ``loadavg_before`` records the 1-minute load before each system.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from athanor.api import bench
from athanor.core.bench import format_table
from athanor.core.rundir import write_json

SYSTEMS = ("iql", "iql-awr-discrete", "iql-ddpg", "iql-ddpg-bc")


def paired(system: str, preset: str = "quick", rounds: int = 6, torch_block: int = 100,
           sets: tuple[str, ...] = ()) -> dict:
    """Alternating JAX / PyTorch blocks in this process; best and median updates/s of each side. The JAX side
    starts as a run of seed 0 does."""
    from athanor.api import resolve_config
    from athanor.systems import get_system
    from athanor.systems.offline_rl.torch_baseline import block_timer

    module = get_system(system).bind()
    cfg = resolve_config(system, preset, sets=sets)
    data = module.load_data(cfg, 0)
    state = module.init(cfg, 0, data)
    state, info = module.step(state, data, cfg)
    module.block((state, info))
    torch_run = block_timer(cfg.batch_size, cfg.hidden, cfg.head, cfg.n_tokens, layer_norm=cfg.layer_norm)
    torch_run(10)
    jax_rates, torch_rates = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        state, info = module.step(state, data, cfg)
        module.block((state, info))
        jax_rates.append(cfg.inner_steps / (time.perf_counter() - t))
        torch_rates.append(torch_block / torch_run(torch_block))
    best_j, best_t = max(jax_rates), max(torch_rates)
    med_j, med_t = statistics.median(jax_rates), statistics.median(torch_rates)
    return {"jax_best": round(best_j, 1), "torch_best": round(best_t, 1), "ratio_best": round(best_j / best_t, 3),
            "jax_median": round(med_j, 1), "torch_median": round(med_t, 1),
            "ratio_median": round(med_j / med_t, 3), "rounds": rounds, "jax_block_updates": cfg.inner_steps,
            "torch_block_updates": torch_block, "jax_blocks": [round(r, 1) for r in jax_rates],
            "torch_blocks": [round(r, 1) for r in torch_rates]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, as in `athanor run` (e.g. --set layer_norm=false)")
    ap.add_argument("--out", default="benchmarks/results/iql.json")
    args = ap.parse_args()
    results = []
    for name in args.systems:
        load = os.getloadavg()[0]
        (r,) = bench([name], preset=args.preset, calls=args.calls, sets=args.sets)
        r["loadavg_before"] = round(load, 2)
        r["paired"] = paired(name, args.preset, args.rounds, sets=tuple(args.sets))
        results.append(r)
    out = Path(args.out)
    write_json(out, results)
    print(format_table(results))
    for r in results:
        base, p = r["baseline"] or {}, r["paired"]
        print(f"{r['system']:<18} single-shot: jax {r['throughput']['per_s']:.1f}, torch {base.get('per_s', 0):.1f}, "
              f"ratio {r['ratio']} | paired best: jax {p['jax_best']}, torch {p['torch_best']}, ratio "
              f"{p['ratio_best']} (median ratio {p['ratio_median']}) | 1M updates: "
              f"{r['projected_full_s'] / 60:.1f} min")
    print(out)


if __name__ == "__main__":
    main()
