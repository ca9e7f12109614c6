"""How well the `causal-response` round trip can read a definition at all: its reader on human-written text, and
where its picks fall in the option list.

    python benchmarks/causal_roundtrip.py [EXPERIMENT_DIR] [--model shipped] [--options 5] [--draws 5]
                                          [--out benchmarks/results/causal-roundtrip.json]

``reader``: the round trip's reader (``systems.causal.system.identify``, the experiment's own function) on the
graded human-written descriptions of ``prompts.GRADED`` (12 concepts x 4 levels of detail, none naming its
concept; each also passed through the experiment's name mask), each with ``draws`` option lists: the concept and
``options - 1`` distractors from ``prompts.CONCEPTS``, drawn with a fixed seed, the concept placed at position
``draw % options`` so that every position holds it equally often. Reported: accuracy per level (chance 1 /
options), and the share of picks at each position. If the reader finds the concept from a detailed human
description well above chance, a round trip at chance says the generated definitions carry little of their
concept; if it does not, the instrument itself cannot tell definitions apart.

``picks`` (with EXPERIMENT_DIR, a finished ``causal-response`` experiment with its checkpoints): from each seed's
definitions run, the positions of the true concept and of the forward and causal picks, and the accuracy of both
conditioned on the position of the true concept.

``story_control`` (with EXPERIMENT_DIR): the control the graded task has, for the stories. Each story's steered and
unsteered sentences (from its run's last checkpoint) are scored, as the experiment judges them, with the held-out
question of the next story (``prompts.STORIES[(i + 1) % 6]``), one it was never steered towards. If steering raises
this score as much as the story's own held-out score, the gain is a general pull towards "Yes", not the criterion.
Mean words per sentence are reported beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _records(run_dir: Path) -> tuple[object, list[dict]]:
    """The config and per-item records of a causal-response run, from its last checkpoint."""
    from athanor.api import load_run

    cfg, state = load_run(run_dir, template={"seed": 0, "records": []})
    return cfg, state["records"]


def reader(lm, options: int, draws: int) -> dict:
    from athanor.systems.causal import prompts as P
    from athanor.systems.causal import system as S

    rng = np.random.default_rng(0)
    positions = np.zeros(options, dtype=int)
    rows = []
    for concept, levels in P.GRADED:
        others = [c for c in P.CONCEPTS if c != concept]
        for d in range(draws):
            opts = [others[k] for k in rng.choice(len(others), options - 1, replace=False)]
            opts.insert(d % options, concept)
            for level, text in enumerate(levels):
                pick = S.identify(lm, S._mask(text, concept), opts)
                positions[opts.index(pick)] += 1
                rows.append({"concept": concept, "level": level + 1, "options": opts, "pick": pick})
    right = np.array([r["pick"] == r["concept"] for r in rows])
    level_of = np.array([r["level"] for r in rows])
    return {"options": options, "draws": draws, "chance": 1.0 / options,
            "accuracy_by_level": [float(right[level_of == k].mean()) for k in range(1, 5)],
            "accuracy": float(right.mean()), "pick_position_share": (positions / positions.sum()).round(4).tolist(),
            "n": len(rows), "rows": rows}


def picks(exp_dir: Path) -> dict:
    def accuracy(ok: np.ndarray, where: np.ndarray) -> float | None:
        return float(ok[where].mean()) if where.any() else None

    out = {}
    for run in sorted(exp_dir.glob("definitions_s*")):
        _, recs = _records(run)
        k = len(recs[0]["options"])
        true_pos = np.array([r["options"].index(r["concept"]) for r in recs])
        first = true_pos == 0
        out[run.name] = {"n": len(recs), "true_position_counts": np.bincount(true_pos, minlength=k).tolist()}
        for name in ("forward", "causal"):
            ok = np.array([r[f"pick_{name}"] == r["concept"] for r in recs])
            pos = [r["options"].index(r[f"pick_{name}"]) for r in recs]
            out[run.name] |= {f"{name}_pick_position_counts": np.bincount(pos, minlength=k).tolist(),
                              f"{name}_accuracy_true_first": accuracy(ok, first),
                              f"{name}_accuracy_true_later": accuracy(ok, ~first)}
    return out


def story_control(lm, exp_dir: Path) -> dict:
    from athanor.systems.causal import prompts as P
    from athanor.systems.causal import response as R

    out = {}
    for run in sorted(exp_dir.glob("story_s*")):
        cfg, recs = _records(run)
        rows = []
        for i, rec in enumerate(recs):
            other = P.STORIES[(i + 1) % len(P.STORIES)][2]
            row = {"story": i, "other_question": other}
            for name in ("steered", "unsteered"):
                for key, q in (("own", rec["heldout"]), ("other", other)):
                    row[f"{key}_{name}"] = float(np.mean(R.scores(lm, rec[name], q, cfg.batch_size,
                                                                 cfg.score_format)["norm"]))
                row[f"words_{name}"] = float(np.mean([len(x.split()) for x in rec[name]]))
            rows.append(row)
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("story", "other_question")}
        out[run.name] = {"mean": mean, "own_gain": mean["own_steered"] - mean["own_unsteered"],
                         "other_gain": mean["other_steered"] - mean["other_unsteered"], "stories": rows}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", type=Path, help="a finished causal-response experiment folder")
    parser.add_argument("--model", default="shipped")
    parser.add_argument("--options", type=int, default=5)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from athanor.systems.causal import lm as L

    lm = L.load(args.model)
    result = {"reader": {"model": args.model, **reader(lm, args.options, args.draws)}}
    if args.experiment is not None:
        result["picks"] = picks(args.experiment)
        result["story_control"] = story_control(lm, args.experiment)
    summary = {k: v for k, v in result["reader"].items() if k != "rows"}
    control = {k: {"own_gain": v["own_gain"], "other_gain": v["other_gain"], **v["mean"]}
               for k, v in result.get("story_control", {}).items()}
    print(json.dumps({"reader": summary, "picks": result.get("picks"), "story_control": control}, indent=1))
    if args.out:
        from athanor.core.rundir import write_json

        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
