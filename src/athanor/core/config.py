"""Configs: frozen flat dataclasses, presets, and resolution with clear errors.

Resolution order: dataclass defaults -> preset -> experiment overrides -> ``--set k=v``.
Every field may carry bounds or choices through :func:`param`; violations raise :class:`ConfigError`
naming the key, the value and the fix. Unknown keys suggest the nearest valid name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from athanor.core.errors import ConfigError

__all__ = ["ConfigError", "TrainConfig", "param", "resolve", "validate", "to_dict", "from_dict"]


def param(default: Any, *, lo: float | None = None, hi: float | None = None,
          choices: Sequence[Any] | None = None, doc: str = "") -> Any:
    """A config field with optional bounds (inclusive) or a set of allowed values."""
    meta = {"lo": lo, "hi": hi, "choices": tuple(choices) if choices is not None else None, "doc": doc}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Run-loop fields shared by every trained system (a system's Config subclasses this)."""

    steps: int = param(1000, lo=1, doc="total updates (gradient steps or generations)")
    inner_steps: int = param(100, lo=1, doc="updates fused into one jitted `step` call (lax.scan)")
    eval_every: int = param(0, lo=0, doc="updates between evaluations; 0 = only at the end")
    ckpt_every: int = param(0, lo=0, doc="updates between checkpoints; 0 = only at the end")
    ckpt_every_s: float = param(300.0, lo=0.0, doc="seconds of wall time between checkpoints; 0 = off")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def nearest(name: str, options: Sequence[str]) -> str | None:
    hits = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return hits[0] if hits else None


def _unknown_key(cls: type, key: str, where: str) -> ConfigError:
    hint = nearest(key, field_names(cls))
    tail = f"; did you mean '{hint}'?" if hint else f"; valid keys: {', '.join(field_names(cls))}"
    return ConfigError(f"unknown config key '{key}' ({where}) for {cls.__module__}.{cls.__name__}{tail}")


def _base_type(tp: Any) -> Any:
    """int | None -> int (None handled separately); plain types pass through."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def _allows_none(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def parse_value(cls: type, key: str, text: str) -> Any:
    """Parse a ``--set`` string into the field's declared type."""
    hints = typing.get_type_hints(cls)
    if key not in hints:
        raise _unknown_key(cls, key, "--set")
    tp = hints[key]
    base = _base_type(tp)
    if _allows_none(tp) and text.lower() in ("none", "null"):
        return None
    try:
        if base is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if base is int:
            if text.lstrip("+-").isdigit():
                return int(text)
            value = float(text)  # accepts 1e5 and 2000.0, refuses 1.5
            if not value.is_integer():
                raise ValueError(text)
            return int(value)
        if base is float:
            return float(text)
        if typing.get_origin(base) is tuple or base is tuple:
            parsed = json.loads(text if text.startswith("[") else f"[{text}]")
            return tuple(parsed)
        return text
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(
            f"config key '{key}' expects {getattr(base, '__name__', base)}, got '{text}'"
        ) from None


def _check_value(cls: type, f: dataclasses.Field, value: Any) -> None:
    hints = typing.get_type_hints(cls)
    tp = hints[f.name]
    if value is None:
        if not _allows_none(tp):
            raise ConfigError(f"config key '{f.name}' may not be None")
        return
    base = _base_type(tp)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(base, True)
    if not ok:
        raise ConfigError(
            f"config key '{f.name}' expects {base.__name__}, got {type(value).__name__} {value!r}"
        )
    if base is float and not math.isfinite(value):
        raise ConfigError(f"config key '{f.name}' must be a finite number, got {value!r}")
    meta = f.metadata
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(
            f"config key '{f.name}' must be one of {list(meta['choices'])}, got {value!r}"
        )
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and value < lo:
        raise ConfigError(f"config key '{f.name}' = {value} is below its minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key '{f.name}' = {value} is above its maximum {hi}")


def validate(cfg: Any) -> Any:
    """Check every field's type and range, and the run-loop cadence; return cfg unchanged."""
    cls = type(cfg)
    for f in dataclasses.fields(cls):
        _check_value(cls, f, getattr(cfg, f.name))
    if isinstance(cfg, TrainConfig):
        for name in ("steps", "eval_every", "ckpt_every"):
            value = getattr(cfg, name)
            if value % cfg.inner_steps:
                raise ConfigError(
                    f"config key '{name}' = {value} must be a multiple of inner_steps = {cfg.inner_steps}; "
                    f"set both, e.g. --set inner_steps={max(1, math.gcd(value, cfg.inner_steps))}"
                )
    return cfg


def apply(cfg: Any, overrides: Mapping[str, Any], where: str) -> Any:
    cls = type(cfg)
    names = set(field_names(cls))
    for key in overrides:
        if key not in names:
            raise _unknown_key(cls, key, where)
    if not overrides:
        return cfg
    coerced = {}
    hints = typing.get_type_hints(cls)
    for key, value in overrides.items():
        if isinstance(value, list):
            value = tuple(value)
        if _base_type(hints[key]) is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        coerced[key] = value
    return dataclasses.replace(cfg, **coerced)


def parse_sets(cls: type, items: Sequence[str]) -> dict[str, Any]:
    """Parse ``["lr=1e-3", "steps=10"]`` into typed values."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"malformed --set '{item}': expected key=value, e.g. --set steps=1000")
        key, text = item.split("=", 1)
        out[key.strip()] = parse_value(cls, key.strip(), text.strip())
    return out


def resolve(cls: type, presets: Mapping[str, Mapping[str, Any]], preset: str | None = None,
            experiment: Mapping[str, Any] | None = None, sets: Sequence[str] = (),
            base: Mapping[str, Any] | None = None) -> Any:
    """defaults -> base (a registry entry's fixed overrides) -> preset -> experiment -> --set; validated."""
    cfg = apply(cls(), base or {}, "system definition")
    if preset is not None:
        if preset not in presets:
            hint = nearest(preset, list(presets))
            extra = f"; did you mean '{hint}'?" if hint else ""
            raise ConfigError(f"unknown preset '{preset}'; available: {', '.join(presets)}{extra}")
        cfg = apply(cfg, presets[preset], f"preset '{preset}'")
    cfg = apply(cfg, experiment or {}, "experiment")
    cfg = apply(cfg, parse_sets(cls, sets), "--set")
    return validate(cfg)


def to_dict(cfg: Any) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config saved by :func:`to_dict` (unknown keys are an error: a stale run dir)."""
    return validate(apply(cls(), dict(data), "saved config"))
