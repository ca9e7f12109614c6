"""`offline-rl`: how IQL's policy is extracted decides how well it does on the point maze.

Source: "Small-Research: Policy Extraction in IQL" and "Small-Research: Tanh Activations with DDPG".

One IQL critic recipe (expectile 0.9, reward r - 1, twin Q, 256x256 MLPs) on the medium point maze's task 1, with
five ways of reading a policy out of it: AWR with a Gaussian head (beta 10, the IQL default), the same with beta =
100 (the post's "raise the temperature" question; the weights stay finite through IQL's clip at 100), AWR over
k-means action tokens with a softmax head, DDPG through tanh (no BC, as in the post) and DDPG+BC (Q normalised by
mean |Q|). Each run reports its success rate and time to goal over its final evaluation's episodes (100 at full),
which start, as in D4RL's maze2d, in uniformly drawn free cells (``success_task_start`` is the same policy started
from the task's far corner, OGBench's protocol, reported but not judged), the learned AWR std, and statistics of its
action distribution at 1024 dataset states (``systems/offline_rl/iql.py`` defines action_norm, circle_frac and
modes).

Claims (thresholds fixed here, from the post, before any run). Each check is a per-seed quantity judged by its 95%
t interval over seeds (``core/claims.py``: reproduced when the interval clears the threshold, inconclusive when it
straddles it; one seed is always inconclusive); differences are paired within a seed:
1. awr_std_stays_high: the Gaussian AWR head's mean learned std stays far from zero: awr_std >= 0.2 (post: ~0.4).
2. ddpg_actions_on_circle: DDPG's actions concentrate on the unit circle: circle_frac(ddpg) >= 0.9, and
   circle_frac(ddpg) - circle_frac(awr) > 0.
3. ddpg_beats_awr: success(ddpg) - success(awr) > 0. (Before the rule across seeds this claim asked for a gap of
   two standard errors; the t interval over seeds now carries both the seed-to-seed and the episode noise.)
4. discrete_awr_multimodal: the discrete AWR head keeps several directions and puts its mass on the circle:
   modes >= 1.5 and circle_frac >= 0.7.
5. temperature_narrows_not_closes: success(awr, beta 100) - success(awr) > 0, success(ddpg) - success(awr, beta
   100) > 0, and the beta-100 Gaussian still has a high std: awr_std >= 0.2.
6. tanh_equals_clip: DDPG evaluated with tanh(mu) and with clip(mu, -1, 1) (same weights, same episode seeds)
   succeed equally within noise: the interval of success_tanh - success_clip lies within +- 2 binomial standard
   errors of one seed's difference at the pooled rate (+-0.14 at p = 0.5 with 100 episodes).
Claims 3, 5 and 6 are inconclusive when every compared success rate is 0: at that floor no policy reached the goal,
so "beats", "narrows" and "equal" say nothing about extraction.

Scales: ``tiny`` (seconds; every verdict inconclusive), ``quick`` (15k updates per run, one seed), ``full`` (60k
updates per run, three seeds; two took 41 minutes on 2 idle cores). The systems' own `full` preset is the source's
1M updates (54 minutes measured for the awr head on 2 cores, see BENCHMARKS.md), which this experiment cannot
afford ten times over; see ``SCALE_OVERRIDES``. Run ``athanor experiment offline-rl --scale full`` (``SEEDS``
gives each scale's seed count when ``--seeds`` is not given).
"""

from __future__ import annotations

import math

import numpy as np

from athanor.core.artifacts import Heatmap
from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, curves_over_seeds, first_run, mean, metric, paired

SUMMARY = "IQL on the point maze: AWR (Gaussian, high beta, discrete) vs DDPG / DDPG+BC extraction; tanh vs clip"
SOURCE = "Small-Research: Policy Extraction in IQL; Small-Research: Tanh Activations with DDPG"

BETA_HIGH = 100.0
MODELS = (
    ("iql", "awr", {}),
    ("iql", "awr-beta100", {"beta": BETA_HIGH}),
    ("iql-awr-discrete", "awr-discrete", {}),
    ("iql-ddpg", "ddpg", {}),
    ("iql-ddpg-bc", "ddpg-bc", {}),
)
LABELS = tuple(label for _, label, _ in MODELS)
SCALE_OVERRIDES = {
    "tiny": {},
    "quick": {"steps": 15_000, "inner_steps": 1000, "eval_every": 5000, "ckpt_every": 5000, "eval_episodes": 20,
              "final_episodes": 50},
    "full": {"steps": 60_000, "inner_steps": 1000, "eval_every": 20_000, "ckpt_every": 20_000, "eval_episodes": 30,
             "final_episodes": 100},
}
SEEDS = {"tiny": 1, "quick": 1, "full": 3}  # the --seeds each scale is meant for
KEY_FIGURE = "compare_success"

STD_MIN = 0.2
CIRCLE_DDPG_MIN = 0.9
MODES_MIN, CIRCLE_DISCRETE_MIN = 1.5, 0.7
N_SE = 2.0
TABLE_KEYS = ("success", "time_to_goal", "success_task_start", "awr_std", "circle_frac", "modes", "action_norm")


def runs(scale: str) -> list[RunSpec]:
    return [RunSpec(system, label, {**extra, **SCALE_OVERRIDES[scale]}) for system, label, extra in MODELS]


def _episodes(records, label) -> float:
    """Evaluation episodes pooled over the seeds of ``label``."""
    vals = metric(records, label, "episodes")
    return float(np.nansum(vals)) if vals and np.isfinite(vals).any() else math.nan


def tanh_clip_band(records, label: str = "ddpg") -> float:
    """The equivalence band of ``tanh_equals_clip``: 2 binomial standard errors of a difference of two success
    rates at the pooled rate, with one seed's episodes each (NaN when nothing succeeded: no power)."""
    p = (mean(records, label, "success_tanh") + mean(records, label, "success_clip")) / 2
    n = _episodes(records, label) / max(len(metric(records, label, "episodes")), 1)
    return N_SE * math.sqrt(2 * p * (1 - p) / n) if n > 0 and p > 0 else math.nan


def _claims(records, scale: str):
    def check(name, fn, op, threshold):
        return Check(name, paired(records, fn), op, threshold)

    def floor(*labels):  # every compared success rate is 0: "beats", "narrows", "equal" say nothing
        valid = not all(mean(records, k, "success") == 0.0 for k in labels)
        return {"valid": valid, "why_invalid": f"success is 0 for {', '.join(labels)}: no policy reached the goal"}

    out = [claim("awr_std_stays_high",
                 "The AWR Gaussian head's learned std stays far from zero (the post saw ~0.4 on maze2d).",
                 [check("awr_std(awr)", lambda f: f["awr"]["awr_std"], ">=", STD_MIN)], scale)]
    out.append(claim("ddpg_actions_on_circle",
                     "DDPG's actions concentrate on the unit circle; the Gaussian AWR policy's do less.",
                     [check("circle_frac(ddpg)", lambda f: f["ddpg"]["circle_frac"], ">=", CIRCLE_DDPG_MIN),
                      check("circle_frac(ddpg) - circle_frac(awr)",
                            lambda f: f["ddpg"]["circle_frac"] - f["awr"]["circle_frac"], ">", 0)], scale))
    out.append(claim("ddpg_beats_awr", "DDPG extraction reaches the goal more often than Gaussian AWR on the maze.",
                     [check("success(ddpg) - success(awr)", lambda f: f["ddpg"]["success"] - f["awr"]["success"],
                            ">", 0)], scale, **floor("ddpg", "awr")))
    out.append(claim("discrete_awr_multimodal",
                     "AWR over discrete action tokens recovers multimodal actions on the circle.",
                     [check("modes(awr-discrete)", lambda f: f["awr-discrete"]["modes"], ">=", MODES_MIN),
                      check("circle_frac(awr-discrete)", lambda f: f["awr-discrete"]["circle_frac"], ">=",
                            CIRCLE_DISCRETE_MIN)], scale))
    out.append(claim("temperature_narrows_not_closes",
                     f"Raising AWR's beta to {BETA_HIGH:g} helps but does not reach DDPG, and its std stays high.",
                     [check("success(awr-beta100) - success(awr)",
                            lambda f: f["awr-beta100"]["success"] - f["awr"]["success"], ">", 0),
                      check("success(ddpg) - success(awr-beta100)",
                            lambda f: f["ddpg"]["success"] - f["awr-beta100"]["success"], ">", 0),
                      check("awr_std(awr-beta100)", lambda f: f["awr-beta100"]["awr_std"], ">=", STD_MIN)],
                     scale, **floor("awr", "awr-beta100", "ddpg")))
    band = tanh_clip_band(records)
    out.append(claim("tanh_equals_clip",
                     "Evaluating DDPG with tanh(mu) or with clip(mu, -1, 1) gives the same success rate.",
                     [check("success_tanh(ddpg) - success_clip(ddpg)",
                            lambda f: f["ddpg"]["success_tanh"] - f["ddpg"]["success_clip"], "within",
                            (-band, band) if math.isfinite(band) else (0.0, 0.0))],
                     scale, valid=math.isfinite(band), why_invalid="DDPG never succeeded: nothing to compare"))
    return out


def _artifacts(records):
    from athanor.core.runs import read_image, read_video
    from athanor.viz.figures import bar_compare, curves, image_grid
    from athanor.viz.video import tile_videos

    arts = {}
    rows = [label for label in LABELS if any(r.spec.label == label and r.final for r in records)]
    if not rows:
        return arts
    values = np.array([[mean(records, label, k) for k in TABLE_KEYS] for label in rows])
    arts["comparison"] = Heatmap(values, rows, list(TABLE_KEYS), title="mean over seeds", fmt=".3g",
                                 cmap="viridis")
    for key, ylabel in (("success", "success rate"), ("time_to_goal", "steps to the goal (successful episodes)")):
        vals = [metric(records, label, key) for label in rows]
        means = [float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for v in vals]
        stds = [float(np.nanstd(v)) if np.isfinite(v).any() else 0.0 for v in vals]
        arts[f"compare_{key}"] = bar_compare(rows, means, stds, title=key, ylabel=ylabel)
    curve_rows = curves_over_seeds(records, {"success": "eval", "awr_std": "train"})
    if curve_rows:
        arts["training_curves"] = curves(curve_rows, ["success", "awr_std"], title="mean over seeds", series="label")
    first = {label: first_run(records, label) for label in rows}
    for name, stem in (("actions_compare", "actions_policy"), ("actions_rollout_compare", "actions_rollout")):
        panels = [("awr", "actions_data")] + [(label, stem) for label in ("awr", "ddpg", "awr-discrete")]
        imgs = [read_image(first[label].run_dir, fig) for label, fig in panels if first.get(label) is not None]
        imgs = [i for i in imgs if i is not None]
        if imgs:
            arts[name] = image_grid(imgs, nrow=len(imgs), pad=4)
    trajs = [read_image(first[lab].run_dir, "trajectories") for lab in rows]
    trajs = [t for t in trajs if t is not None]
    if trajs:
        arts["trajectories_compare"] = image_grid(trajs, nrow=len(trajs), pad=4)
    clips = [read_video(first[lab].run_dir, "rollout") for lab in rows]
    clips = [c for c in clips if c is not None]
    if clips:
        arts["rollouts"] = tile_videos(clips, ncols=len(clips))  # shorter episodes hold their last frame
    return arts


def analyse(records, scale: str) -> Analysis:
    notes = [f"runs in order {', '.join(LABELS)}; images and videos side by side follow that order (seed 0)"]
    if scale == "tiny":
        notes.append("tiny scale: every verdict is inconclusive by construction")
    elif scale == "quick":
        notes.append("quick scale trains 15k updates per run, far below the source's 1M; verdicts count at 'full'")
    if scale != "tiny":
        notes.append(f"each run trains {SCALE_OVERRIDES[scale]['steps']:,} updates, not the source's 1M (the time "
                     "budget of this scale); success_task_start (episodes from the task's far corner, 200+ steps "
                     "from the goal) is reported beside the judged random-start success")
    seeds = len({r.seed for r in records})
    if seeds < SEEDS[scale]:
        notes.append(f"{seeds} seed(s) ran; this scale is meant for --seeds {SEEDS[scale]}")
    return Analysis(claims=_claims(records, scale), artifacts=_artifacts(records), notes=notes)
