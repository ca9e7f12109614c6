"""The system contract: what a system module exports, written once, checked, and bound to its defaults.

A *system* is one module (``systems/<family>/<method>.py``) that the run loop drives. It exports:

Required
    Config                           a frozen, flat dataclass subclassing ``core.config.TrainConfig``
                                     (defaults = the source's settings, one comment each naming the source)
    PRESETS                          {"tiny": {...}, "quick": {...}, "full": {...}}: overrides of Config
    load_data(cfg, seed) -> data     built once per run (arrays, or None); ``seed`` is the run's seed
    init(cfg, seed, data) -> state   the initial state; the system makes its own framework key from ``seed``
    step(state, data, cfg) -> (state, info)
                                     ``cfg.inner_steps`` updates (gradient steps, generations, ...); ``info`` maps
                                     names to scalars (means over the updates), ``loss`` among them if there is one;
                                     the input state must stay as it was (the run loop checkpoints it if the update
                                     turns non-finite): JAX states are immutable, a PyTorch system copies first
    evaluate(state, data, cfg, seed) -> {name: float}
    artifacts(state, data, cfg, seed) -> {name: artifact}
                                     uint8 images (H, W, 3|4), uint8 videos (T, H, W, 3|4), ``Heatmap`` tables,
                                     ``Svg`` drawings, ``TextTable`` tables of text (``core.artifacts``)

Optional (the default is used when a module does not define the name)
    final(state, data, cfg, seed) -> (metrics, artifacts)
                                     both from one pass, for the end of a run when sampling is expensive;
                                     default: ``evaluate`` then ``artifacts`` with the same seed
    save_state(state) -> bytes       default: Flax msgpack (``core.jaxtools``); a PyTorch system supplies its own
    load_state(template, payload) -> state
                                     restore into ``template`` (a fresh ``init``); default: Flax msgpack
    block(tree) -> None              wait until asynchronous work is done, for timing; default: JAX's
    runtime_info() -> dict           framework, version and devices, recorded in every run's config.json;
                                     default: JAX's
    bench_baseline(cfg) -> dict      another implementation of the same update timed in the same process by
                                     ``athanor bench``: {"unit", "per_s", ...}; default: none
    THROUGHPUT_UNIT: str             the natural unit of work; default "updates"
    items_per_update(cfg) -> float   how many THROUGHPUT_UNITs one update is (a generation of 256 creatures:
                                     256); default 1
    run(cfg, ctx) -> (metrics, artifacts) | None
                                     the escape hatch for a system that does not fit a step loop: it does its
                                     own loop and uses ``ctx`` (``core.runloop.RunContext``) to log, checkpoint,
                                     resume and stop; it then needs only Config, PRESETS and run.

Rules the contract test (tests/test_contract.py) enforces beyond the names: ``tiny`` makes at least two ``step``
calls; ``steps``, ``eval_every`` and ``ckpt_every`` are multiples of ``inner_steps``; a finished run leaves at
least one PNG; every metric is a Python float; a run is deterministic for its seed; and a run stopped half-way
and resumed ends with the same metrics as one that never stopped. ARCHITECTURE.md walks through adding one.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from athanor.core import jaxtools
from athanor.core.config import TrainConfig

__all__ = ["System", "Hooks", "REQUIRED", "OPTIONAL", "DEFAULTS", "BoundSystem", "check", "bind"]

PRESET_NAMES = ("tiny", "quick", "full")


@runtime_checkable
class System(Protocol):
    """The required exports of a step-loop system (see the module docstring)."""

    Config: type
    PRESETS: Mapping[str, Mapping[str, Any]]

    def load_data(self, cfg: Any, seed: int) -> Any: ...

    def init(self, cfg: Any, seed: int, data: Any) -> Any: ...

    def step(self, state: Any, data: Any, cfg: Any) -> tuple[Any, Mapping[str, Any]]: ...

    def evaluate(self, state: Any, data: Any, cfg: Any, seed: int) -> dict[str, float]: ...

    def artifacts(self, state: Any, data: Any, cfg: Any, seed: int) -> dict[str, Any]: ...


class Hooks(Protocol):
    """The optional exports (see the module docstring); ``bind`` fills in the defaults."""

    THROUGHPUT_UNIT: str

    def final(self, state: Any, data: Any, cfg: Any, seed: int) -> tuple[dict[str, float], dict[str, Any]]: ...

    def save_state(self, state: Any) -> bytes: ...

    def load_state(self, template: Any, payload: bytes) -> Any: ...

    def block(self, tree: Any) -> None: ...

    def runtime_info(self) -> dict: ...

    def bench_baseline(self, cfg: Any) -> dict: ...

    def items_per_update(self, cfg: Any) -> float: ...

    def run(self, cfg: Any, ctx: Any) -> tuple[dict[str, float], dict[str, Any]] | None: ...


def _members(proto: type) -> dict[str, int | None]:
    """Protocol member name -> number of positional parameters (None for a plain attribute)."""
    out: dict[str, int | None] = dict.fromkeys(proto.__annotations__)
    for name, fn in vars(proto).items():
        if not name.startswith("_") and inspect.isfunction(fn):
            out[name] = len(inspect.signature(fn).parameters) - 1  # without self
    return out


REQUIRED = _members(System)
OPTIONAL = _members(Hooks)
RETIRED = {"BASELINE": "bench_baseline", "items_per_step": "items_per_update"}


def _arity(fn: Callable) -> int | None:
    """Positional parameters ``fn`` accepts (None if it takes *args, so any count fits)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def check(module: Any) -> list[str]:
    """Everything about ``module`` that breaks the contract, each as a sentence naming the fix; [] if it conforms.

    Checks presence and call signatures of the required names (only Config, PRESETS and run for a ``run``
    system), the optional hooks that are defined, the Config class, and that every preset resolves.
    """
    from athanor.core import config as C
    from athanor.core.errors import ConfigError

    problems: list[str] = []
    has_run = callable(getattr(module, "run", None))
    needed = ("Config", "PRESETS") if has_run else tuple(REQUIRED)
    for name in needed:
        if not hasattr(module, name):
            problems.append(f"missing required '{name}' (see athanor/systems/contract.py)")
    for name, want in {**REQUIRED, **OPTIONAL}.items():
        value = getattr(module, name, None)
        if value is None or want is None:
            continue
        if not callable(value):
            problems.append(f"'{name}' must be a function taking {want} arguments")
            continue
        got = _arity(value)
        if got is not None and got != want:
            problems.append(f"'{name}' takes {got} positional arguments, the contract says {want} "
                            f"(see athanor/systems/contract.py)")
    unit = getattr(module, "THROUGHPUT_UNIT", "updates")
    if not isinstance(unit, str) or not unit:
        problems.append("'THROUGHPUT_UNIT' must be a non-empty string such as 'evaluations'")
    for old, new in RETIRED.items():
        if hasattr(module, old):
            problems.append(f"'{old}' is not part of the contract; rename it to '{new}'")
    cfg_cls = getattr(module, "Config", None)
    if cfg_cls is not None:
        if not (isinstance(cfg_cls, type) and dataclasses.is_dataclass(cfg_cls)
                and cfg_cls.__dataclass_params__.frozen):
            problems.append("'Config' must be a frozen dataclass (@dataclasses.dataclass(frozen=True))")
        elif not issubclass(cfg_cls, TrainConfig):
            problems.append("'Config' must subclass athanor.core.config.TrainConfig")
    presets = getattr(module, "PRESETS", None)
    if presets is not None:
        missing = [p for p in PRESET_NAMES if p not in presets]
        if missing:
            problems.append(f"'PRESETS' lacks {', '.join(missing)}: every system has tiny, quick and full")
        elif cfg_cls is not None and not problems:
            for p in PRESET_NAMES:
                try:
                    C.resolve(cfg_cls, presets, p)
                except ConfigError as e:
                    problems.append(f"preset '{p}' does not resolve: {e}")
    return problems


@dataclasses.dataclass(frozen=True)
class BoundSystem:
    """A system module with every optional hook resolved to the module's own or the default: what the run loop,
    ``athanor bench`` and the run readers call. ``name`` is the registry name (recorded in checkpoints)."""

    name: str
    module: ModuleType | Any
    Config: type
    PRESETS: Mapping[str, Mapping[str, Any]]
    load_data: Callable | None
    init: Callable | None
    step: Callable | None
    evaluate: Callable | None
    artifacts: Callable | None
    final: Callable | None
    save_state: Callable[[Any], bytes]
    load_state: Callable[[Any, bytes], Any]
    block: Callable[[Any], None]
    runtime_info: Callable[[], dict]
    bench_baseline: Callable | None
    THROUGHPUT_UNIT: str
    items_per_update: Callable[[Any], float]
    run: Callable | None


DEFAULTS: dict[str, Any] = {
    "final": None, "save_state": jaxtools.save_state, "load_state": jaxtools.load_state, "block": jaxtools.block,
    "runtime_info": jaxtools.runtime_info, "bench_baseline": None, "THROUGHPUT_UNIT": "updates",
    "items_per_update": lambda cfg: 1.0, "run": None,
}


def bind(module: Any, name: str) -> BoundSystem:
    """``module`` as a BoundSystem named ``name``; a ConfigError lists every contract problem."""
    from athanor.core.errors import ConfigError

    problems = check(module)
    if problems:
        where = getattr(module, "__name__", repr(module))
        raise ConfigError(f"system '{name}' ({where}) does not meet the contract: " + "; ".join(problems))
    values = {field: getattr(module, field, DEFAULTS.get(field)) for field in REQUIRED.keys() | OPTIONAL.keys()}
    return BoundSystem(name=name, module=module, **values)
