import pytest
import torch

from subnetworks.core.maskfile import FORMAT_VERSION, read_metadata, read_packed
from subnetworks.core.maskio import load_mask, save_mask
from subnetworks.core.masks import Mask, MaskError, by_tensor
from subnetworks.core.prune import magnitude_prune, select_prunable
from subnetworks.nn.families import FAMILIES
from subnetworks.nn.models import encoder_parameters, encoder_shapes

BERT = FAMILIES["bert"]


def _random_mask(shapes, seed=0, p=0.5):
    g = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(s, generator=g) < p for n, s in shapes.items()})


def test_module_type_and_layer_names():
    assert BERT.module_type("encoder.layer.3.attention.self.query.weight") == "query"
    assert BERT.module_type("encoder.layer.3.attention.self.key.weight") == "key"
    assert BERT.module_type("encoder.layer.3.attention.self.value.weight") == "value"
    assert BERT.module_type("encoder.layer.3.attention.output.dense.weight") == "attention_output"
    assert BERT.module_type("encoder.layer.3.intermediate.dense.weight") == "intermediate"
    assert BERT.module_type("encoder.layer.3.output.dense.weight") == "output"
    assert BERT.module_type("pooler.dense.weight") == "pooler"
    assert BERT.module_type("embeddings.word_embeddings.weight") == "other"
    assert BERT.layer_of("encoder.layer.11.output.dense.weight") == "11"
    assert BERT.layer_of("pooler.dense.weight") == "pooler"


def test_roundtrip_on_sizes_not_multiple_of_eight(tmp_path):
    shapes = {"a": (3, 5), "b": (37,), "c": (7, 3, 1)}
    mask = _random_mask(shapes)
    path = save_mask(mask, tmp_path / "m.safetensors", model="tiny", task="mlm", lang="ur", level=2, seed=57)
    loaded = load_mask(path, shapes)
    assert loaded == mask
    meta = read_metadata(path)
    assert meta["model"] == "tiny" and meta["lang"] == "ur" and meta["level"] == "2" and meta["seed"] == "57"
    assert float(meta["density"]) == pytest.approx(mask.density)
    assert meta["format_version"] == FORMAT_VERSION == "1"


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
    names = select_prunable(shapes, BERT.prunable)
    mask = Mask.full({n: shapes[n] for n in names})
    only_query = Mask({n: t if "query" in n else ~t for n, t in mask.tensors.items()})
    by_module = only_query.density_by(BERT.module_type)
    assert by_module == {
        "query": 1.0,
        "key": 0.0,
        "value": 0.0,
        "attention_output": 0.0,
        "intermediate": 0.0,
        "output": 0.0,
        "pooler": 0.0,
    }
    by_layer = only_query.density_by(BERT.layer_of)
    assert set(by_layer) == {"0", "1", "pooler"}
    # layer 0: query 16x16 kept; key, value, attention output 16x16, intermediate 37x16 and output 16x37 not
    assert by_layer["0"] == pytest.approx(256 / (4 * 256 + 2 * 37 * 16)) and by_layer["pooler"] == 0.0
    assert only_query.density_by() == {n: (1.0 if "query" in n else 0.0) for n in names}  # per tensor by default
    assert only_query.density_by(by_tensor) == only_query.density_by()


def test_density_and_counts_on_a_hand_made_mask():
    mask = Mask({"a": torch.tensor([[True, False], [False, False]]), "b": torch.tensor([True, True, False, True])})
    assert (mask.numel, mask.kept) == (8, 4)
    assert mask.density == 0.5 and mask.sparsity == 0.5
    assert mask.density_by() == {"a": 0.25, "b": 0.75}
    assert mask.density_by(lambda name: "all") == {"all": 0.5}
    assert Mask({}).density == 1.0  # nothing to prune: nothing pruned


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
    names = select_prunable(encoder_parameters(tiny_mlm), BERT.prunable)
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
    with pytest.raises(MaskError, match="truncated.safetensors"):
        read_metadata(truncated)


def test_a_file_of_another_format_version_is_rejected(tmp_path):
    import json

    path = save_mask(_random_mask({"w": (9,)}), tmp_path / "m.safetensors")
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"]["format_version"] = "0"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])
    with pytest.raises(MaskError, match="mask format version 0, this code reads 1"):
        load_mask(path)


def test_read_packed_gives_the_packbits_of_each_tensor_in_order(tmp_path):
    mask = Mask({"z": torch.tensor([True, False, True]), "a": torch.ones(2, 5, dtype=torch.bool)})
    meta, packed, shapes = read_packed(save_mask(mask, tmp_path / "m.safetensors", lang="ur"))
    assert list(packed) == ["z", "a"] and shapes == {"z": (3,), "a": (2, 5)}
    assert packed["z"].tolist() == [0b10100000] and packed["a"].tolist() == [0xFF, 0b11000000]
    assert meta["lang"] == "ur" and meta["density"] == repr(12 / 13)


def test_non_bool_tensors_are_refused():
    with pytest.raises(MaskError, match="torch.bool"):
        Mask({"w": torch.ones(3)})
