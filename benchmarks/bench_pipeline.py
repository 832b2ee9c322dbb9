"""Orchestration rows, read from the timings the pipeline writes (``artifacts/timings.json``, and beside it
``timings-latest.json`` and the history ``timings/*.json``, see :func:`subnetworks.run.local.run_study`); nothing is
measured here, and without a finished demo run the rows say so instead of showing a number.

* rerun of a finished study: wall seconds of the latest run that executed no stage, over the latest run that
  executed every stage (else the latest that executed any);
* orchestration overhead: (notebook wall time − time spent inside the stages) / total wall time of the latest
  run that executed stages, as the pipeline records it (``orchestration_share``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .common import Row, seconds

NOT_MEASURED = "not measured (run the demo first)"


RERUN = "rerun of a finished demo study (nothing to do) / its first run"
OVERHEAD = "orchestration overhead share of total demo wall time"


def _not_measured(bench: str, title: str, source: str) -> Row:
    return Row(bench, title, "demo", NOT_MEASURED, "", None, "—", None, note=source)


def load_history(path: str | Path) -> list[dict[str, Any]]:
    """Every timings summary found: ``timings/*.json`` beside ``path`` (oldest first), then ``path`` itself and
    ``timings-latest.json`` beside it; a directory ``path`` is searched the same way."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    history = sorted((root / "timings").glob("*.json")) if (root / "timings").is_dir() else []
    extra = [f for f in (path, root / "timings-latest.json") if f.is_file()]
    entries, seen = [], set()
    for file in history + extra:
        try:
            entry = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(entry, dict) or "total_seconds" not in entry:
            continue
        fingerprint = json.dumps(entry, sort_keys=True)
        if fingerprint not in seen:
            seen.add(fingerprint)
            entries.append({**entry, "_file": str(file)})
    return entries


def _share(entry: dict[str, Any]) -> float:
    if "orchestration_share" in entry:
        return float(entry["orchestration_share"])
    return (float(entry["notebook_wall_seconds"]) - float(entry["stage_seconds"])) / float(entry["total_seconds"])


def run(path: str | Path | None, log=print) -> list[Row]:
    entries = load_history(path) if path else []
    worked = [e for e in entries if e.get("executed", 0) > 0]
    complete = [e for e in worked if e.get("executed") == e.get("stage_runs")]
    full = complete or worked
    reruns = [e for e in entries if e.get("executed", 1) == 0]
    source = f"from {path}" if path else "no --pipeline-timings given"
    rows = []
    if reruns:
        r = reruns[-1]
        f = full[-1] if full else None
        ratio = r["total_seconds"] / f["total_seconds"] if f else None
        rows.append(
            Row(
                "pipeline_rerun",
                RERUN,
                "demo",
                seconds(r["total_seconds"]),
                seconds(f["total_seconds"]) if f else "no full run recorded",
                ratio,
                "—",
                None,
                note=f"study {r.get('study', '?')!r}, {r.get('stage_runs', '?')} stage runs all skipped; "
                f"{source} ({r['_file']})",
                detail={"rerun": r, "full": f},
            )
        )
    else:
        rows.append(_not_measured("pipeline_rerun", RERUN, source))
    if full:
        f = full[-1]
        share = _share(f)
        rows.append(
            Row(
                "pipeline_overhead",
                OVERHEAD,
                "demo",
                seconds(share * f["total_seconds"]),
                seconds(f["total_seconds"]),
                share,
                "—",
                None,
                note=(
                    f"study {f.get('study', '?')!r}: {f.get('executed', '?')} stage runs executed, notebook wall "
                    f"{seconds(f.get('notebook_wall_seconds', float('nan')))}, inside stages "
                    f"{seconds(f.get('stage_seconds', float('nan')))}; {source} ({f['_file']})"
                ),
                detail={"full": f},
            )
        )
    else:
        rows.append(_not_measured("pipeline_overhead", OVERHEAD, source))
    for row in rows:
        log(f"  pipeline {row.bench}: {row.ours}")
    return rows
