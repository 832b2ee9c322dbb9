"""Dataclass fields that carry their own allowed values, and the strict conversion of raw YAML into dataclasses.

YAML and papermill both guess types (``-p lang nan`` arrives as a float); every value passes through
:func:`from_dict`, which rejects unknown keys, wrong types and values outside a field's range with a message naming
the field's full path (``tasks.ner.imp_train.learning_rate``) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Allowed numbers: ``low``/``high`` bounds (None: unbounded), each inclusive unless marked open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def __str__(self) -> str:
        low = "" if self.low is None else f"{'>' if self.low_open else '≥'} {self.low:g}"
        high = "" if self.high is None else f"{'<' if self.high_open else '≤'} {self.high:g}"
        return " and ".join(p for p in (low, high) if p)


def ranged(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A field whose numbers must lie in a range (checked by :func:`from_dict`)."""
    return dataclasses.field(default=default, metadata={"range": Range(low, high, low_open, high_open)})


def choice(default: str, *choices: str) -> Any:
    """A string field that must be one of ``choices`` (the default among them)."""
    return dataclasses.field(default=default, metadata={"choices": (default, *choices)})


def required_choice(*choices: str) -> Any:
    """A string field without a default that must be one of ``choices``."""
    return dataclasses.field(metadata={"choices": choices})


# YAML 1.1 (PyYAML) reads 1e-4, without a dot, as a string; numbers written so are numbers here
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
POSITIVE = {"low": 0, "low_open": True}
NON_NEGATIVE = {"low": 0}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the canonical Python type."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping of {_type_name(tp)} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin is dict:
        _, value_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {str(k): _coerce(v, value_tp, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is float:
        if isinstance(value, str) and _NUMBER.match(value):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r} ({type(value).__name__})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(
                f"{where} must be a string, got {value!r} ({type(value).__name__}); "
                "papermill guesses types: quote it, or pass it with -r instead of -p"
            )
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {where}")


def _check_allowed(value: Any, meta: Mapping[str, Any], where: str) -> None:
    allowed = meta.get("range")
    if allowed is not None and not allowed.admits(value):
        raise ConfigError(f"{where} is {value!r}: it must be {allowed}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where} {value!r} is unknown: use one of {list(choices)}")


def from_dict(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from ``data``, rejecting unknown keys, wrong types and disallowed values.

    ``where`` is the dotted path of ``data`` in its file (empty at the top), so errors name e.g. ``prune.schedule``."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} in {where or 'the top level'}: allowed are {sorted(known)}")
    values = {}
    for name, f in known.items():
        path = f"{where}.{name}" if where else name
        if name in data:
            values[name] = _coerce(data[name], hints[name], path)
            _check_allowed(values[name], f.metadata, path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path} is required")
    return cls(**values)


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def non_default(obj: Any) -> Any:
    """The fields of a dataclass that differ from their defaults, recursively; other values as they are.

    Leaving defaults out of run keys means a new field with a default keeps old run keys valid.
    """
    if isinstance(obj, Mapping):
        return {key: non_default(value) for key, value in obj.items()}
    if not dataclasses.is_dataclass(obj):
        return to_jsonable(obj)
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        out[f.name] = non_default(value)
    return out
