"""CLIPDraw offline: drawings for a set of prompts with the shipped scorer, judged by a second model that was never
optimised against; with and without augmentations; stroke counts; a negative prompt; target-image fits.

Runs per seed (``clipdraw`` system; ``systems/clipdraw/system.py``):
- ``draw-<p>`` for each prompt p of PROMPTS: the source's loop (4 augmentations per step).
- ``noaug-<p>``: the same prompt, seed and strokes optimised on the plain drawing (0 augmentations).
- ``strokes<k>-<p0>``: the first prompt with 16 and 64 strokes (``full``; 256 is ``draw-<p0>``; ``quick``: 16, its
  drawings having 64).
- ``negative``: NEGATIVE_PROMPT with NEGATIVE_AVOID as a negative prompt (weight 0.3, the source's).
- ``fit<k>-<t>``: each target emoji of TARGETS fitted by pixel error with 16, 64 and 256 strokes.

Claims (thresholds fixed here before any full run; judged over seeds by the rule in ``core/claims.py``):
- ``judge_recognises``: the judge ranks a drawing's own prompt first among the 12 candidates (chance 1/12) for at
  least 3 times chance, 0.25, of the prompts, as a mean over prompts per seed: "far above chance".
- ``augmentations_transfer``: the judge's margin (own prompt's cosine minus the best other candidate's) is larger
  for drawings made with augmentations than without, mean over prompts per seed; the source reports that without
  augmentations the drawings fool the model they were made against and look like nothing.
- ``more_strokes_fit_better``: the pixel error of the target fits falls from 16 to 64 and from 64 to 256 strokes
  (mean over targets per seed).
"""

from __future__ import annotations

import numpy as np

from athanor.core.artifacts import Heatmap
from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, paired, run_figures

SUMMARY = "CLIPDraw offline: prompts drawn against the shipped scorer, judged by an independent one; augmentations"
SOURCE = "CLIPDraw: Exploring Text-to-Drawing Synthesis through Language-Image Encoders"

PROMPTS = {"tiny": ("red apple", "rocket"), "quick": ("red apple", "rocket", "sun with face", "fish"),
           "full": ("red apple", "rocket", "sun with face", "fish", "house", "ghost")}
TARGETS = {"tiny": ("apple",), "quick": ("apple", "rocket"), "full": ("apple", "rocket")}
STROKES = (16, 64, 256)  # the target fits
SERIES = {"tiny": (), "quick": (16,), "full": (16, 64)}  # fewer strokes for the first prompt (draw-*: 256; quick: 64)
NEGATIVE_PROMPT, NEGATIVE_AVOID = "sun with face", "yellow"
SCALE = {
    "tiny": {},
    "quick": {"steps": 250, "eval_every": 250, "ckpt_every": 250},
    "full": {"steps": 1000, "eval_every": 500, "ckpt_every": 250},
}
FIT = {"tiny": {}, "quick": {"steps": 250, "eval_every": 250, "ckpt_every": 250},
       "full": {"steps": 500, "eval_every": 500, "ckpt_every": 250}}
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "drawings"

CANDIDATE_COUNT = 12  # the system's default candidates (systems/clipdraw/system.py CANDIDATES)
TOP1_MIN = 3 / CANDIDATE_COUNT


def _slug(text: str) -> str:
    return "-".join(text.split())


def runs(scale: str) -> list[RunSpec]:
    base = SCALE[scale]
    prompts = PROMPTS[scale]
    out = [RunSpec("clipdraw", f"draw-{_slug(p)}", {"prompt": p, **base}) for p in prompts]
    out += [RunSpec("clipdraw", f"noaug-{_slug(p)}", {"prompt": p, "augmentations": 0, **base}) for p in prompts]
    out += [RunSpec("clipdraw", f"strokes{k}-{_slug(prompts[0])}", {"prompt": prompts[0], "strokes": k, **base})
            for k in SERIES[scale]]
    if scale != "tiny":
        out.append(RunSpec("clipdraw", "negative", {"prompt": NEGATIVE_PROMPT, "negatives": NEGATIVE_AVOID, **base}))
    strokes = STROKES if scale != "tiny" else (4, 16)
    out += [RunSpec("clipdraw", f"fit{k}-{t}", {"target": t, "strokes": k, **FIT[scale]})
            for t in TARGETS[scale] for k in strokes]
    return out


def _mean_over(labels, key):
    return lambda f: float(np.mean([f[label][key] for label in labels]))


def analyse(records, scale: str) -> Analysis:
    prompts = PROMPTS[scale]
    drawn = [f"draw-{_slug(p)}" for p in prompts]
    plain = [f"noaug-{_slug(p)}" for p in prompts]
    strokes = STROKES if scale != "tiny" else (4, 16)
    fits = {k: [f"fit{k}-{t}" for t in TARGETS[scale]] for k in strokes}

    def fit_drop(k_lo, k_hi):
        return lambda f: _mean_over(fits[k_lo], "mse")(f) - _mean_over(fits[k_hi], "mse")(f)

    claims = [
        claim("judge_recognises",
              f"An independent judge names a drawing's prompt first among {CANDIDATE_COUNT} far above chance.",
              [Check("judge top-1 rate over prompts", paired(records, _mean_over(drawn, "judge_top1")), ">=",
                     TOP1_MIN)], scale),
        claim("augmentations_transfer",
              "Drawings optimised through augmentations transfer to the judge better than those optimised without.",
              [Check("judge margin, with minus without augmentations",
                     paired(records, lambda f: _mean_over(drawn, "judge_margin")(f)
                            - _mean_over(plain, "judge_margin")(f)), ">", 0.0)], scale),
        claim("more_strokes_fit_better", "More strokes fit a target image with lower pixel error.",
              [Check(f"mse({a} strokes) - mse({b} strokes)", paired(records, fit_drop(a, b)), ">", 0.0)
               for a, b in zip(strokes, strokes[1:], strict=False)], scale),
    ]
    artifacts = run_figures(records, {
        **{f"drawing-{_slug(p)}": (f"draw-{_slug(p)}", "drawing") for p in prompts},
        **{f"noaug-{_slug(p)}": (f"noaug-{_slug(p)}", "drawing") for p in prompts},
        "optimisation": (drawn[0], "optimisation"),
        **{f"fit{k}-{t}": (f"fit{k}-{t}", "drawing") for t in TARGETS[scale] for k in strokes},
        **{f"target-{t}": (f"fit{strokes[-1]}-{t}", "target") for t in TARGETS[scale]},
        **({"negative": ("negative", "drawing")} if scale != "tiny" else {}),
        **{f"strokes{k}": (f"strokes{k}-{_slug(prompts[0])}", "drawing") for k in SERIES[scale]},
    })
    grid = _drawings_grid(artifacts, prompts)
    if grid is not None:
        artifacts["drawings"] = grid
    table = _judge_table(records, drawn + plain)
    if table is not None:
        artifacts["judge_table"] = table
    notes = [f"Prompts drawn: {', '.join(prompts)}; the judge ranks each among the system's {CANDIDATE_COUNT} "
             "candidates. Top row of `drawings`: with augmentations; bottom row: without."]
    return Analysis(claims=claims, artifacts=artifacts, notes=notes)


def _drawings_grid(artifacts, prompts) -> np.ndarray | None:
    """With-augmentation drawings on the top row, without on the bottom, one column per prompt."""
    from athanor.viz.figures import image_grid

    top = [artifacts.get(f"drawing-{_slug(p)}") for p in prompts]
    bottom = [artifacts.get(f"noaug-{_slug(p)}") for p in prompts]
    if any(x is None for x in top + bottom):
        return None
    images = np.stack([np.asarray(x)[..., :3] for x in top + bottom]).astype(np.float32) / 255.0
    return image_grid(images, nrow=len(prompts), pad=4)


def _judge_table(records, labels) -> Heatmap | None:
    """The judge's similarities of each drawing (lowest seed) to every candidate prompt."""
    from athanor.core.experiment import first_run
    from athanor.core.runs import read_table

    rows, values, cols = [], [], None
    for label in labels:
        rec = first_run(records, label)
        table = read_table(rec.run_dir, "judge_similarity") if rec is not None else None
        if table is None:
            continue
        cols = cols or list(table.cols)
        if list(table.cols) != cols:
            continue
        rows.append(label)
        values.append(np.asarray(table.values)[0])
    if not rows:
        return None
    return Heatmap(np.stack(values), rows, cols, "judge's cosine similarity: drawing (row) to prompt (column)")
