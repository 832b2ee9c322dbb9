import numpy as np
import pytest
import torch

from subnetworks.masks import Mask
from subnetworks.overlap import (
    PackedMasks,
    expected_random_all,
    expected_random_pair,
    pairwise,
    shared_by_all,
    spearman,
)
from subnetworks.prune import random_mask_like

SHAPES = {
    "encoder.layer.0.attention.self.query.weight": (33, 17),
    "encoder.layer.0.intermediate.dense.weight": (65, 3),
    "encoder.layer.1.output.dense.weight": (7, 129),
}


def _mask(p, seed):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(s, generator=g) < p for n, s in SHAPES.items()})


def _bool_jaccard(a, b):
    inter = sum(int((a.tensors[n] & b.tensors[n]).sum()) for n in SHAPES)
    union = sum(int((a.tensors[n] | b.tensors[n]).sum()) for n in SHAPES)
    return inter / union


def test_identical_masks_overlap_fully():
    m = _mask(0.4, 0)
    row = pairwise(PackedMasks.pack({"a": m, "b": m}))[0]
    assert row["jaccard"] == 1.0 and row["agreement"] == 1.0


def test_disjoint_masks_do_not_overlap():
    m = _mask(0.4, 0)
    row = pairwise(PackedMasks.pack({"a": m, "b": ~m}))[0]
    assert row["jaccard"] == 0.0 and row["agreement"] == 0.0


def test_packed_counts_equal_bool_tensor_counts_per_group():
    masks = {k: _mask(0.5, i) for i, k in enumerate("abc")}
    packed = PackedMasks.pack(masks)
    rows = {(r["a"], r["b"]): r for r in pairwise(packed)}
    assert rows[("a", "c")]["jaccard"] == pytest.approx(_bool_jaccard(masks["a"], masks["c"]))
    by_layer = [r for r in pairwise(packed, "layer") if r["group"] == "1" and r["a"] == "a" and r["b"] == "b"][0]
    name = "encoder.layer.1.output.dense.weight"
    ta, tb = masks["a"].tensors[name], masks["b"].tensors[name]
    assert by_layer["agreement"] == pytest.approx(float((ta == tb).float().mean()))
    modules = {r["group"] for r in pairwise(packed, "module")}
    assert modules == {"query", "intermediate", "output"}


def test_shared_by_all_matches_direct_computation():
    masks = {k: _mask(0.6, i) for i, k in enumerate("abcd")}
    row = shared_by_all(PackedMasks.pack(masks))[0]
    both = either = n = 0
    for name in SHAPES:
        stack = torch.stack([m.tensors[name] for m in masks.values()])
        both += int(stack.all(0).sum())
        either += int(stack.any(0).sum())
        n += stack[0].numel()
    assert row["jaccard"] == pytest.approx(both / either)
    assert row["agreement"] == pytest.approx((both + n - either) / n)
    assert row["kept_by_all"] == pytest.approx(both / n)


def test_random_masks_overlap_close_to_closed_form():
    big = Mask({"w": torch.zeros(400, 500, dtype=torch.bool)})
    big.tensors["w"].view(-1)[: int(0.3 * 200000)] = True
    a, b, c = (random_mask_like(big, seed=s) for s in (1, 2, 3))
    row = pairwise(PackedMasks.pack({"a": a, "b": b}))[0]
    exp_j, exp_a = expected_random_pair(0.3, 0.3)
    assert row["jaccard"] == pytest.approx(exp_j, abs=0.005)
    assert row["agreement"] == pytest.approx(exp_a, abs=0.005)
    assert row["random_jaccard"] == pytest.approx(exp_j)
    shared = shared_by_all(PackedMasks.pack({"a": a, "b": b, "c": c}))[0]
    exp_all = expected_random_all([0.3, 0.3, 0.3])
    assert shared["jaccard"] == pytest.approx(exp_all[0], abs=0.005)
    assert shared["agreement"] == pytest.approx(exp_all[1], abs=0.005)


def test_closed_forms():
    assert expected_random_pair(0.5, 0.5) == pytest.approx((1 / 3, 0.5))
    assert expected_random_all([0.5, 0.5]) == pytest.approx((1 / 3, 0.5))


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_packed_from_files_equals_packed_in_memory_and_counts_match_bool_tensors(tmp_path):
    from subnetworks.masks import save_mask
    from subnetworks.overlap import intersections

    masks = {f"m{i}": _mask(0.2 + 0.1 * i, i) for i in range(5)}
    paths = {label: save_mask(m, tmp_path / f"{label}.safetensors") for label, m in masks.items()}
    from_files, in_memory = PackedMasks.from_files(paths), PackedMasks.pack(masks)
    assert np.array_equal(from_files.words, in_memory.words) and from_files.segments == in_memory.segments
    for by in ("all", "layer", "module"):
        assert pairwise(from_files, by) == pairwise(in_memory, by)
    labels = list(masks)
    truth = np.array([[sum(int((masks[a].tensors[n] & masks[b].tensors[n]).sum()) for n in SHAPES) for b in labels]
                      for a in labels])
    for block, threads in ((1, 1), (2, 2), (8192, None)):  # many blocks over threads, and one block
        assert np.array_equal(intersections(in_memory.words, block=block, threads=threads), truth)


def test_masks_of_other_shapes_are_not_packed_together(tmp_path):
    from subnetworks.masks import MaskError, save_mask

    a = save_mask(_mask(0.5, 0), tmp_path / "a.safetensors")
    b = save_mask(Mask({"encoder.layer.0.attention.self.query.weight": torch.ones(3, 3, dtype=torch.bool)}),
                  tmp_path / "b.safetensors")
    with pytest.raises(MaskError, match="b.safetensors covers other tensors"):
        PackedMasks.from_files({"a": a, "b": b})
