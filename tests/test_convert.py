"""The MiniLM -> GGUF conversion, proven by serving it: its embeddings must match
sentence-transformers' own vectors (tests/data/minilm_embeddings.json) for every text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import httpx
import numpy as np
import pytest

from workbench.api.convert import (
    CONVERTER_VERSION,
    cache_dir_default,
    embedding_gguf_name,
    ensure_embedding_gguf,
)
from workbench.api.local import EMBEDDING_MODEL_ALIAS, LocalServer

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).parent / "data" / "minilm_embeddings.json"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def converted(model_cache: Path) -> Path:
    """Convert once per test session."""
    return ensure_embedding_gguf(model_cache)


@pytest.fixture(scope="session")
def reader(converted: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(converted)


@pytest.fixture(scope="module")
def embedding_server(model_cache: Path, converted: Path) -> Iterator[LocalServer]:
    server = LocalServer(cache_dir=model_cache)
    yield server
    server.stop()


def _reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


def _unit(vector: list[float]) -> np.ndarray[Any, Any]:
    array = np.asarray(vector, dtype=np.float64)
    unit: np.ndarray[Any, Any] = array / np.linalg.norm(array)
    return unit


def test_embeddings_match_sentence_transformers(embedding_server: LocalServer) -> None:
    reference = _reference()
    texts = [item["text"] for item in reference["items"]]
    response = httpx.post(
        f"{embedding_server.embeddings_base_url}/embeddings",
        headers={"Authorization": f"Bearer {embedding_server.api_key}"},
        json={"model": EMBEDDING_MODEL_ALIAS, "input": texts},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    data = sorted(response.json()["data"], key=lambda entry: entry["index"])
    assert len(data) == len(texts) == 12

    cosines = {}
    for entry, item in zip(data, reference["items"], strict=True):
        assert len(entry["embedding"]) == reference["dimensions"] == 384
        cosines[item["text"]] = float(_unit(entry["embedding"]) @ _unit(item["embedding"]))
    worst = min(cosines, key=lambda text: cosines[text])
    assert cosines[worst] >= 0.999, f"{worst!r}: cosine {cosines[worst]:.5f}"


def test_different_texts_are_not_alike(embedding_server: LocalServer) -> None:
    """Guards against a degenerate model that maps everything to one vector."""
    response = httpx.post(
        f"{embedding_server.embeddings_base_url}/embeddings",
        headers={"Authorization": f"Bearer {embedding_server.api_key}"},
        json={
            "model": EMBEDDING_MODEL_ALIAS,
            "input": ["The cat sits on the mat.", "Quarterly revenue grew by 12 percent."],
        },
        timeout=60,
    )
    first, second = (_unit(entry["embedding"]) for entry in response.json()["data"])
    assert float(first @ second) < 0.5


def test_gguf_metadata_and_vocab(reader: gguf.GGUFReader) -> None:
    def field(key: str) -> Any:
        return reader.fields[key].contents()

    assert field("general.architecture") == "bert"
    assert field("tokenizer.ggml.model") == "bert"
    assert field("bert.pooling_type") == int(gguf.PoolingType.MEAN)
    assert field("bert.attention.causal") is False
    assert field("bert.embedding_length") == 384
    assert field("bert.block_count") == 6
    assert field("tokenizer.ggml.token_type_count") == 2
    # [CLS] [SEP] [PAD] [UNK] [MASK] by their BERT ids.
    assert field("tokenizer.ggml.bos_token_id") == 101
    assert field("tokenizer.ggml.seperator_token_id") == 102
    assert field("tokenizer.ggml.padding_token_id") == 0
    assert field("tokenizer.ggml.unknown_token_id") == 100
    assert field("tokenizer.ggml.mask_token_id") == 103

    tokens = field("tokenizer.ggml.tokens")
    types = field("tokenizer.ggml.token_type")
    assert len(tokens) == 30522
    # Word starts carry U+2581, "##" continuations lose their prefix, specials stay.
    assert tokens[1996] == "\u2581the"
    assert tokens[101] == "[CLS]" and types[101] == int(gguf.TokenType.CONTROL)
    assert tokens[0] == "[PAD]" and types[0] == int(gguf.TokenType.CONTROL)
    assert not any(token.startswith("##") for token in tokens)
    assert types[1996] == int(gguf.TokenType.NORMAL)


def test_gguf_tensor_types(reader: gguf.GGUFReader) -> None:
    tensors = {t.name: t.tensor_type for t in reader.tensors}
    f16, f32 = gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32
    assert len(tensors) == 101  # 5 embedding tensors + 6 layers x 16; the pooler is dropped
    assert tensors["token_embd.weight"] == f16
    assert tensors["blk.0.attn_q.weight"] == f16
    assert tensors["blk.5.ffn_down.weight"] == f16
    assert tensors["blk.0.attn_q.bias"] == f32
    assert tensors["blk.0.layer_output_norm.weight"] == f32
    assert tensors["token_embd_norm.weight"] == f32
    assert tensors["position_embd.weight"] == f32
    assert tensors["token_types.weight"] == f32


def test_conversion_is_cached(model_cache: Path, converted: Path) -> None:
    assert converted.parent == model_cache
    assert f"c{CONVERTER_VERSION}" in converted.name
    before = converted.stat()
    again = ensure_embedding_gguf(model_cache)
    assert again == converted
    after = again.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # No half-written temporary file is left next to it.
    assert sorted(p.name for p in model_cache.iterdir()) == [converted.name]


def test_cache_dir_follows_workbench_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    assert cache_dir_default() == tmp_path
    monkeypatch.delenv("WORKBENCH_CACHE")
    assert cache_dir_default().name == "workbench"
    assert embedding_gguf_name().endswith(f"-c{CONVERTER_VERSION}.gguf")
