import pytest
import torch

from subnetworks.masks import Mask, MaskError, layer_of, load_mask, module_type, read_metadata, save_mask
from subnetworks.models import encoder_parameters, encoder_shapes
from subnetworks.prune import magnitude_prune, select_prunable


def _random_mask(shapes, seed=0, p=0.5):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(s, generator=g) < p for n, s in shapes.items()})


def test_module_type_and_layer_names():
    assert module_type("encoder.layer.3.attention.self.query.weight") == "query"
    assert module_type("encoder.layer.3.attention.self.key.weight") == "key"
    assert module_type("encoder.layer.3.attention.self.value.weight") == "value"
    assert module_type("encoder.layer.3.attention.output.dense.weight") == "attention_output"
    assert module_type("encoder.layer.3.intermediate.dense.weight") == "intermediate"
    assert module_type("encoder.layer.3.output.dense.weight") == "output"
    assert module_type("pooler.dense.weight") == "pooler"
    assert module_type("embeddings.word_embeddings.weight") == "other"
    assert layer_of("encoder.layer.11.output.dense.weight") == "11"
    assert layer_of("pooler.dense.weight") == "pooler"


def test_roundtrip_on_sizes_not_multiple_of_eight(tmp_path):
    shapes = {"a": (3, 5), "b": (37,), "c": (7, 3, 1)}
    mask = _random_mask(shapes)
    path = save_mask(mask, tmp_path / "m.safetensors", model="tiny", task="mlm", lang="ur", level=2, seed=57)
    loaded = load_mask(path, shapes)
    assert loaded == mask
    meta = read_metadata(path)
    assert meta["model"] == "tiny" and meta["lang"] == "ur" and meta["level"] == "2" and meta["seed"] == "57"
    assert float(meta["density"]) == pytest.approx(mask.density)
    assert meta["format_version"] == "1"


def test_roundtrip_keeps_the_tensor_order_and_equal_masks_give_equal_bytes(tmp_path):
    shapes = {"z": (4, 3), "a": (9,), "m": (2, 2)}  # not sorted: pruning breaks ties in this order
    mask = _random_mask(shapes)
    first = save_mask(mask, tmp_path / "1.safetensors", task="xnli", lang="ur", seed=1, level=2, extra="x")
    assert list(load_mask(first).tensors) == ["z", "a", "m"]
    again = Mask({n: t.clone() for n, t in mask.tensors.items()}, dict(reversed(list(mask.meta.items()))))
    second = save_mask(again, tmp_path / "2.safetensors", extra="x", level=2, seed=1, lang="ur", task="xnli")
    assert first.read_bytes() == second.read_bytes()


def test_packed_file_is_about_one_bit_per_weight(tmp_path):
    mask = _random_mask({"w": (512, 512)})
    path = save_mask(mask, tmp_path / "m.safetensors")
    assert path.stat().st_size < 512 * 512 / 8 + 4096


def test_density_by_layer_and_module(tiny_seqcls):
    shapes = encoder_shapes(tiny_seqcls)
    names = select_prunable(shapes)
    mask = Mask.full({n: shapes[n] for n in names})
    only_query = Mask({n: t if "query" in n else ~t for n, t in mask.tensors.items()})
    by_module = only_query.density_by("module")
    assert by_module["query"] == 1.0 and by_module["key"] == 0.0 and by_module["pooler"] == 0.0
    by_layer = only_query.density_by("layer")
    assert set(by_layer) == {"0", "1", "pooler"}
    assert 0 < by_layer["0"] < 1
    with pytest.raises(ValueError, match="unknown grouping"):
        mask.density_by("head")


def test_set_algebra():
    a = Mask({"w": torch.tensor([True, True, False, False])})
    b = Mask({"w": torch.tensor([True, False, True, False])})
    assert (a & b).tensors["w"].tolist() == [True, False, False, False]
    assert (a | b).tensors["w"].tolist() == [True, True, True, False]
    assert (~a).tensors["w"].tolist() == [False, False, True, True]
    assert (a & b).issubset(a) and not a.issubset(b)
    with pytest.raises(MaskError, match="different parameters"):
        a & Mask({"v": torch.tensor([True])})


def test_mlm_mask_applies_to_token_classification_model(tiny_mlm, tiny_tokcls, tmp_path):
    names = select_prunable(encoder_parameters(tiny_mlm))
    weights = {n: p for n, p in encoder_parameters(tiny_mlm).items() if n in names}
    full = Mask.full({n: w.shape for n, w in weights.items()}, model="tiny")
    mask = magnitude_prune(weights, full, 0.5)
    path = save_mask(mask, tmp_path / "m.safetensors")
    loaded = load_mask(path, encoder_shapes(tiny_tokcls), model_name="tiny")
    assert all(not n.startswith("bert.") for n in loaded.tensors)
    assert loaded == mask


def test_mismatched_masks_are_rejected_with_the_mismatch_named(tmp_path):
    mask = Mask({"encoder.layer.0.attention.self.query.weight": torch.ones(4, 4, dtype=torch.bool)}, {"model": "a"})
    path = save_mask(mask, tmp_path / "m.safetensors")
    with pytest.raises(MaskError, match=r"shape \(4, 4\).*\(16, 16\)"):
        load_mask(path, {"encoder.layer.0.attention.self.query.weight": (16, 16)})
    with pytest.raises(MaskError, match="does not exist in the model"):
        load_mask(path, {"encoder.layer.0.attention.self.key.weight": (4, 4)})
    with pytest.raises(MaskError, match="found on model 'a'.*'b'"):
        load_mask(path, {"encoder.layer.0.attention.self.query.weight": (4, 4)}, model_name="b")


def test_truncated_and_foreign_files_are_rejected_naming_the_file(tmp_path):
    mask = _random_mask({"w": (64, 64)})
    path = save_mask(mask, tmp_path / "m.safetensors")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MaskError, match="truncated.safetensors"):
        load_mask(truncated)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(MaskError, match="not a subnetworks mask"):
        load_mask(foreign)
    with pytest.raises(FileNotFoundError, match="pruning stage"):
        load_mask(tmp_path / "missing.safetensors")


def test_non_bool_tensors_are_refused():
    with pytest.raises(MaskError, match="torch.bool"):
        Mask({"w": torch.ones(3)})
