"""Sentence representations of an encoder, layer by layer: what representation similarity (CKA) compares.

A sentence's representation at a layer is the mean of its tokens' hidden states there (padding left out), as in the
cross-lingual similarity studies that compare encoders layer by layer. Forward passes only, batched by length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .train import autocast, batches_by_length


@torch.inference_mode()
def mean_pooled_layers(
    model: nn.Module, input_ids: Sequence[Sequence[int]], pad_id: int, *, device: torch.device, batch_size: int = 64
) -> torch.Tensor:
    """Layers × sentences × hidden: the mean-pooled output of every encoder layer (not the embeddings) for each
    tokenised sentence, in the order given."""
    encoder = getattr(model, "base_model", model).to(device).eval()
    examples = [{"input_ids": ids} for ids in input_ids]
    out: torch.Tensor | None = None
    for rows in batches_by_length(examples, batch_size):
        longest = max(len(input_ids[i]) for i in rows)
        ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for j, i in enumerate(rows):
            ids[j, : len(input_ids[i])] = torch.tensor(input_ids[i])
            attention[j, : len(input_ids[i])] = 1
        ids, attention = ids.to(device), attention.to(device)
        with autocast(device):
            hidden = encoder(input_ids=ids, attention_mask=attention, output_hidden_states=True).hidden_states[1:]
        weights = (attention / attention.sum(1, keepdim=True)).unsqueeze(-1).float()
        pooled = torch.stack([(h.float() * weights).sum(1) for h in hidden]).cpu()  # layers × batch × hidden
        if out is None:
            out = torch.empty(pooled.shape[0], len(input_ids), pooled.shape[2])
        out[:, rows] = pooled
    if out is None:
        raise ValueError("no sentences to represent")
    return out
