"""Batches for the trainer: dynamic padding, and MLM's masked positions drawn from a seeded generator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Collator:
    """Pads a list of encoded examples to the longest one (dynamic padding: the strings are short).

    For MLM it also masks tokens (80 % [MASK], 10 % random, 10 % unchanged) with its own generator, so a
    fixed seed gives the same masked positions every time: training is reproducible. Examples masked beforehand
    (:meth:`premasked`, for evaluation) keep their masks and are only padded.
    """

    kind: str
    pad_id: int
    mask_id: int | None = None
    special_ids: tuple[int, ...] = ()
    vocab_size: int = 0
    mlm_probability: float = 0.15
    generator: torch.Generator | None = None

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), longest), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        batch: dict[str, torch.Tensor] = {}
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, :n] = torch.as_tensor(e["input_ids"])
            attention[i, :n] = 1
        if "token_type_ids" in examples[0]:
            types = torch.zeros_like(ids)
            for i, e in enumerate(examples):
                types[i, : len(e["token_type_ids"])] = torch.as_tensor(e["token_type_ids"])
            batch["token_type_ids"] = types
        if self.kind == "seqcls":
            batch["labels"] = torch.as_tensor([e["labels"] for e in examples], dtype=torch.long)
        elif self.kind == "tokcls" or "labels" in examples[0]:  # token labels: NER's, or MLM's drawn beforehand
            labels = torch.full_like(ids, -100)
            for i, e in enumerate(examples):
                labels[i, : len(e["labels"])] = torch.as_tensor(e["labels"])
            batch["labels"] = labels
        else:
            ids, batch["labels"] = self._mask_tokens(ids, attention, self.generator)
        batch["input_ids"] = ids
        batch["attention_mask"] = attention
        return batch

    def premasked(self, examples: Iterable[dict], seed: int) -> list[dict]:
        """Copies of ``examples`` with MLM's masks drawn one example at a time, in order, from ``seed``.

        The masks then depend on the examples and the seed only, not on how they are batched: a test set's masked
        tokens stay the same whatever the evaluation batch size (a runtime setting, not part of any run key).
        """
        g = torch.Generator().manual_seed(seed)
        masked = []
        for e in examples:
            ids = torch.as_tensor([e["input_ids"]])
            ids, labels = self._mask_tokens(ids, torch.ones_like(ids), g)
            masked.append({**e, "input_ids": ids[0].tolist(), "labels": labels[0].tolist()})
        return masked

    def _mask_tokens(
        self, ids: torch.Tensor, attention: torch.Tensor, g: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        maskable = attention.bool() & ~torch.isin(ids, torch.as_tensor(self.special_ids, dtype=torch.long))
        chosen = (torch.rand(ids.shape, generator=g) < self.mlm_probability) & maskable
        # Every sequence predicts at least one token, so short strings still contribute.
        none = ~chosen.any(dim=1) & maskable.any(dim=1)
        for row in none.nonzero().reshape(-1).tolist():
            candidates = maskable[row].nonzero().reshape(-1)
            chosen[row, candidates[torch.randint(len(candidates), (1,), generator=g)]] = True
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        roll = torch.rand(ids.shape, generator=g)
        ids = ids.clone()
        ids[chosen & (roll < 0.8)] = self.mask_id
        randomised = chosen & (roll >= 0.8) & (roll < 0.9)
        ids[randomised] = torch.randint(self.vocab_size, ids.shape, generator=g)[randomised]
        return ids, labels


def make_collator(kind: str, tokenizer: Any, mlm_probability: float = 0.15, seed: int = 0) -> Collator:
    return Collator(
        kind=kind,
        pad_id=tokenizer.pad_token_id,
        mask_id=tokenizer.mask_token_id,
        special_ids=tuple(tokenizer.all_special_ids),
        vocab_size=len(tokenizer),
        mlm_probability=mlm_probability,
        generator=torch.Generator().manual_seed(seed),
    )
