"""Derived tables are computed once per :class:`~.load.Results` (figures, sentences and verdicts reuse them)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .load import Results


def memoised(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Derive a table once per :class:`Results`; hand out copies, so a caller may change what it gets."""

    @functools.wraps(fn)
    def wrapper(res: Results, *args):
        key = (fn.__name__, *args)
        if key not in res.cache:
            res.cache[key] = fn(res, *args)
        value = res.cache[key]
        return {k: v.copy() for k, v in value.items()} if isinstance(value, dict) else value.copy()

    return wrapper
