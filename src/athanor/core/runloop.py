"""The one run loop every system goes through.

    run dir -> load_data(cfg, seed) -> init(cfg, seed, data) -> [step x (steps / inner_steps)] -> final
    evaluation -> artifacts -> summary

with a progress bar (rate, ETA), ``metrics.jsonl`` (one line per ``step`` call and per evaluation), periodic
evaluation, atomic checkpoints every ``ckpt_every`` updates and every ``ckpt_every_s`` seconds of wall time, and
``resume`` that continues to the same metrics as an uninterrupted run.

The loop is framework-neutral. It calls a *bound system* (``athanor.systems.contract.bind``: the module's
functions with every optional hook resolved) and hands it integer seeds: ``init`` and ``load_data`` get the run's
seed, the evaluation at step s gets ``seeds.derive(seed, EVAL, s)``, so evaluating never perturbs training and a
resumed run evaluates exactly as an uninterrupted one. The state's bytes come from the system's ``save_state``
(Flax msgpack by default, safetensors for a PyTorch system), and the run's provenance from its
``runtime_info``. A system that does not fit a step loop exports ``run(cfg, ctx)`` and drives itself through a
:class:`RunContext`.

Failures lose nothing already saved: a non-finite value in a step's ``info`` stops the run, checkpoints the
last finite state and raises :class:`NonFiniteError`; running out of memory does the same and raises
:class:`ResourceError` naming the config's largest sizes; Ctrl-C checkpoints and re-raises. On resume the loop
appends a ``resume`` marker to ``metrics.jsonl``, so readers (``core/runs.py``) drop what a killed process logged
after its last checkpoint and see every step once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from athanor.core import checkpoint, seeds
from athanor.core import config as C
from athanor.core.artifact_io import write_artifacts
from athanor.core.errors import CheckpointError, ConfigError, NonFiniteError, ResourceError
from athanor.core.rundir import append_jsonl, provenance, timestamp, unique_dir, write_json
from athanor.core.runs import RESUME, read_meta

__all__ = ["RunResult", "RunContext", "create_run_dir", "start", "resume", "eval_seed", "KEEP_CHECKPOINTS"]

KEEP_CHECKPOINTS = 3


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | interrupted
    steps_done: int
    final: dict[str, float]


def eval_seed(seed: int, step: int) -> int:
    """The integer seed of the evaluation at ``step`` of a run with ``seed``."""
    return seeds.derive(seed, seeds.EVAL, step)


def create_run_dir(out: Path | str, name: str, seed: int, run_dir: Path | str | None = None) -> Path:
    """``run_dir`` (which must not exist), or a new ``<out>/<name>/<time>_s<seed>``; a ConfigError if the
    folder cannot be made."""
    where = Path(out) / name if run_dir is None else Path(run_dir)
    try:
        if run_dir is None:
            return unique_dir(where, f"{timestamp()}_s{seed}")
        where.mkdir(parents=True, exist_ok=False)
        return where
    except OSError as e:
        if run_dir is not None and where.is_dir():
            raise ConfigError(f"{where} already exists; pick a new directory or resume it with "
                              f"`athanor run --resume {where}`") from None
        raise ConfigError(f"cannot create the run directory under {where} ({e.strerror or e}); pass a writable "
                          f"folder with --out") from None


def _oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(m in text for m in (
        "resource_exhausted", "out of memory", "can't allocate memory", "cannot allocate memory"))


def _sizes(cfg: Any) -> str:
    ints = [(f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
            if isinstance(getattr(cfg, f.name), int) and not isinstance(getattr(cfg, f.name), bool)
            and f.name not in ("steps", "inner_steps", "eval_every", "ckpt_every")]
    top = sorted(ints, key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k}={v}" for k, v in top)


class _Run:
    """One run in progress: its folder, metrics log, checkpoints and clock, shared by the step loop and by
    ``RunContext``."""

    def __init__(self, system: Any, cfg: Any, run_dir: Path, seed: int, progress: bool):
        self.system, self.cfg, self.run_dir, self.seed, self.progress = system, cfg, run_dir, seed, progress
        self.t0 = time.perf_counter()
        self.last_save_t = time.monotonic()
        self.config_dict = C.to_dict(cfg)
        self.ckpt_dir = run_dir / "checkpoints"
        self.saved_step: int | None = None  # step of the newest checkpoint this process wrote or resumed from

    def log(self, kind: str, step: int, values: dict[str, float]) -> None:
        append_jsonl(self.run_dir / "metrics.jsonl", {"step": int(step), "kind": kind,
                                                      "wall_s": round(time.perf_counter() - self.t0, 4), **values})

    def save(self, state: Any, step: int) -> Path:
        self.last_save_t, self.saved_step = time.monotonic(), step
        return checkpoint.save(self.ckpt_dir, self.system.name, step, self.config_dict,
                               self.system.save_state(state), keep=KEEP_CHECKPOINTS)

    def due(self, step: int, target: int) -> bool:
        """A periodic checkpoint is due after ``step`` (by update count or by wall time), before ``target``."""
        cfg = self.cfg
        by_steps = bool(cfg.ckpt_every) and step % cfg.ckpt_every == 0
        by_time = bool(cfg.ckpt_every_s) and time.monotonic() - self.last_save_t >= cfg.ckpt_every_s
        return (by_steps or by_time) and step < target

    def summary(self, status: str, steps_done: int, final: dict, message: str | None = None) -> None:
        write_json(self.run_dir / "summary.json", {
            "status": status, "steps_done": steps_done, "steps": self.cfg.steps,
            "wall_s": round(time.perf_counter() - self.t0, 3), "final": final, "message": message})

    def _kept(self, state: Any, step: int, saved: bool) -> str:
        """Checkpoint the last good ``state`` unless it is on disk; say where the run can continue from."""
        if state is not None and not saved:
            self.save(state, step)
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"the last good state (step {self.saved_step}) is checkpointed in {self.ckpt_dir}"

    @contextlib.contextmanager
    def guard(self, phase: str, state: Any = None, step: int = 0, saved: bool = True) -> Iterator[None]:
        """Turn running out of memory during ``phase`` into a ResourceError, checkpointing ``state`` first."""
        try:
            yield
        except (MemoryError, RuntimeError) as e:
            if not _oom(e):
                raise
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            msg = (f"{self.system.name}: out of memory while {phase} ({first}); {self._kept(state, step, saved)}. "
                   f"The config asks for more than this machine has: lower the largest sizes ({_sizes(self.cfg)}) "
                   f"with --set")
            self.summary("failed", step, {}, msg)
            raise ResourceError(msg) from None

    def check_finite(self, values: dict[str, float], state: Any, step: int, saved: bool) -> None:
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if not bad:
            return
        msg = (f"{self.system.name}: non-finite {', '.join(bad)} in the updates after step {step}; the run "
               f"stopped and {self._kept(state, step, saved)}. Try a lower learning rate (--set lr=...) or check "
               f"the data")
        self.summary("failed", step, {}, msg)
        raise NonFiniteError(msg)

    def finish(self, done: int, final: dict[str, float], arts: dict[str, Any]) -> RunResult:
        self.log("eval", done, final)
        write_artifacts(self.run_dir, arts)
        self.summary("completed", done, final)
        return RunResult(self.run_dir, "completed", done, final)

    def stopped(self, done: int) -> RunResult:
        self.summary("interrupted", done, {}, f"stopped after {done} of {self.cfg.steps} updates; continue with "
                                              f"`athanor run --resume {self.run_dir}`")
        return RunResult(self.run_dir, "interrupted", done, {})


def _scalars(info: Any, what: str) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in info.items()}
    except (TypeError, ValueError, AttributeError) as e:
        raise TypeError(f"{what} must map names to scalars (Python floats or 0-d arrays), got {info!r:.200} "
                        f"({e})") from None


def start(system: Any, cfg: Any, run_dir: Path, seed: int, meta: dict, *, stop_after: int | None = None,
          progress: bool = True) -> RunResult:
    """Write ``config.json`` (``meta`` + the resolved config + provenance) into the new ``run_dir`` and run."""
    seed = seeds.check_seed(seed)
    write_json(run_dir / "config.json", {**meta, "system": system.name, "seed": seed, "config": C.to_dict(cfg),
                                         **provenance(system.runtime_info())})
    return _dispatch(_Run(system, cfg, run_dir, seed, progress), None, stop_after)


def resume(system: Any, run_dir: Path | str, *, stop_after: int | None = None, progress: bool = True) -> RunResult:
    """Continue a run from its newest valid checkpoint (older ones are used if newer ones are corrupt)."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    cfg = C.from_dict(system.Config, meta["config"])
    path, warnings = checkpoint.latest_valid(run_dir / "checkpoints")
    for w in warnings:
        print(f"athanor: warning: {w}; falling back to an older checkpoint", file=sys.stderr)
    if path is None:
        raise CheckpointError(f"no valid checkpoint in {run_dir / 'checkpoints'}; the run cannot be resumed, "
                              f"start a new one with `athanor run {meta.get('system', system.name)}`")
    return _dispatch(_Run(system, cfg, run_dir, int(meta["seed"]), progress), path, stop_after)


def _dispatch(run: _Run, resume_from: Path | None, stop_after: int | None) -> RunResult:
    if run.system.run is not None:
        return _custom(run, resume_from, stop_after)
    return _loop(run, resume_from, stop_after)


def _restore(run: _Run, path: Path, template: Any) -> tuple[Any, int]:
    state, record = checkpoint.restore(path, template, run.system.load_state, system=run.system.name)
    step = int(record["step"])
    run.saved_step = step
    run.log(RESUME, step, {})
    return state, step


def _loop(run: _Run, resume_from: Path | None, stop_after: int | None) -> RunResult:
    system, cfg, seed = run.system, run.cfg, run.seed
    with run.guard("loading the data"):
        data = system.load_data(cfg, seed)
    with run.guard("initialising the state"):
        state = system.init(cfg, seed, data)
    done = 0
    if resume_from is not None:
        state, done = _restore(run, resume_from, state)
    saved = resume_from is not None  # the state at `done` is on disk
    target = cfg.steps if stop_after is None else min(cfg.steps, max(stop_after, done))
    bar = tqdm(total=cfg.steps, initial=done, unit="upd", desc=system.name, disable=not run.progress,
               dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
    try:
        while done < target:
            with run.guard(f"updating after step {done}", state, done, saved):
                new_state, info = system.step(state, data, cfg)
                values = _scalars(info, f"{system.name}.step's info")
            run.check_finite(values, state, done, saved)
            state, done, saved = new_state, done + cfg.inner_steps, False
            run.log("train", done, values)
            bar.update(cfg.inner_steps)
            shown = "loss" if "loss" in values else next(iter(values), None)  # else a system's first metric
            if shown is not None:
                bar.set_postfix({shown: f"{values[shown]:.4g}"}, refresh=False)
            if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                with run.guard(f"evaluating at step {done}", state, done, saved):
                    run.log("eval", done, _scalars(system.evaluate(state, data, cfg, eval_seed(seed, done)),
                                                   f"{system.name}.evaluate"))
            if run.due(done, target):
                run.save(state, done)
                saved = True
    except KeyboardInterrupt:
        bar.close()
        if not saved:
            run.save(state, done)
        run.summary("interrupted", done, {}, f"interrupted at step {done}; continue with "
                                             f"`athanor run --resume {run.run_dir}`")
        raise
    finally:
        bar.close()
    if not saved:
        run.save(state, done)
    if done < cfg.steps:
        return run.stopped(done)
    if run.progress:
        print(f"{system.name}: evaluating and rendering artifacts ...", file=sys.stderr)
    s = eval_seed(seed, done)
    with run.guard("evaluating the final state", state, done, True):
        if system.final is not None:  # metrics and artifacts from one pass when sampling is costly
            final, arts = system.final(state, data, cfg, s)
        else:
            final, arts = system.evaluate(state, data, cfg, s), system.artifacts(state, data, cfg, s)
    return run.finish(done, _scalars(final, f"{system.name}'s final metrics"), arts)


class RunContext:
    """What a system with its own loop (``run(cfg, ctx)``) gets from the core instead of choosing paths.

    - ``seed``: the run's seed; ``eval_seed(step)``: the seed of an evaluation at ``step``;
    - ``start_step``: 0 for a new run, the checkpoint's step when resuming; ``restore(template)``: the
      checkpointed state (restored into ``template``) when resuming, else None;
    - ``log(step, values, kind="train")``: one metrics record (non-finite values stop the run);
    - ``tick(state, step) -> bool``: call after each unit of work; checkpoints when a cadence is due and returns
      True when the run must stop now (``--stop-after``), after checkpointing.
    ``run`` returns (final metrics, artifacts) when it finished ``cfg.steps``, or None when ``tick`` said stop.
    """

    def __init__(self, run: _Run, resume_from: Path | None, stop_after: int | None):
        self._run, self._resume_from = run, resume_from
        self.seed = run.seed
        self.start_step = 0
        if resume_from is not None:
            self.start_step = int(checkpoint.read(resume_from)["step"])
        self._target = run.cfg.steps if stop_after is None else min(run.cfg.steps, max(stop_after, self.start_step))
        self._last = (None, self.start_step)

    def eval_seed(self, step: int) -> int:
        return eval_seed(self.seed, step)

    def restore(self, template: Any) -> Any:
        if self._resume_from is None:
            return None
        state, _ = _restore(self._run, self._resume_from, template)
        return state

    def log(self, step: int, values: dict, kind: str = "train") -> None:
        values = _scalars(values, f"{self._run.system.name}'s logged values")
        self._run.check_finite(values, *self._last, saved=True)
        self._run.log(kind, step, values)

    def tick(self, state: Any, step: int) -> bool:
        self._last = (state, step)
        stop = step >= self._target and step < self._run.cfg.steps
        if stop or self._run.due(step, self._run.cfg.steps) or step >= self._run.cfg.steps:
            self._run.save(state, step)
        return stop


def _custom(run: _Run, resume_from: Path | None, stop_after: int | None) -> RunResult:
    ctx = RunContext(run, resume_from, stop_after)
    with run.guard("running"):
        out = run.system.run(run.cfg, ctx)
    state, step = ctx._last
    if out is None:
        return run.stopped(step)
    final, arts = out
    return run.finish(step, _scalars(final, f"{run.system.name}.run's final metrics"), arts)
