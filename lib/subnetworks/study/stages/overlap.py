"""Stage ``overlap``: every language's masks of one task compared on packed bits, at each transfer level and seed.

Writes ``pairwise.csv`` and ``shared.csv`` (Jaccard and agreement, overall, per layer and per module type, for the
IMP masks and each control overlapped across languages) and ``controls.csv`` (each IMP mask against each control of
its own run). Layers and module types come from the encoder family the masks record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ...core.maskio import read_metadata
from ...core.overlap import PackedMasks, pairwise, shared_by_all
from ...nn.families import FAMILIES, EncoderFamily, resolve_family
from ..environment import environment
from ..layout import IMP
from ..store import RunDir
from ..workspace import Workspace


def run_overlap(ws: Workspace, task: str) -> RunDir:
    """The overlap tables of one task; needs every language's finished IMP runs."""
    run = ws.layout.overlap_dir(task)
    if run.done:
        return run
    start = time.perf_counter()
    langs, layout = ws.study.task_languages(task), ws.layout
    for lang in langs:
        for seed in ws.study.seeds:
            layout.prune_dir(task, lang, seed).require_done(f"IMP for {task}/{lang} (seed {seed})")
    across = [IMP] + [c.name for c in ws.controls if c.across_languages]
    tables: dict[str, list[dict]] = {"pairwise": [], "shared": [], "controls": []}
    for seed in ws.study.seeds:
        for level in ws.study.transfer_levels:
            tag = {"task": task, "seed": seed, "sparsity": ws.study.sparsity_of(level)}
            imp = {lang: layout.mask_path(task, lang, seed, level) for lang in langs}
            groupings = _groupings(ws, imp[langs[0]])
            for kind in across:
                packed = PackedMasks.from_files(
                    {lang: layout.mask_path(task, lang, seed, level, kind) for lang in langs}
                )
                for by, key in groupings.items():
                    tables["pairwise"] += [{**tag, "masks": kind, "by": by, **r} for r in pairwise(packed, key)]
                    tables["shared"] += [{**tag, "masks": kind, "by": by, **r} for r in shared_by_all(packed, key)]
            for lang in langs:
                controls = {c.name: layout.mask_path(task, lang, seed, level, c.name) for c in ws.controls}
                tables["controls"] += [{**tag, "lang": lang, **row} for row in _against_controls(imp[lang], controls)]
    run.path.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        tmp = run.file(f".{name}.csv.tmp")
        pd.DataFrame(rows).to_csv(tmp, index=False)
        tmp.replace(run.file(f"{name}.csv"))
    run.write_json("env.json", environment(str(ws.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start})
    run.mark_done()
    return run


def _against_controls(imp: Path, controls: dict[str, Path]) -> list[dict]:
    """Jaccard of one IMP mask with each control mask of its run (each file read once), and the ties at the
    thresholds that chose them."""
    packed = PackedMasks.from_files({IMP: imp, **controls})
    with_imp = {r["b"]: r for r in pairwise(packed) if r["a"] == IMP}
    meta = read_metadata(imp)
    rows = []
    for name, path in controls.items():
        rows.append(
            {
                "control": name,
                "jaccard": with_imp[name]["jaccard"],
                "random_jaccard": with_imp[name]["random_jaccard"],
                "threshold": float(meta.get("threshold", "nan")),
                "ties_at_threshold": int(meta.get("ties_at_threshold", 0)),
                "control_ties_at_threshold": int(read_metadata(path).get("ties_at_threshold", 0)),
            }
        )
    return rows


def _groupings(ws: Workspace, mask: Path) -> dict[str, Callable[[str], str] | None]:
    """Overall, per layer and per module type, by the family the mask records."""
    family = mask_family(ws, mask)
    return {"all": None, "layer": family.layer_of, "module": family.module_type}


def mask_family(ws: Workspace, mask: Path) -> EncoderFamily:
    """The encoder family of a mask file: the ``model_type`` it records, else (masks written before masks recorded
    it) the first family whose module types cover every tensor it holds."""
    meta = read_metadata(mask)
    model_type = meta.get("model_type")
    if not model_type:
        names = json.loads(meta["shapes"])
        model_type = next((f.name for f in FAMILIES.values() if f.covers(names)), "")
    return resolve_family(ws.study.model, model_type, ws.study.prune.patterns)
