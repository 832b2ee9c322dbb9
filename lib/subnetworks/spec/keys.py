"""The canonical run key: what makes two runs the same computation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .fields import non_default


def run_key(stage: str, version: int, fields: Any, upstream: Mapping[str, str] | None = None) -> str:
    """First 12 hex digits of sha256 over canonical JSON of the stage, its version, its fields and upstream keys.

    Fields equal to their defaults are left out, so adding a field with a default keeps every old key valid."""
    payload = {"stage": stage, "version": version, "fields": non_default(fields), "upstream": dict(upstream or {})}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
