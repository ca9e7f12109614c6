"""Running many runs: one after another in this process, or as Ray tasks on this machine or a cluster.

``execute(jobs, fn, ...)`` calls ``fn(job.payload, progress)`` once per job and returns one :class:`Outcome`
per job, in the jobs' order. ``fn`` is a plain top-level function (``athanor.api.execute_run``): the core never
knows what a run is, which keeps it below the API (ARCHITECTURE.md), and Ray ships the function to its workers
by reference (module and name), so every node needs the same ``athanor`` installed and nothing else.

Design decisions:

- **Two executors, one contract.** ``local`` calls ``fn`` in this process (per-run progress bars on), ``ray``
  submits it as Ray tasks of one CPU each (per-run progress bars off). ``choose`` picks: ``auto`` is Ray when it
  is importable, more than one run is to be made, there is more than one CPU to spread them over, and the runs
  are not ``tiny`` (or whenever a cluster address is given); otherwise local. A single run gains nothing from
  Ray and pays its start-up; ``tiny`` runs take seconds, most of it imports and JIT compilation, which every
  Ray worker pays again, so Ray's start-up (several seconds) and the repeated compilations cost more than the
  parallelism saves (``benchmarks/bench_sweep.py``, BENCHMARKS.md "Sweeps"). This also keeps the test suite's
  tiny experiments in-process.
- **Retries are ours, not Ray's.** Tasks are submitted with ``max_retries=0`` and a failed job is submitted once
  more by this module, so every failure is reported (stderr and the caller's notes) before it is retried. ``fn``
  is expected to continue a run from its checkpoint when there is one, so a retry after a killed worker resumes
  rather than restarts. Failures that repeat by construction are not retried: a non-finite loss
  (``NonFiniteError``) and a config error (``ConfigError``, but not ``ResourceError``: memory on a shared node
  comes and goes). Both attempts are kept in ``Outcome.errors``.
- **One progress display.** A tqdm bar over jobs, and one line per finished or failed job, on stderr.
- **Ray is started here only if nobody else did.** Locally: ``num_cpus`` = ``workers`` (default: every core),
  no dashboard, a small object store (runs return a dict of floats; everything else goes to the run directory),
  worker logs forwarded to the driver (runs print little with their bars off, and a crashing worker's message
  should be seen). With ``address`` it connects to that cluster. If this module called ``ray.init`` it calls
  ``ray.shutdown`` when done, Ctrl-C included; a session the caller started is left running.
- **Threads per task: Ray's default, measured.** ``single_thread=True`` runs each task with
  ``SINGLE_THREAD_ENV`` (XLA's Eigen thread pool off, OpenMP and BLAS pools of one thread), the usual remedy for
  N tasks oversubscribing N cores. On the 2-core machine it was measured on (``benchmarks/bench_sweep.py``,
  BENCHMARKS.md "Sweeps") it was slower or no faster than Ray's default environment in all six pairs measured,
  so it is off by default and offered as ``--single-thread`` for many-core nodes, where it was not measured.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from athanor.core.errors import AthanorError, ConfigError, NonFiniteError, ResourceError

__all__ = ["Job", "Outcome", "EXECUTORS", "SINGLE_THREAD_ENV", "OBJECT_STORE_BYTES", "ray_available", "choose",
           "execute", "task_env", "ray_init_kwargs", "start_ray"]

EXECUTORS = ("auto", "local", "ray")
OBJECT_STORE_BYTES = 100 * 1024**2  # Ray's minimum is 75 MiB; results are small dicts
SINGLE_THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
RETRIES = 1


@dataclasses.dataclass(frozen=True)
class Job:
    key: str  # unique among the jobs: the run directory's name
    payload: dict  # what ``fn`` gets: plain, picklable values
    title: str  # shown in progress lines


@dataclasses.dataclass
class Outcome:
    job: Job
    result: dict | None  # what ``fn`` returned; None when every attempt failed
    attempts: int
    errors: list[str] = dataclasses.field(default_factory=list)  # one line per failed attempt
    wall_s: float = 0.0  # of the last attempt

    @property
    def ok(self) -> bool:
        return self.result is not None


def ray_available() -> bool:
    """Whether Ray can be imported (the ``dist`` extra), without importing it."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def choose(executor: str, n_jobs: int, address: str | None = None, workers: int | None = None,
           small: bool = False) -> str:
    """``local`` or ``ray`` for ``executor`` in EXECUTORS; a ConfigError naming the fix when Ray is asked for
    and missing, or when the options contradict each other. ``small``: the runs take seconds (the ``tiny``
    preset), so ``auto`` keeps them in-process."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}'; choose one of {', '.join(EXECUTORS)}")
    if address and executor == "local":
        raise ConfigError("--ray-address needs the Ray executor; drop --executor local")
    if executor == "ray" or address:
        if not ray_available():
            raise ConfigError("the Ray executor needs Ray: pip install 'athanor[dist]' (or run with --executor "
                              "local)")
        return "ray"
    if executor == "local":
        return "local"
    cpus = workers if workers is not None else (os.cpu_count() or 1)
    return "ray" if ray_available() and n_jobs > 1 and cpus > 1 and not small else "local"


def task_env(single_thread: bool = False) -> dict[str, str]:
    """Environment variables set for every Ray task: none by default; with ``single_thread``,
    ``SINGLE_THREAD_ENV`` with the caller's own XLA flags kept."""
    if not single_thread:
        return {}
    env = dict(SINGLE_THREAD_ENV)
    if os.environ.get("XLA_FLAGS"):
        env["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {env['XLA_FLAGS']}"
    return env


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ResourceError):
        return True
    return not isinstance(error, NonFiniteError | ConfigError)


def _describe(error: BaseException) -> str:
    """One line: an athanor error's own message, else the exception's type and first line."""
    if isinstance(error, AthanorError):
        return str(error)
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class _Display:
    """The one progress display: a bar over jobs and a line per finished or failed job."""

    def __init__(self, jobs: Sequence[Job], enabled: bool, executor: str):
        self.enabled = enabled
        self.total = len(jobs)
        self.done = 0
        self.bar = tqdm(total=len(jobs), unit="run", desc=f"runs ({executor})", disable=not enabled,
                        dynamic_ncols=True, file=sys.stderr, position=0, leave=True)

    def line(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def finished(self, outcome: Outcome) -> None:
        self.done += 1
        self.bar.update(1)
        if outcome.ok and self.enabled:
            self.line(f"[{self.done}/{self.total}] {outcome.job.title}: done in {outcome.wall_s:.1f} s"
                      + (f" (attempt {outcome.attempts})" if outcome.attempts > 1 else ""))
        elif not outcome.ok:
            self.line(f"athanor: [{self.done}/{self.total}] {outcome.job.title} failed after {outcome.attempts} "
                      f"attempt(s): {outcome.errors[-1]}")

    def failed_attempt(self, job: Job, attempt: int, message: str, retry: bool) -> None:
        tail = "; retrying once" if retry else ("; not retried: the same config and seed would fail the same way"
                                                 if attempt == 1 else "")
        self.line(f"athanor: {job.title}: attempt {attempt} failed: {message}{tail}")

    def close(self) -> None:
        self.bar.close()


def execute(jobs: Sequence[Job], fn: Callable[[dict, bool], dict], *, executor: str = "local",
            address: str | None = None, workers: int | None = None, progress: bool = True,
            single_thread: bool = False) -> list[Outcome]:
    """Run ``fn(job.payload, progress)`` for every job with ``executor`` ('local' or 'ray', see ``choose``);
    one Outcome per job, in order. A failed attempt is reported on stderr and retried once (see the module)."""
    if len(set(j.key for j in jobs)) != len(jobs):
        raise ValueError("job keys must be unique")
    if not jobs:
        return []
    display = _Display(jobs, progress, executor)
    try:
        if executor == "ray":
            outcomes = _execute_ray(jobs, fn, address, workers, display, single_thread)
        else:
            outcomes = _execute_local(jobs, fn, display, progress)
    finally:
        display.close()
    return [outcomes[j.key] for j in jobs]


def _execute_local(jobs: Sequence[Job], fn: Callable, display: _Display, progress: bool) -> dict[str, Outcome]:
    outcomes = {}
    for job in jobs:
        out = Outcome(job, None, 0)
        while out.result is None and out.attempts <= RETRIES:
            out.attempts += 1
            t0 = time.perf_counter()
            try:
                out.result = fn(job.payload, progress)
            except Exception as e:  # noqa: BLE001 - every failure is reported and the other runs go on
                if not isinstance(e, AthanorError):
                    traceback.print_exc(file=sys.stderr)  # a bug, not a failed run: keep where it happened
                out.errors.append(_describe(e))
                retry = _retryable(e) and out.attempts <= RETRIES
                display.failed_attempt(job, out.attempts, out.errors[-1], retry)
                if not retry:
                    break
            out.wall_s = time.perf_counter() - t0
        outcomes[job.key] = out
        display.finished(out)
    return outcomes


def ray_init_kwargs(address: str | None, workers: int | None) -> dict[str, Any]:
    """Arguments of ``ray.init``: a small local instance without dashboard, or a connection to ``address``."""
    import logging

    common = {"log_to_driver": True, "logging_level": logging.WARNING}
    if address:
        return {"address": address, **common}
    return {"num_cpus": workers or os.cpu_count() or 1, "include_dashboard": False,
            "object_store_memory": OBJECT_STORE_BYTES, **common}


def start_ray(address: str | None = None, workers: int | None = None) -> bool:
    """``ray.init`` with ``ray_init_kwargs`` unless Ray is already initialised; True if this call started it.
    A ConfigError names the fix when the cluster cannot be reached."""
    import warnings

    import ray

    if ray.is_initialized():
        return False
    try:
        with warnings.catch_warnings():
            # JAX warns on any fork in a process where it runs threads; Ray's processes exec at once
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            ray.init(**ray_init_kwargs(address, workers))
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ConfigError(f"could not start or reach {where} ({_describe(e)}); check --ray-address, or run "
                          f"with --executor local") from None
    return True


def _execute_ray(jobs: Sequence[Job], fn: Callable, address: str | None, workers: int | None,
                 display: _Display, single_thread: bool) -> dict[str, Outcome]:
    import ray

    started = start_ray(address, workers)
    env = task_env(single_thread)
    remote = ray.remote(fn).options(num_cpus=1, max_retries=0, retry_exceptions=False,
                                    runtime_env={"env_vars": env} if env else None)
    # as many tasks in flight as CPUs (or --workers), so a task's wall time is its run's, not its wait in a queue
    limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue = collections.deque((job, 1) for job in jobs)
    running: dict[Any, tuple[Job, int, float]] = {}
    outcomes = {job.key: Outcome(job, None, 0) for job in jobs}
    try:
        while queue or running:
            while queue and len(running) < limit:
                job, attempt = queue.popleft()
                running[remote.remote(job.payload, False)] = (job, attempt, time.perf_counter())
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job, attempt, t0 = running.pop(ref)
                out = outcomes[job.key]
                out.attempts, out.wall_s = attempt, time.perf_counter() - t0
                try:
                    out.result = ray.get(ref)
                except ray.exceptions.RayError as e:
                    first = (str(e).strip().splitlines() or [""])[0][:200]
                    cause = getattr(e, "cause", None) if isinstance(e, ray.exceptions.RayTaskError) else None
                    if cause is not None:  # the run raised: its own message
                        out.errors.append(_describe(cause))
                    elif isinstance(e, ray.exceptions.RayTaskError):
                        out.errors.append(first)
                    else:  # the worker process died: killed, out of memory, node lost
                        out.errors.append(f"the Ray worker running it died ({type(e).__name__}: {first})")
                    retry = (cause is None or _retryable(cause)) and attempt <= RETRIES
                    display.failed_attempt(job, attempt, out.errors[-1], retry)
                    if retry:
                        queue.appendleft((job, attempt + 1))
                        continue
                display.finished(out)
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
    return outcomes
