"""Stage ``overlap``: every language's masks of one task compared on packed bits, at each transfer level and seed.

Writes, each overall, per layer and per module type (from the encoder family the masks record):

* ``pairwise.csv`` and ``shared.csv``: Jaccard and agreement of the IMP masks and of each control overlapped
  across languages, beside the nulls of both random controls (layer-wise and global);
* ``controls.csv``: each IMP mask against each control mask of its own run;
* ``departures.csv``: pairs of (language, seed) masks — their kind in ``pair`` (same language at another seed,
  another language at the same seed, another language at another seed) — with their departures from the
  pre-trained-magnitude mask P (gained, lost), their nulls, and the masks' excess overlap over what P and the
  departure counts predict; ``departure_counts.csv`` per (language, seed);
* ``similarity.csv`` where ``similarity.corpus`` names a task: per-layer CKA of the languages' representations of
  parallel sentences under the dense model, the IMP masks and the controls (:mod:`.similarity`).

The band of the departures' second null holds the weights whose pre-trained magnitude lies within δ of P's
threshold, δ being the largest 99.9th percentile of |θ_T − θ0| among the languages' trainings that chose the masks
(recorded in each IMP mask's metadata): weights farther from the threshold than training moved nearly any weight
cannot have crossed it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from ...core.departures import Departures, departure_counts, departure_pairs
from ...core.maskfile import read_metadata
from ...core.masks import Mask
from ...core.overlap import PackedMasks, pairwise, shared_by_all
from ...nn.families import FAMILIES, EncoderFamily, resolve_family
from ..environment import environment
from ..layout import IMP, pair_kind
from ..store import RunDir
from ..workspace import Workspace
from .finetune import pretrained_for
from .similarity import similarity_rows

PRETRAINED = "pretrained"
TABLES = ("pairwise", "shared", "controls", "departures", "departure_counts", "similarity")


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
    tables: dict[str, list[dict]] = {name: [] for name in TABLES}
    seconds: dict[str, float] = {}  # of the parts timed on their own
    for seed in ws.study.seeds:
        for level in ws.study.transfer_levels:
            tag = {"task": task, "seed": seed, "sparsity": ws.study.sparsity_of(level)}
            imp = {lang: layout.mask_path(task, lang, seed, level) for lang in langs}
            groupings = _groupings(ws, imp[langs[0]])
            _across_languages(ws, task, seed, level, groupings, tag, tables)
            for lang in langs:
                controls = {c.name: layout.mask_path(task, lang, seed, level, c.name) for c in ws.controls}
                tables["controls"] += [{**tag, "lang": lang, **row} for row in _against_controls(imp[lang], controls)]
    if any(c.name == PRETRAINED for c in ws.controls):
        theta0 = _theta0(ws, task, langs[0], ws.study.seeds[0])
        for level in ws.study.transfer_levels:
            groupings = _groupings(ws, layout.mask_path(task, langs[0], ws.study.seeds[0], level))
            _departures(ws, task, level, theta0, groupings, tables)
    if ws.study.similarity.corpus:
        similarity_start = time.perf_counter()
        tables["similarity"] = similarity_rows(ws, task)
        seconds["similarity"] = time.perf_counter() - similarity_start
    _write_tables(run, tables)
    run.write_json("env.json", environment(str(ws.device)))
    run.write_json("timing.json", {"seconds": time.perf_counter() - start, **seconds})
    run.mark_done()
    return run


def _across_languages(
    ws: Workspace, task: str, seed: int, level: int, groupings: dict, tag: dict, tables: dict
) -> None:
    langs = ws.study.task_languages(task)
    for kind in [IMP] + [c.name for c in ws.controls if c.across_languages]:
        paths = {lang: ws.layout.mask_path(task, lang, seed, level, kind) for lang in langs}
        packed = PackedMasks.from_files(paths)
        for by, key in groupings.items():
            tables["pairwise"] += [{**tag, "masks": kind, "by": by, **r} for r in pairwise(packed, key)]
            tables["shared"] += [{**tag, "masks": kind, "by": by, **r} for r in shared_by_all(packed, key)]


def _departures(ws: Workspace, task: str, level: int, theta0: dict, groupings: dict, tables: dict) -> None:
    """Every (language, seed) mask's departures from P (the same mask at every seed and in every language: θ0's
    magnitudes) and the excess overlap of every pair of them, each pair named by its kind (:func:`pair_kind`)."""
    study = ws.study
    imp = {
        _label(lang, seed): ws.layout.mask_path(task, lang, seed, level)
        for lang in study.task_languages(task)
        for seed in study.seeds
    }
    p_path = ws.layout.mask_path(task, study.task_languages(task)[0], study.seeds[0], level, PRETRAINED)
    masks = PackedMasks.from_files(imp)
    threshold = float(read_metadata(p_path)["threshold"])
    halfwidth = max(float(read_metadata(path).get("movement_q999", "nan")) for path in imp.values())
    band = {n: ((theta0[n].abs() - threshold).abs() <= halfwidth) for n in masks.segments}
    band_words = PackedMasks.pack({"band": Mask(band)}).words[0]
    d = Departures(masks, PackedMasks.from_files({"p": p_path}).words[0], band_words)
    tag = {"task": task, "sparsity": study.sparsity_of(level), "threshold_p": threshold, "band_halfwidth": halfwidth}
    for by, key in groupings.items():
        for row in departure_pairs(d, key):
            (a, seed_a), (b, seed_b) = _unlabel(row["a"]), _unlabel(row["b"])
            names = {"a": a, "b": b, "seed_a": seed_a, "seed_b": seed_b, "pair": pair_kind(a, seed_a, b, seed_b)}
            tables["departures"].append({**tag, "by": by, **row, **names})
        for row in departure_counts(d, key):
            lang, seed = _unlabel(row["mask"])
            tables["departure_counts"].append({**tag, "by": by, **row, "mask": lang, "seed": seed})


def _label(lang: str, seed: int) -> str:
    return f"{lang}@{seed}"


def _unlabel(label: str) -> tuple[str, int]:
    lang, seed = label.rsplit("@", 1)
    return lang, int(seed)


def _theta0(ws: Workspace, task: str, lang: str, seed: int) -> dict[str, torch.Tensor]:
    """The pre-trained weights of the encoder (base-encoder names), for the band around P's threshold."""
    model, theta0 = pretrained_for(ws, task, lang, seed)
    prefix = model.base_model_prefix + "."
    return {name[len(prefix) :]: value for name, value in theta0.items() if name.startswith(prefix)}


def _against_controls(imp: Path, controls: dict[str, Path]) -> list[dict]:
    """Jaccard of one IMP mask with each control mask of its run (each file read once), with that pair's nulls, and
    the ties at the thresholds that chose them."""
    packed = PackedMasks.from_files({IMP: imp, **controls})
    with_imp = {r["b"]: r for r in pairwise(packed) if r["a"] == IMP}
    meta = read_metadata(imp)
    rows = []
    for name, path in controls.items():
        row = with_imp[name]
        rows.append(
            {
                "control": name,
                "jaccard": row["jaccard"],
                "expected_layerwise_jaccard": row["expected_layerwise_jaccard"],
                "expected_global_jaccard": row["expected_global_jaccard"],
                "threshold": float(meta.get("threshold", "nan")),
                "ties_at_threshold": int(meta.get("ties_at_threshold", 0)),
                "control_ties_at_threshold": int(read_metadata(path).get("ties_at_threshold", 0)),
            }
        )
    return rows


def _write_tables(run: RunDir, tables: dict[str, list[dict]]) -> None:
    run.path.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        tmp = run.file(f".{name}.csv.tmp")
        pd.DataFrame(rows).to_csv(tmp, index=False)
        tmp.replace(run.file(f"{name}.csv"))


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
