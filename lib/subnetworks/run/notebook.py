"""What the stage notebooks share: parameter validation, the workspace, and tables read from a run directory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import datasets
import pandas as pd
import torch

from .. import demo  # noqa: F401  (registers the offline demo's model and data sources)
from ..report.load import stage_table_rows
from ..report.similarity import cross_language_pairs
from ..spec import validate_notebook_params
from ..study.store import RunDir
from ..study.workspace import Workspace


def setup(notebook: str, namespace: Mapping[str, Any]) -> tuple[Any, Workspace]:
    """Validate the notebook's parameters (its ``globals()``) and make the workspace of the study they name."""
    params, study = validate_notebook_params(notebook, namespace)
    if not study.runtime.progress:
        datasets.disable_progress_bars()
    if study.runtime.num_threads:
        torch.set_num_threads(study.runtime.num_threads)
    return params, Workspace.create(study, params.artifacts)


def data_examples(run: RunDir, n: int = 5) -> pd.DataFrame:
    """The first ``n`` training examples of a data run, as loaded (before tokenisation)."""
    raw = datasets.load_from_disk(str(run.file("raw")))["train"]
    return raw.select(range(min(n, len(raw)))).to_pandas()


def levels_table(run: RunDir) -> pd.DataFrame:
    """One row per IMP level: sparsity, measured density, score and training cost."""
    levels = pd.DataFrame(run.read_json("metrics.json")["levels"])
    columns = [
        c
        for c in ("level", "sparsity", "density", "score", "accuracy", "f1", "perplexity", "steps", "train_seconds")
        if c in levels
    ]
    return levels[columns].set_index("level")


def transfer_table(run: RunDir) -> pd.DataFrame:
    """One row per fine-tuned (mask, target): the source's sub-network on every target, and the random control."""
    rows = pd.DataFrame(run.read_json("metrics.json"))
    return rows[["mask", "source", "target", "sparsity", "density", "score", "steps"]]


def overlap_matrix(run: RunDir, sparsity: float, seed: int, measure: str = "jaccard") -> pd.DataFrame:
    """Symmetric language × language matrix of one overlap measure between the IMP masks."""
    rows = pd.read_csv(run.file("pairwise.csv"))
    rows = rows[(rows.masks == "imp") & (rows.by == "all") & (rows.sparsity == sparsity) & (rows.seed == seed)]
    both = pd.concat([rows.rename(columns={"a": "b", "b": "a"}), rows])
    matrix = both.pivot_table(index="a", columns="b", values=measure)
    for lang in matrix.index:
        matrix.loc[lang, lang] = 1.0
    return matrix


def shared_table(run: RunDir) -> pd.DataFrame:
    rows = pd.read_csv(run.file("shared.csv"))
    return rows[rows.by == "all"].drop(columns=["by", "group"]).set_index(["sparsity", "seed", "masks"])


def similarity_table(run: RunDir) -> pd.DataFrame | str:
    """Mean CKA across languages per model and sparsity (a column per layer; the pairs the report counts), beside
    the shuffled null's mean 95th percentile; a sentence where the study does not compute representation
    similarity."""
    rows = pd.DataFrame(stage_table_rows(run.file("similarity.csv")))
    if rows.empty:
        return "representation similarity not computed: similarity.corpus is empty in the params"
    cross = cross_language_pairs(rows)
    table = cross.pivot_table(index=["masks", "sparsity"], columns="layer", values="cka")
    table["null_q95"] = cross.groupby(["masks", "sparsity"])["null_q95"].mean()
    return table.round(3)
