import numpy as np
import pytest
import torch

from subnetworks.core.maskio import save_mask
from subnetworks.core.masks import Mask, MaskError
from subnetworks.core.overlap import (
    PackedMasks,
    agreement_from_counts,
    intersections,
    jaccard_from_counts,
    pairwise,
    shared_by_all,
)
from subnetworks.core.random_masks import random_global, random_per_tensor
from subnetworks.nn.families import FAMILIES

BERT = FAMILIES["bert"]

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
    by_layer = [r for r in pairwise(packed, BERT.layer_of) if r["group"] == "1" and r["a"] == "a" and r["b"] == "b"][0]
    name = "encoder.layer.1.output.dense.weight"
    ta, tb = masks["a"].tensors[name], masks["b"].tensors[name]
    assert by_layer["agreement"] == pytest.approx(float((ta == tb).float().mean()))
    assert {r["group"] for r in pairwise(packed, BERT.layer_of)} == {"0", "1"}
    modules = {r["group"] for r in pairwise(packed, BERT.module_type)}
    assert modules == {"query", "intermediate", "output"}
    assert {r["group"] for r in pairwise(packed)} == {"all"} and len(pairwise(packed)) == 3  # (a,b), (a,c), (b,c)


def test_overlap_of_hand_made_masks():
    a = Mask({"x": torch.tensor([True, True, False, False, True]), "y": torch.tensor([True, False, False])})
    b = Mask({"x": torch.tensor([True, False, True, False, True]), "y": torch.tensor([False, False, False])})
    c = Mask({"x": torch.tensor([True, True, True, False, False]), "y": torch.tensor([True, False, True])})
    packed = PackedMasks.pack({"a": a, "b": b, "c": c})
    rows = {(r["a"], r["b"]): r for r in pairwise(packed)}
    # |a|=4, |b|=3, |c|=5; a∩b=2, a∩c=3, b∩c=2; n=8
    assert rows[("a", "b")]["jaccard"] == pytest.approx(2 / 5)
    assert rows[("a", "c")]["jaccard"] == pytest.approx(3 / 6)
    assert rows[("b", "c")]["jaccard"] == pytest.approx(2 / 6)
    assert rows[("a", "b")]["agreement"] == pytest.approx(5 / 8)  # 4 + 3 - 2·2 = 3 of 8 positions differ
    # nulls: per tensor x (a 3 of 5, b 3 of 5) and y (a 1 of 3, b 0 of 3): E∩ = 3·3/5 = 1.8 → 1.8 / (4 + 3 − 1.8);
    # globally a keeps 4/8 and b 3/8 everywhere: 0.1875 / (0.5 + 0.375 − 0.1875)
    assert rows[("a", "b")]["expected_layerwise_jaccard"] == pytest.approx(1.8 / 5.2)
    assert rows[("a", "b")]["expected_layerwise_agreement"] == pytest.approx(1 - (4 + 3 - 3.6) / 8)
    assert rows[("a", "b")]["expected_global_jaccard"] == pytest.approx(0.1875 / 0.6875)
    by_tensor = {(r["group"], r["a"], r["b"]): r["jaccard"] for r in pairwise(packed, lambda n: n)}
    assert by_tensor[("y", "a", "b")] == 0.0 and by_tensor[("y", "a", "c")] == 0.5
    shared = shared_by_all(packed)[0]
    assert shared["jaccard"] == pytest.approx(1 / 6)  # kept by all: x0; by any: x0, x1, x2, x4, y0, y2
    assert shared["agreement"] == pytest.approx(3 / 8)  # all kept at x0, none kept at x3 and y1
    assert shared["kept_by_all"] == pytest.approx(1 / 8)


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


def test_random_controls_overlap_as_their_nulls_say():
    """Masks dense in the same tensors (as IMP masks of two languages are): their layer-wise random controls overlap
    as the layer-wise null says, their global random controls as the global one says, and the two differ."""
    imp = Mask({"w": torch.zeros(400, 500, dtype=torch.bool), "v": torch.zeros(300, 100, dtype=torch.bool)})
    imp.tensors["w"].view(-1)[:150_000] = True  # 75 % of w, 10 % of v
    imp.tensors["v"].view(-1)[:3_000] = True
    draws = {
        "layerwise": [random_per_tensor(imp, seed=s) for s in (1, 2, 3)],
        "global": [random_global(imp, seed=s) for s in (1, 2, 3)],
    }
    rows = {}
    for kind, (a, b, c) in draws.items():
        row = rows[kind] = pairwise(PackedMasks.pack({"a": a, "b": b}))[0]
        assert row["jaccard"] == pytest.approx(row[f"expected_{kind}_jaccard"], abs=0.005), kind
        assert row["agreement"] == pytest.approx(row[f"expected_{kind}_agreement"], abs=0.005), kind
        shared = shared_by_all(PackedMasks.pack({"a": a, "b": b, "c": c}))[0]
        assert shared["jaccard"] == pytest.approx(shared[f"expected_{kind}_jaccard"], abs=0.005), kind
    layerwise = rows["layerwise"]  # the nulls of masks with the IMP mask's per-tensor counts
    assert layerwise["expected_layerwise_jaccard"] > layerwise["expected_global_jaccard"] + 0.05


def test_jaccard_and_agreement_from_counts():
    kept = np.array([4, 3, 0])
    inter = np.array([[4, 2, 0], [2, 3, 0], [0, 0, 0]])
    jac = jaccard_from_counts(kept, inter)
    assert jac[0, 1] == pytest.approx(2 / 5) and jac[0, 0] == 1.0 and jac[2, 2] == 1.0  # two empty masks: equal
    assert jac[0, 2] == 0.0
    agr = agreement_from_counts(kept, inter, 10)
    assert agr[0, 1] == pytest.approx(1 - 3 / 10) and agr[2, 2] == 1.0 and agr[0, 2] == pytest.approx(0.6)


def test_packed_from_files_equals_packed_in_memory_and_counts_match_bool_tensors(tmp_path):
    masks = {f"m{i}": _mask(0.2 + 0.1 * i, i) for i in range(5)}
    paths = {label: save_mask(m, tmp_path / f"{label}.safetensors") for label, m in masks.items()}
    from_files, in_memory = PackedMasks.from_files(paths), PackedMasks.pack(masks)
    assert np.array_equal(from_files.words, in_memory.words) and from_files.segments == in_memory.segments
    for by in (None, BERT.layer_of, BERT.module_type):
        assert pairwise(from_files, by) == pairwise(in_memory, by)
        assert shared_by_all(from_files, by) == shared_by_all(in_memory, by)
    labels = list(masks)
    truth = np.array(
        [[sum(int((masks[a].tensors[n] & masks[b].tensors[n]).sum()) for n in SHAPES) for b in labels] for a in labels]
    )
    for block, threads in ((1, 1), (2, 2), (8192, None)):  # many blocks over threads, and one block
        assert np.array_equal(intersections(in_memory.words, block=block, threads=threads), truth)


def test_masks_of_other_shapes_are_not_packed_together(tmp_path):
    a = save_mask(_mask(0.5, 0), tmp_path / "a.safetensors")
    b = save_mask(
        Mask({"encoder.layer.0.attention.self.query.weight": torch.ones(3, 3, dtype=torch.bool)}),
        tmp_path / "b.safetensors",
    )
    with pytest.raises(MaskError, match="b.safetensors covers other tensors"):
        PackedMasks.from_files({"a": a, "b": b})
    with pytest.raises(MaskError, match="different parameters"):
        PackedMasks.pack({"a": _mask(0.5, 0), "b": Mask({"w": torch.ones(3, dtype=torch.bool)})})
    with pytest.raises(ValueError, match="no masks"):
        PackedMasks.pack({})


def test_intersections_of_random_words_equal_a_brute_force_popcount():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, size=(6, 300), dtype=np.uint64) ^ rng.integers(0, 2, size=(6, 300), dtype=np.uint64)
    bits = np.unpackbits(words.view(np.uint8), axis=1).astype(bool)
    truth = np.array([[int((bits[i] & bits[j]).sum()) for j in range(6)] for i in range(6)])
    for block, threads in ((7, 3), (64, 1), (300, None), (1000, 2)):
        assert np.array_equal(intersections(words, block=block, threads=threads), truth)
