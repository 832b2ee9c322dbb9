"""The paper's published numbers and findings, read from ``paper.yaml`` (the one place they are written down)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .text import pct

PAPER_FILE = Path(__file__).with_name("paper.yaml")


@dataclass(frozen=True)
class Paper:
    """Foroutan et al. (EMNLP 2022) as the report quotes it."""

    citation: str
    model: str
    task_names: dict[str, str]  # task kind -> the paper's task (seqcls -> XNLI)
    average_overlap: dict[str, float]  # task kind -> the paper's average overlap
    findings: dict[str, str]  # section -> the sentence after "Paper:", with {fields} to fill
    sources: dict[str, str]  # where the numbers, their measure and the findings come from, and what was not checked

    @property
    def ranking(self) -> str:
        """The paper's average overlap per task, highest first: 'NER 94 % > XNLI 85 % > MLM 68 %'."""
        ranked = sorted(self.average_overlap.items(), key=lambda kv: -kv[1])
        return " > ".join(f"{self.task_names[kind]} {pct(value, digits=0)}" for kind, value in ranked)

    def finding(self, name: str, **fields: Any) -> str:
        """The paper's finding for a section, its {fields} filled (``ranking`` always available)."""
        return self.findings[name].format(ranking=self.ranking, **fields)


def load_paper(path: Path = PAPER_FILE) -> Paper:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    overlap = {kind: float(value) for kind, value in data["average_overlap"].items()}
    findings, sources = dict(data["findings"]), dict(data["sources"])
    return Paper(data["citation"], data["model"], dict(data["task_names"]), overlap, findings, sources)


PAPER = load_paper()
