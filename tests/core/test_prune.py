import pytest
import torch

from subnetworks.core.masks import Mask
from subnetworks.core.prune import apply_mask, kept_count, magnitude_prune, mask_multipliers, select_prunable
from subnetworks.core.random_masks import random_per_tensor
from subnetworks.nn.families import FAMILIES
from subnetworks.nn.models import encoder_parameters

DEFAULT_PRUNABLE = FAMILIES["bert"].prunable


def test_default_patterns_select_exactly_the_study_tensors(tiny_seqcls):
    names = select_prunable(encoder_parameters(tiny_seqcls), DEFAULT_PRUNABLE)
    # 2 layers x (q, k, v, attention output, intermediate, output) + pooler
    assert len(names) == 2 * 6 + 1
    assert all(n.endswith(".weight") for n in names)
    assert not any("embeddings" in n or "LayerNorm" in n for n in names)
    assert "pooler.dense.weight" in names


def test_defaults_work_for_xlmr_names():
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    config = XLMRobertaConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    names = select_prunable(encoder_parameters(XLMRobertaForMaskedLM(config)), FAMILIES["xlm-roberta"].prunable)
    assert len(names) == 6  # an MLM model has no pooler


def test_select_prunable_keeps_the_given_order_and_matches_any_pattern():
    names = ["c.weight", "a.bias", "b.weight", "a.weight"]
    assert select_prunable(names, [r"\.weight$"]) == ["c.weight", "b.weight", "a.weight"]
    assert select_prunable(names, [r"^a\.", r"^b\."]) == ["a.bias", "b.weight", "a.weight"]


def test_patterns_matching_nothing_are_an_error():
    with pytest.raises(ValueError, match="no parameter matches"):
        select_prunable(["bert.encoder.layer.0.attention.self.query.weight"], DEFAULT_PRUNABLE)


def test_magnitude_prune_keeps_the_largest_exactly():
    weights = {"a": torch.tensor([[0.1, -0.9], [0.5, 0.2]]), "b": torch.tensor([-0.3, 0.8, 0.05])}
    full = Mask.full({"a": (2, 2), "b": (3,)})
    mask = magnitude_prune(weights, full, 0.6)  # 7 weights, keep 7 - round(4.2) = 3
    assert mask.kept == 3
    assert mask.tensors["a"].tolist() == [[False, True], [True, False]]
    assert mask.tensors["b"].tolist() == [False, True, False]
    assert float(mask.meta["threshold"]) == pytest.approx(0.5)


def test_only_kept_weights_compete_and_levels_nest():
    g = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(13, 11, generator=g), "b": torch.randn(37, generator=g)}
    mask = Mask.full({n: w.shape for n, w in weights.items()})
    total = mask.numel
    for sparsity in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
        weights = {n: w + 0.3 * torch.randn(w.shape, generator=g) for n, w in weights.items()}  # "training"
        new = magnitude_prune(weights, mask, sparsity)
        assert new.kept == kept_count(total, sparsity)
        assert new.issubset(mask)
        mask = new


def test_ties_are_broken_by_lowest_global_index():
    weights = {"a": torch.tensor([1.0, 1.0, 1.0]), "b": torch.tensor([1.0, 2.0])}
    mask = magnitude_prune(weights, Mask.full({"a": (3,), "b": (2,)}), 0.4)  # keep 3 of 5
    assert mask.tensors["b"].tolist() == [False, True]
    assert mask.tensors["a"].tolist() == [True, True, False]
    assert mask.meta["ties_at_threshold"] == "4"


def _reference_prune(weights: dict, mask: Mask, sparsity: float) -> Mask:
    """The definition, by a stable sort: largest |w| among kept weights first, lower global index first on ties."""
    names = list(mask.tensors)
    scores = torch.cat([weights[n].abs().float().reshape(-1) for n in names])
    kept = torch.cat([mask.tensors[n].reshape(-1) for n in names])
    candidates = kept.nonzero().reshape(-1)
    order = torch.sort(-scores[candidates], stable=True).indices
    flat = torch.zeros_like(kept)
    flat[candidates[order[: kept_count(mask.numel, sparsity)]]] = True
    out, offset = {}, 0
    for n in names:
        size = mask.tensors[n].numel()
        out[n] = flat[offset : offset + size].reshape(mask.tensors[n].shape)
        offset += size
    return Mask(out)


@pytest.mark.parametrize("grid", [0.0, 0.125, 1 / 3])  # continuous, a 4-bit-like grid (many ties), a coarse one
def test_magnitude_prune_equals_the_sorted_definition(grid):
    g = torch.Generator().manual_seed(3)
    weights = {
        "z": torch.randn(17, 5, generator=g),
        "a": torch.randn(64, generator=g),
        "m": torch.randn(3, 7, generator=g),
    }
    if grid:
        weights = {n: torch.round(w / grid) * grid for n, w in weights.items()}
    weights["a"][:5] = 0.0  # kept zeros compete too
    mask = Mask({n: torch.rand(w.shape, generator=g) < 0.8 for n, w in weights.items()})
    for sparsity in (0.3, 0.5, 0.77, 0.95):
        ours = magnitude_prune(weights, mask, sparsity)
        assert ours == _reference_prune(weights, mask, sparsity), sparsity
        assert list(ours.tensors) == ["z", "a", "m"]  # the given order, not sorted: it decides ties


def test_magnitude_prune_of_bf16_weights_ranks_their_float_values():
    g = torch.Generator().manual_seed(4)
    weights = {"a": torch.randn(40, 9, generator=g).bfloat16(), "b": torch.randn(33, generator=g).bfloat16()}
    full = Mask.full({n: w.shape for n, w in weights.items()})
    assert magnitude_prune(weights, full, 0.6) == _reference_prune(weights, full, 0.6)


def test_magnitude_prune_is_pure_and_deterministic():
    weights = {"a": torch.randn(50, 7)}
    before = weights["a"].clone()
    full = Mask.full({"a": (50, 7)})
    assert magnitude_prune(weights, full, 0.5) == magnitude_prune(weights, full, 0.5)
    assert torch.equal(weights["a"], before) and full.kept == 350


def test_cannot_prune_backwards():
    weights = {"a": torch.randn(10)}
    half = magnitude_prune(weights, Mask.full({"a": (10,)}), 0.5)
    with pytest.raises(ValueError, match="keeps only"):
        magnitude_prune(weights, half, 0.2)


@pytest.mark.parametrize(
    "total, sparsity, kept",
    [
        (10, 0.5, 5),
        (7, 0.6, 3),
        (3, 0.5, 1),
        (5, 0.5, 3),
        (100, 0.0, 100),
        (1000, 0.999, 1),
        (1000, 0.9995, 0),
        (9, 1 / 3, 6),
    ],
)
def test_kept_count_rounds_the_pruned_count_to_the_nearest_weight(total, sparsity, kept):
    assert kept_count(total, sparsity) == kept  # round half to even: 2.5 → 2 pruned of 5, 1.5 → 2 of 3


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_zero_to_one_is_refused(sparsity):
    with pytest.raises(ValueError, match=r"outside \[0, 1\)"):
        magnitude_prune({"a": torch.ones(4)}, Mask.full({"a": (4,)}), sparsity)


def test_sparsity_zero_keeps_everything_and_pruning_to_nothing_keeps_nothing():
    weights = {"a": torch.tensor([0.0, -1.0, 2.0])}
    assert magnitude_prune(weights, Mask.full({"a": (3,)}), 0.0) == Mask.full({"a": (3,)})
    none = magnitude_prune(weights, Mask.full({"a": (3,)}), 0.9)  # 3 - round(2.7) = 0 kept
    assert none.kept == 0 and none.meta["threshold"] == "inf"


def test_missing_weights_are_named():
    with pytest.raises(ValueError, match=r"weights lack prunable tensors \['b'\]"):
        magnitude_prune({"a": torch.ones(2)}, Mask.full({"a": (2,), "b": (2,)}), 0.5)


def test_random_mask_keeps_per_tensor_density():
    g = torch.Generator().manual_seed(1)
    mask = Mask({"a": torch.rand(40, 9, generator=g) < 0.3, "b": torch.rand(37, generator=g) < 0.7}, {"lang": "ur"})
    rand = random_per_tensor(mask, seed=5)
    for n in mask.tensors:
        assert int(rand.tensors[n].sum()) == int(mask.tensors[n].sum())
    assert rand.shapes == mask.shapes and rand != mask
    assert rand == random_per_tensor(mask, seed=5)
    assert rand != random_per_tensor(mask, seed=6)
    assert rand.meta == {"lang": "ur", "kind": "random", "random_seed": "5"}


def test_random_masks_are_uniform_over_positions():
    mask = Mask({"a": torch.arange(20) < 5})  # 5 of 20 kept, all at the start
    hits = sum(random_per_tensor(mask, seed=s).tensors["a"].int() for s in range(2000))
    assert float(hits.float().mean()) == 2000 * 5 / 20  # exactly 5 kept every time
    assert int(hits.min()) > 400 and int(hits.max()) < 600  # each position ~ Binomial(2000, 1/4): 500 ± 19


def test_apply_mask_zeroes_exactly_the_pruned_weights(tiny_mlm):
    params = encoder_parameters(tiny_mlm)
    names = select_prunable(params, DEFAULT_PRUNABLE)
    mask = magnitude_prune({n: params[n] for n in names}, Mask.full({n: params[n].shape for n in names}), 0.7)
    untouched = {n: p.detach().clone() for n, p in params.items() if n not in names}
    apply_mask(params, mask)
    for n in names:
        assert bool((params[n][~mask.tensors[n]] == 0).all())
        assert bool((params[n][mask.tensors[n]] != 0).all())
    for n, value in untouched.items():
        assert torch.equal(params[n], value)


def test_mask_multipliers_are_zero_one_in_the_parameter_dtype_and_apply_like_the_mask():
    params = {
        "a": torch.nn.Parameter(torch.tensor([1.5, -2.0, 3.0])),
        "b": torch.nn.Parameter(torch.tensor([[1.0, 2.0]], dtype=torch.float64)),
    }
    mask = Mask({"a": torch.tensor([True, False, True]), "b": torch.tensor([[False, True]])})
    multipliers = mask_multipliers(params, mask)
    assert multipliers["a"].dtype == torch.float32 and multipliers["b"].dtype == torch.float64
    assert multipliers["a"].tolist() == [1.0, 0.0, 1.0] and multipliers["b"].tolist() == [[0.0, 1.0]]
    apply_mask(params, multipliers)
    assert params["a"].tolist() == [1.5, 0.0, 3.0] and params["b"].tolist() == [[0.0, 2.0]]
