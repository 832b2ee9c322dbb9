"""The one grid of a study's runs: what the pipeline executes, the report reads, ``cost`` and ``status`` count.

Built once from a :class:`~.layout.Layout`, in dependency order (data → prune → transfer, overlap). Every run has a
label that names it for people and job records (``prune/ner/en/seed57``, ``transfer/ner/en/sp0.5/seed57``) and
the labels of the runs it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .layout import Layout
from .store import RunDir

STAGES = ("data", "prune", "transfer", "overlap")


@dataclass(frozen=True)
class Run:
    """One stage run: which stage, on what, where its artefacts go, and which runs it needs."""

    stage: str
    task: str
    dir: RunDir
    label: str
    lang: str = ""  # data and prune: the language; transfer: the source language; overlap: none
    seed: int | None = None  # prune and transfer
    level: int | None = None  # transfer: the IMP level of the source's sub-network
    after: tuple[str, ...] = ()


def _label(stage: str, *parts: str) -> str:
    return "/".join((stage, *parts))


class Grid:
    """Every run of a study, in an order that respects dependencies."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.runs: list[Run] = list(self._enumerate())
        self._by_label = {run.label: run for run in self.runs}

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, label: str) -> Run:
        return self._by_label[label]

    def stage(self, name: str) -> list[Run]:
        return [run for run in self.runs if run.stage == name]

    def _enumerate(self) -> Iterator[Run]:
        study, layout = self.layout.study, self.layout
        for task in study.tasks:
            for lang in study.task_languages(task):
                yield Run("data", task, layout.data_dir(task, lang), _label("data", task, lang), lang)
        for task in study.tasks:
            for lang in study.task_languages(task):
                for seed in study.seeds:
                    yield Run(
                        "prune",
                        task,
                        layout.prune_dir(task, lang, seed),
                        prune_label(task, lang, seed),
                        lang,
                        seed,
                        after=(_label("data", task, lang),),
                    )
        for task in study.tasks:
            langs = study.task_languages(task)
            for level in study.transfer_levels if study.transfer.enabled else ():
                for source in langs:
                    for seed in study.transfer_seeds:
                        needs = (prune_label(task, source, seed), *(_label("data", task, t) for t in langs))
                        label = _label("transfer", task, source, f"sp{study.sparsity_of(level):g}", f"seed{seed}")
                        yield Run(
                            "transfer",
                            task,
                            layout.transfer_dir(task, source, level, seed),
                            label,
                            source,
                            seed,
                            level,
                            needs,
                        )
            prunes = tuple(prune_label(task, lang, seed) for lang in langs for seed in study.seeds)
            corpus = study.similarity.corpus  # its parallel sentences: another task's data runs (its own precede IMP)
            langs_read = layout.corpus_languages(task) if corpus and corpus != task else ()
            texts = tuple(_label("data", corpus, lang) for lang in langs_read)
            yield Run("overlap", task, layout.overlap_dir(task), _label("overlap", task), after=prunes + texts)


def prune_label(task: str, lang: str, seed: int) -> str:
    return _label("prune", task, lang, f"seed{seed}")
