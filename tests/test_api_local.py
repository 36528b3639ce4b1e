"""The public API against the real embedded local model (no key, no internet)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.api.local import CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).parent / "data" / "minilm_embeddings.json"


def test_chat_returns_text_and_usage(in_tmp_dir: Path) -> None:
    answer = wb.chat("Say hello in one word.", max_tokens=16, temperature=0)
    assert answer.text.strip()
    assert answer.model == CHAT_MODEL_ALIAS
    assert answer.usage.prompt_tokens and answer.usage.prompt_tokens > 5
    assert answer.usage.completion_tokens and 0 < answer.usage.completion_tokens <= 16
    assert not answer.usage.counted
    assert answer.cost_usd == 0.0
    row = wb.runs().iloc[-1]
    assert row.provider == "local" and row.price_source == "local"


def test_streaming_gives_the_same_kind_of_result(in_tmp_dir: Path) -> None:
    deltas: list[str] = []
    answer = wb.chat(
        "Count from one to five.", max_tokens=24, temperature=0, stream=True,
        on_delta=deltas.append,
    )
    assert len(deltas) > 1 and "".join(deltas) == answer.text
    assert answer.ttft_s is not None and 0 < answer.ttft_s <= answer.latency_s
    assert answer.usage.completion_tokens == 24 or answer.finish_reason == "stop"
    params = json.loads(wb.runs().iloc[-1].params)
    assert params["stream"] is True and params["stream_options"] == {"include_usage": True}
    # Greedy decoding: the streamed text equals the plain one, which is a replay of it.
    plain = wb.chat("Count from one to five.", max_tokens=24, temperature=0)
    assert plain.cache_hit and plain.text == answer.text


def test_same_seed_same_text_different_seeds_differ(in_tmp_dir: Path) -> None:
    prompt = "Write a one-line story about a cat."
    first = wb.chat(prompt, temperature=0.8, seed=42, max_tokens=32)
    second = wb.chat(prompt, temperature=0.8, seed=42, max_tokens=32, fresh=True)
    assert not second.cache_hit
    assert first.text == second.text
    texts = {wb.chat(prompt, temperature=0.8, seed=s, max_tokens=32).text for s in range(1, 6)}
    assert len(texts) >= 3


def test_async_twins(in_tmp_dir: Path) -> None:
    async def both() -> tuple[wb.ChatResponse, wb.EmbedResponse]:
        return await asyncio.gather(  # type: ignore[return-value]
            wb.achat("Name a colour.", max_tokens=8, temperature=0),
            wb.aembed(["a red apple", "a green pear"]),
        )

    answer, vectors = asyncio.run(both())
    assert answer.text.strip()
    assert vectors.vectors.shape == (2, 384)
    assert len(wb.runs()) == 2


def test_embeddings_match_the_reference(in_tmp_dir: Path) -> None:
    reference = json.loads(REFERENCE.read_text())
    texts = [item["text"] for item in reference["items"]]
    expected = np.asarray([item["embedding"] for item in reference["items"]], dtype=np.float64)
    result = wb.embed(texts)
    assert result.model == EMBEDDING_MODEL_ALIAS
    cosines = np.sum(result.vectors * expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.999
    assert result.usage.prompt_tokens and result.usage.prompt_tokens > len(texts)


def test_models_list_names_both_aliases(in_tmp_dir: Path) -> None:
    from workbench.calls.session import get_session

    session = get_session()
    provider, _ = session.resolve(None, None)
    names = session.models(provider)
    assert CHAT_MODEL_ALIAS in names and EMBEDDING_MODEL_ALIAS in names
