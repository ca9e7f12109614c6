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

``picks`` (with EXPERIMENT_DIR, a finished ``causal-response`` experiment): from each seed's definitions table,
the positions of the true concept and of the forward and causal picks, and the accuracy of both conditioned on
the position of the true concept.

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


def reader(model: str, options: int, draws: int) -> dict:
    from athanor.systems.causal import lm as L
    from athanor.systems.causal import prompts as P
    from athanor.systems.causal import system as S

    lm = L.load(model)
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
    acc = [float(np.mean([r["pick"] == r["concept"] for r in rows if r["level"] == k + 1])) for k in range(4)]
    return {"model": model, "options": options, "draws": draws, "chance": 1.0 / options,
            "accuracy_by_level": acc, "accuracy": float(np.mean([r["pick"] == r["concept"] for r in rows])),
            "pick_position_share": (positions / positions.sum()).round(4).tolist(), "n": len(rows), "rows": rows}


def picks(exp_dir: Path) -> dict:
    out = {}
    for table in sorted(exp_dir.glob("definitions_s*/tables/texts.json")):
        true_pos, fwd_pos, cau_pos, fwd_ok, cau_ok, k = [], [], [], [], [], 0
        for concept, _, _, trip in json.loads(table.read_text())["rows"]:
            chosen, opts = trip.split(" (of ")
            opts = opts.removesuffix(")").split(", ")
            k = len(opts)
            pf, pc = chosen.split(" / ")
            true_pos.append(opts.index(concept))
            fwd_pos.append(opts.index(pf))
            cau_pos.append(opts.index(pc))
            fwd_ok.append(pf == concept)
            cau_ok.append(pc == concept)
        n = len(true_pos)
        first = np.array(true_pos) == 0
        out[table.parent.parent.name] = {
            "n": n, "true_position_counts": np.bincount(true_pos, minlength=k).tolist(),
            "forward_pick_position_counts": np.bincount(fwd_pos, minlength=k).tolist(),
            "causal_pick_position_counts": np.bincount(cau_pos, minlength=k).tolist(),
            "forward_accuracy_true_first": float(np.mean(np.array(fwd_ok)[first])) if first.any() else None,
            "forward_accuracy_true_later": float(np.mean(np.array(fwd_ok)[~first])) if (~first).any() else None,
            "causal_accuracy_true_first": float(np.mean(np.array(cau_ok)[first])) if first.any() else None,
            "causal_accuracy_true_later": float(np.mean(np.array(cau_ok)[~first])) if (~first).any() else None}
    return out


def story_control(exp_dir: Path, model: str) -> dict:
    from athanor.api import load_run
    from athanor.systems.causal import lm as L
    from athanor.systems.causal import prompts as P
    from athanor.systems.causal import response as R

    lm, out = L.load(model), {}
    for run in sorted(exp_dir.glob("story_s*")):
        cfg, state = load_run(run, template={"seed": 0, "records": []})
        rows = []
        for i, rec in enumerate(state["records"]):
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
    result = {"reader": reader(args.model, args.options, args.draws)}
    if args.experiment is not None:
        result["picks"] = picks(args.experiment)
        result["story_control"] = story_control(args.experiment, args.model)
    summary = {k: v for k, v in result["reader"].items() if k != "rows"}
    control = {k: {"own_gain": v["own_gain"], "other_gain": v["other_gain"], **v["mean"]}
               for k, v in result.get("story_control", {}).items()}
    print(json.dumps({"reader": summary, "picks": result.get("picks"), "story_control": control}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
