"""Benchmark CLIPDraw on the CPU: seconds per optimisation step and the default drawing's wall time.

    python benchmarks/bench_clipdraw.py [--steps 1000] [--threads N] [--quick] [--out benchmarks/results/clipdraw.json]

1. ``default_drawing``: the `clipdraw` system's default run (256 strokes, 4 augmentations, the shipped offline
   scorer, 128 x 128 canvas, 1000 steps), stepped through the system's own ``step`` 10 optimisation steps at a
   time; the wall time of the whole drawing and seconds per step in its first and last tenth (strokes grow as they
   are optimised, and a longer or wider stroke costs more pixels).
2. ``per_step``: seconds per optimisation step (render, 4 augmentations, the scorer's forward and backward, Adam,
   clamps) on the strokes the default drawing ended with, scaled to the canvas, for: the offline scorer at 128 and
   at 224 pixels; CLIP ViT-B/32 at 224 (its real shape, random weights: the cost does not depend on what the
   weights learned). The fastest of ``repeats`` blocks of 5 steps, the median beside it.
3. ``renderer``: the render's forward and backward alone on those strokes at 224, with each polyline segment on
   its own patch (the default) against every segment on the whole canvas (``patch=224``: the dense reference,
   the pixels a renderer without locality touches), on the first 32 strokes (the dense one is slow).

``--threads N`` sets torch's intra-op threads (default: torch's own, the cores it may use). Timings share the
machine with whatever else runs; the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def _timed_blocks(fn, repeats: int, block: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(block):
            fn()
        times.append((time.perf_counter() - t) / block)
    return {"s_per_step": round(min(times), 4), "median": round(statistics.median(times), 4)}


def default_drawing(steps: int) -> tuple[dict, object]:
    from athanor.systems.clipdraw import system as M

    cfg = dataclasses.replace(M.Config(), steps=steps, eval_every=steps, ckpt_every=steps)
    data = M.load_data(cfg, 0)
    state = M.init(cfg, 0, data)
    per_call, t0 = [], time.perf_counter()
    for _ in range(cfg.steps // cfg.inner_steps):
        t = time.perf_counter()
        state, _ = M.step(state, data, cfg)
        per_call.append((time.perf_counter() - t) / cfg.inner_steps)
    wall = time.perf_counter() - t0
    tenth = max(len(per_call) // 10, 1)
    final = M.evaluate(state, data, cfg, 0)
    return {"steps": steps, "strokes": cfg.strokes, "size": cfg.size, "augmentations": cfg.augmentations,
            "wall_s": round(wall, 1), "s_per_step_first_tenth": round(statistics.mean(per_call[:tenth]), 4),
            "s_per_step_last_tenth": round(statistics.mean(per_call[-tenth:]), 4),
            "final": {k: round(v, 4) for k, v in final.items()}}, state


def per_step(strokes, repeats: int) -> dict:
    import torch

    from athanor.systems.clipdraw import draw
    from athanor.systems.clipdraw.augment import augment
    from athanor.systems.clipdraw.clip import Clip, random_weights
    from athanor.systems.clipdraw.render import render
    from athanor.systems.clipdraw.scorer import load_scorer

    def at(size):
        s = draw.Strokes(*(t.detach().clone() for t in (strokes.points * size / 128, strokes.widths * size / 128,
                                                         strokes.colours)))
        for t in s.params():
            t.requires_grad_()
        return s

    def stepper(scorer, size):
        s = at(size)
        opt, _ = draw.make_optimiser(s, 1000)
        text = torch.nn.functional.normalize(torch.randn(1, scorer.encode_image(torch.ones(1, 3, size, size))
                                                         .shape[-1]), dim=-1)
        gen = torch.Generator().manual_seed(0)

        def one():
            img = render(s.points, s.widths, s.colours, size)
            loss = draw.prompt_loss(scorer, augment(img, 4, gen), text)
            opt.zero_grad()
            loss.backward()
            opt.step()
            draw.clamp_(s)
        return one

    offline = load_scorer("scorer")
    clip = Clip(random_weights(layers=12), None, "quickgelu")
    return {"offline_128": _timed_blocks(stepper(offline, 128), repeats, 5),
            "offline_224": _timed_blocks(stepper(offline, 224), repeats, 5),
            "clip_vit_b32_224": _timed_blocks(stepper(clip, 224), repeats, 5)}


def renderer(strokes, repeats: int) -> dict:
    from athanor.systems.clipdraw.render import render

    n = 32
    pts, ws, cs = (t.detach()[:n].clone() for t in (strokes.points * 224 / 128, strokes.widths * 224 / 128,
                                                  strokes.colours))
    for t in (pts, ws, cs):
        t.requires_grad_()

    def run(patch):
        def one():
            render(pts, ws, cs, 224, patch=patch).sum().backward()
        return one

    local = _timed_blocks(run(None), repeats, 2)
    dense = _timed_blocks(run(224), max(repeats // 2, 1), 1)
    return {"strokes": n, "size": 224, "segment_patches": local, "dense": dense,
            "dense_over_local": round(dense["s_per_step"] / local["s_per_step"], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="40 drawing steps and 2 repeats (a smoke test)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/clipdraw.json"))
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.repeats = 40, 2
    from athanor.core.rundir import package_versions, write_json

    out = {"command": " ".join(["python", "benchmarks/bench_clipdraw.py", *sys.argv[1:]]),
           "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "load_before": os.getloadavg(),
           "versions": package_versions(["athanor", "torch", "numpy"])}
    t0 = time.perf_counter()
    out["default_drawing"], state = default_drawing(args.steps)
    print(json.dumps(out["default_drawing"]), flush=True)
    out["per_step"] = per_step(state.strokes, args.repeats)
    print(json.dumps(out["per_step"]), flush=True)
    out["renderer"] = renderer(state.strokes, args.repeats)
    print(json.dumps(out["renderer"]), flush=True)
    out["run_wall_s"] = round(time.perf_counter() - t0, 1)
    out["load_after"] = os.getloadavg()
    write_json(args.out, out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
