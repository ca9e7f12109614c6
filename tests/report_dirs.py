"""Hand-made run and experiment folders, written the way the run loop and `athanor experiment` write them
(imported by the tests as ``report_dirs``; tests/conftest.py puts tests/ on the path).

They hold real files of every kind a report links (PNG figures, a table's JSON and picture, an mp4 video), so
the report tests and the browser tests check what a person would open, in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from athanor.core.artifact_io import write_artifacts
from athanor.core.artifacts import Heatmap

HTML_TEXT = '<img src=x onerror=alert(1)><script>alert("athanor")</script>'

INTERVAL = "95% Student t interval of the mean over seeds"
RULE = ("reproduced when every check's 95% t interval over seeds lies on the claimed side of its threshold; not "
        "reproduced when any check's interval lies wholly on the other side; inconclusive otherwise")


def make_run(run_dir: Path, *, system: str = "vae", label: str | None = None, seed: int = 0,
             created: str = "2025-01-01T00:00:00+00:00", final: dict | None = None, video: bool = False,
             config_extra: dict | None = None, overrides: dict | None = None) -> Path:
    """A completed run: config.json, metrics.jsonl, summary.json, figures, a table and optionally a video."""
    run_dir.mkdir(parents=True)
    final = final or {"tv": 0.25 + 0.1 * seed, "bins": 30.0}
    config = {"system": system, "family": "generative", "seed": seed, "preset": "tiny", "label": label or system,
              "config": {"steps": 40, "inner_steps": 10, "lr": 3e-4, **(config_extra or {})},
              "overrides": overrides or {"lr": 3e-4}, "version": "0.1.0", "git_sha": None,
              "runtime": {"framework": "jax", "version": "0.0", "backend": "cpu"}, "created": created}
    (run_dir / "config.json").write_text(json.dumps(config))
    recs = [{"step": s, "kind": "train", "wall_s": s / 10, "loss": 2.0 / s} for s in (10, 20, 30, 40)]
    recs.append({"step": 40, "kind": "eval", "wall_s": 4.0, **final})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run_dir / "summary.json").write_text(json.dumps(
        {"status": "completed", "steps_done": 40, "steps": 40, "wall_s": 4.2, "final": final, "message": None}))
    rng = np.random.default_rng(seed)
    arts = {"samples": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
            "frequency": Heatmap(np.arange(6.0).reshape(2, 3), ["a", "b"], ["x", "y", "z"], title="freq")}
    if video:
        frames = np.zeros((8, 32, 32, 3), np.uint8)
        for t in range(8):
            frames[t, :, 4 * t:4 * t + 4] = (255, 120, 0)  # a bar moving right
        arts["rollout"] = frames
    write_artifacts(run_dir, arts)
    return run_dir


def make_experiment(root: Path, name: str, *, created: str = "2025-02-01T10:00:00+00:00",
                    labels: tuple[str, ...] = ("vae", "gan"), seeds: int = 2, claims: list | None = None,
                    key_figure: str | None = None, scale: str = "quick", video: bool = False,
                    config_extra: dict | None = None) -> Path:
    """An experiment folder: experiment.json, claims.json, an experiment-level figure and its runs."""
    exp = root / name / created.replace(":", "").replace("-", "")[:13]
    runs = []
    for label in labels:
        for seed in range(seeds):
            d = f"{label}_s{seed}"
            make_run(exp / d, system=label, label=label, seed=seed, created=created, video=video and seed == 0,
                     config_extra=config_extra)
            runs.append({"system": label, "label": label, "seed": seed, "dir": d})
    write_artifacts(exp, {"comparison": np.tile(np.linspace(0, 255, 48, dtype=np.uint8)[None, :, None], (24, 1, 3)),
                          "overview": np.full((16, 16, 3), 90, np.uint8)})
    meta = {"experiment": name, "scale": scale, "seeds": seeds, "summary": f"{name}: a hand-made experiment",
            "created": created, "runs": runs, "status": "completed", "wall_s": 75.0, "notes": []}
    if key_figure:
        meta["key_figure"] = key_figure
    (exp / "experiment.json").write_text(json.dumps(meta))
    (exp / "claims.json").write_text(json.dumps(claims if claims is not None else seed_claims()))
    return exp


def check(name, op, threshold, per_seed, verdict):
    finite = [v for v in per_seed if v is not None]
    mean = float(np.mean(finite)) if finite and len(finite) == len(per_seed) else None
    ci = [mean - 1.0, mean + 1.0] if mean is not None and len(per_seed) > 1 else None
    return {"name": name, "op": op, "threshold": threshold, "per_seed": per_seed, "mean": mean, "ci": ci,
            "verdict": verdict}


def seed_claims(statement_extra: str = "") -> list[dict]:
    """claims.json as written since verdicts are judged over seeds: one claim of each kind."""
    base = {"seeds": 3, "interval": INTERVAL, "rule": RULE}
    return [
        {**base, "id": "mbd-covers-more", "statement": f"Minibatch discrimination covers more bins{statement_extra}",
         "metric": "bins(gan-mbd) - bins(gan)", "threshold": "> 0", "measured": [4.0, 3.0, 5.0],
         "verdict": "reproduced", "leans": "reproduced", "reason": None,
         "checks": [check("bins(gan-mbd) - bins(gan)", ">", 0, [4.0, 3.0, 5.0], "reproduced")]},
        {**base, "id": "batch-kl-prior", "statement": "The batch KL matches the prior in aggregate",
         "metric": "z_var; kl ratio", "threshold": "in [0.5, 2]; >= 2", "measured": None, "verdict": "inconclusive",
         "leans": "not_reproduced", "reason": "an interval straddles its threshold",
         "checks": [check("z_var", "within", [0.5, 2], [1.0, 1.1, 1.2], "reproduced"),
                    check("kl(batch) / kl(element)", ">=", 2, [1.5, 2.5, 0.9], "inconclusive")]},
        {**base, "id": "gan-collapses", "statement": "The GAN misses modes", "metric": "bins(gan)",
         "threshold": "< 25", "measured": [28.0, 29.0, 30.0], "verdict": "not_reproduced",
         "leans": "not_reproduced", "reason": None,
         "checks": [check("bins(gan)", "<", 25, [28.0, 29.0, 30.0], "not_reproduced")]},
    ]


OLD_CLAIMS = [  # claims.json as written before the checks over seeds
    {"id": "vae-covers", "statement": "The VAE covers every bin", "metric": "bins", "threshold": 30,
     "measured": {"vae": 29.123456, "gan": 12.0}, "verdict": "reproduced"},
    {"id": "diffusion-colour", "statement": "The diffusion model's error is colour", "metric": "err",
     "threshold": None, "measured": "n/a at tiny scale", "verdict": "inconclusive"},
]


def build_tree(root: Path) -> dict:
    """A runs folder a person might open: two experiments (new and old claims.json), one with a video and with
    HTML in a config value and a claim statement, and a stand-alone run with HTML in its label and an overridden
    config value. No report is built: ``gallery(root)`` builds them."""
    new = make_experiment(root, "generative", key_figure="comparison", video=True,
                          claims=seed_claims(f" {HTML_TEXT}"), config_extra={"note": HTML_TEXT})
    old = make_experiment(root, "vae-kl", created="2025-01-05T08:00:00+00:00", labels=("vae",), seeds=1,
                          claims=OLD_CLAIMS, scale="tiny")
    single = make_run(root / "toy" / "20250301-000000_s0", system="toy", label=HTML_TEXT,
                      created="2025-03-01T00:00:00+00:00", config_extra={"tag": HTML_TEXT},
                      overrides={"tag": HTML_TEXT})
    meta = json.loads((new / "experiment.json").read_text())
    meta["runs"][-1]["label"] = HTML_TEXT  # a label as an experiment module might spell it; its folder stays
    meta["summary"] = f"mode coverage {HTML_TEXT}"
    (new / "experiment.json").write_text(json.dumps(meta))
    summary = json.loads((single / "summary.json").read_text())
    (single / "summary.json").write_text(json.dumps({**summary, "message": f"note: {HTML_TEXT}"}))
    return {"root": root, "experiments": [new, old], "single": single}
