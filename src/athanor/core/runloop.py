"""The one run loop every system goes through.

    run dir -> seed -> load_data -> init -> [step x (steps / inner_steps)] -> evaluate -> artifacts -> report

with a progress bar (rate, ETA), ``metrics.jsonl`` (one line per ``step`` call and per evaluation),
periodic evaluation and atomic checkpoints, and ``resume`` that continues to the same metrics as an
uninterrupted run. Determinism comes from the state carrying its own PRNG key; evaluation keys are derived
from (seed, step) so evaluating never perturbs training. A non-finite value in a step's ``info`` stops the
run, saves the last finite state as a checkpoint, and raises :class:`NonFiniteError`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from athanor.core import checkpoint
from athanor.core import config as C
from athanor.core.errors import CheckpointError, NonFiniteError
from athanor.core.rundir import append_jsonl, provenance, read_json, timestamp, unique_dir, write_json
from athanor.systems import SystemSpec, get_system

KEEP_CHECKPOINTS = 3


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | interrupted
    steps_done: int
    final: dict[str, float]


def _host_scalars(info: dict) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in info.items()}


def init_key(seed: int) -> jax.Array:
    """The key a run of ``seed`` initialises its state with (``module.init(cfg, init_key(seed), data)``)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 0x1A17)


def _eval_key(seed: int, step: int) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), 0x0E7A1), step)


def _resolve(spec: SystemSpec, module: Any, preset: str | None, overrides: dict | None, sets) -> Any:
    return C.resolve(module.Config, module.PRESETS, preset, experiment=overrides, sets=sets, base=spec.overrides)


def resolve_config(system: str, preset: str | None = None, overrides: dict | None = None,
                   sets=()) -> Any:
    spec = get_system(system)
    return _resolve(spec, spec.load(), preset, overrides, sets)


def start_run(system: str, *, preset: str | None = None, overrides: dict | None = None, sets=(),
              seed: int = 0, out: Path | str = "runs", run_dir: Path | None = None,
              stop_after: int | None = None, progress: bool = True, label: str | None = None) -> RunResult:
    """Resolve the config, create the run directory and run to completion (or ``stop_after`` updates)."""
    spec = get_system(system)
    module = spec.load()
    cfg = _resolve(spec, module, preset, overrides, sets)
    if run_dir is None:
        run_dir = unique_dir(Path(out) / system, f"{timestamp()}_s{seed}")
    else:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=False)
    meta = {"system": system, "family": spec.family, "label": label or system, "seed": int(seed),
            "preset": preset, "config": C.to_dict(cfg), "overrides": {**(overrides or {}),
                                                                       **C.parse_sets(type(cfg), sets)},
            **provenance()}
    write_json(run_dir / "config.json", meta)
    return _loop(spec, module, cfg, run_dir, seed, None, stop_after, progress)


def resume_run(run_dir: Path | str, *, stop_after: int | None = None, progress: bool = True) -> RunResult:
    """Continue a run from its newest valid checkpoint (older ones are used if newer ones are corrupt)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.json); pass the directory that "
                              f"`athanor run` printed")
    meta = read_json(cfg_path)
    spec = get_system(meta["system"])
    module = spec.load()
    cfg = C.from_dict(module.Config, meta["config"])
    path, warnings = checkpoint.latest_valid(run_dir / "checkpoints")
    for w in warnings:
        print(f"athanor: warning: {w}; falling back to an older checkpoint", file=sys.stderr)
    if path is None:
        raise CheckpointError(f"no valid checkpoint in {run_dir / 'checkpoints'}; the run cannot be resumed, "
                              f"start a new one with `athanor run {meta['system']}`")
    return _loop(spec, module, cfg, run_dir, int(meta["seed"]), path, stop_after, progress)


def _write_summary(run_dir: Path, status: str, steps_done: int, cfg: Any, wall: float,
                   final: dict, message: str | None = None) -> None:
    write_json(run_dir / "summary.json", {"status": status, "steps_done": steps_done, "steps": cfg.steps,
                                          "wall_s": round(wall, 3), "final": final, "message": message})


def _loop(spec: SystemSpec, module: Any, cfg: Any, run_dir: Path, seed: int, resume_from: Path | None,
          stop_after: int | None, progress: bool) -> RunResult:
    from athanor.core.artifact_io import write_artifacts
    from athanor.report.html import run_report

    t0 = time.perf_counter()
    ckpt_dir = run_dir / "checkpoints"
    metrics_path = run_dir / "metrics.jsonl"
    config_dict = C.to_dict(cfg)
    data = module.load_data(cfg)
    state = module.init(cfg, init_key(seed), data)
    done = 0
    if resume_from is not None:
        state, record = checkpoint.restore(resume_from, state)
        if record["system"] != spec.name:
            raise CheckpointError(f"checkpoint {resume_from} belongs to system '{record['system']}', "
                                  f"not '{spec.name}'")
        done = int(record["step"])

    def save(st: Any, step: int) -> Path:
        return checkpoint.save(ckpt_dir, spec.name, step, config_dict, st, keep=KEEP_CHECKPOINTS)

    def log(kind: str, step: int, values: dict[str, float]) -> None:
        append_jsonl(metrics_path, {"step": step, "kind": kind,
                                    "wall_s": round(time.perf_counter() - t0, 4), **values})

    last_saved = done if resume_from is not None else -1
    target = cfg.steps if stop_after is None else min(cfg.steps, max(stop_after, done))
    bar = tqdm(total=cfg.steps, initial=done, unit="upd", desc=f"{spec.name}", disable=not progress,
               dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
    try:
        while done < target:
            new_state, info = module.step(state, data, cfg)
            values = _host_scalars(info)
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                if last_saved != done:
                    save(state, done)
                msg = (f"{spec.name}: non-finite {', '.join(bad)} in the updates after step {done}; the run "
                       f"stopped and the last finite state (step {done}) is checkpointed in {ckpt_dir}. "
                       f"Try a lower learning rate (--set lr=...) or check the data")
                _write_summary(run_dir, "failed", done, cfg, time.perf_counter() - t0, {}, msg)
                raise NonFiniteError(msg)
            state, done = new_state, done + cfg.inner_steps
            log("train", done, values)
            bar.update(cfg.inner_steps)
            bar.set_postfix(loss=f"{values.get('loss', float('nan')):.4g}", refresh=False)
            if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                log("eval", done, module.evaluate(state, data, cfg, _eval_key(seed, done)))
            if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < target:
                save(state, done)
                last_saved = done
    except KeyboardInterrupt:
        bar.close()
        save(state, done)
        _write_summary(run_dir, "interrupted", done, cfg, time.perf_counter() - t0, {},
                       f"interrupted at step {done}; continue with `athanor run --resume {run_dir}`")
        raise
    finally:
        bar.close()
    if last_saved != done:
        save(state, done)
    if done < cfg.steps:
        _write_summary(run_dir, "interrupted", done, cfg, time.perf_counter() - t0, {},
                       f"stopped after {done} of {cfg.steps} updates; continue with "
                       f"`athanor run --resume {run_dir}`")
        return RunResult(run_dir, "interrupted", done, {})
    if progress:
        print(f"{spec.name}: evaluating and rendering artifacts ...", file=sys.stderr)
    key = _eval_key(seed, done)
    if hasattr(module, "final"):  # optional: metrics and artifacts from one pass when sampling is costly
        final, arts = module.final(state, data, cfg, key)
    else:
        final, arts = module.evaluate(state, data, cfg, key), module.artifacts(state, data, cfg, key)
    log("eval", done, final)
    write_artifacts(run_dir, arts)
    _write_summary(run_dir, "completed", done, cfg, time.perf_counter() - t0, final)
    run_report(run_dir)
    return RunResult(run_dir, "completed", done, final)


__all__ = ["RunResult", "start_run", "resume_run", "resolve_config", "init_key"]
