"""A replay answers only for the same server: two real loopback servers, one question."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.core.identity import request_hash

QUESTION = "What is the capital of France?"


def answering(name: str) -> Callable[[Received], Reply]:
    def handler(request: Received) -> Reply:
        if request.path.endswith("/embeddings"):
            vector = [1.0, 0.0] if name == "A" else [0.0, 1.0]
            data = [{"object": "embedding", "index": 0, "embedding": vector}]
            usage = {"prompt_tokens": 2, "total_tokens": 2}
            return Reply(body={"object": "list", "data": data, "model": "e", "usage": usage})
        return chat_reply(f"Paris, says {name}.")

    return handler


def origin(api: LoopbackAPI) -> str:
    return api.base_url.removeprefix("http://").removesuffix("/v1")


@pytest.fixture
def two_servers(
    start_api: Callable[[Callable[[Any], Any]], LoopbackAPI],
) -> tuple[LoopbackAPI, LoopbackAPI]:
    return start_api(answering("A")), start_api(answering("B"))


def test_switching_the_base_url_sends_to_the_new_server_not_a_replay_of_the_old(
    two_servers: tuple[LoopbackAPI, LoopbackAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_servers
    monkeypatch.setenv("OPENAI_BASE_URL", a.base_url)
    assert wb.chat(QUESTION, model="gpt-4o-mini").text == "Paris, says A."
    monkeypatch.setenv("OPENAI_BASE_URL", b.base_url)
    from_b = wb.chat(QUESTION, model="gpt-4o-mini")
    assert from_b.text == "Paris, says B." and not from_b.record.cache_hit
    assert (a.count("/chat/completions"), b.count("/chat/completions")) == (1, 1)
    # Back on A, A's answer is replayed from the table: same server, same question.
    monkeypatch.setenv("OPENAI_BASE_URL", a.base_url)
    again = wb.chat(QUESTION, model="gpt-4o-mini")
    assert again.text == "Paris, says A." and again.record.cache_hit
    assert a.count("/chat/completions") == 1

    rows = wb.runs()
    on_a, on_b = f"openai@{origin(a)}", f"openai@{origin(b)}"
    assert list(rows.provider) == [on_a, on_b, on_a]
    assert rows.request_hash[0] == rows.request_hash[2] != rows.request_hash[1]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    assert rows.request_hash[1] == request_hash(f"openai@{origin(b)}", body)


def test_embeddings_too_answer_only_for_the_same_server(
    two_servers: tuple[LoopbackAPI, LoopbackAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_servers
    monkeypatch.setenv("OPENAI_BASE_URL", a.base_url)
    assert wb.embed("a cat", model="e").vectors.tolist() == [[1.0, 0.0]]
    monkeypatch.setenv("OPENAI_BASE_URL", b.base_url)
    assert wb.embed("a cat", model="e").vectors.tolist() == [[0.0, 1.0]]
    assert (a.count("/embeddings"), b.count("/embeddings")) == (1, 1)


def test_a_provider_named_in_workbench_toml_shares_replays_across_urls(
    two_servers: tuple[LoopbackAPI, LoopbackAPI], in_tmp_dir: Path
) -> None:
    a, b = two_servers  # one service, reached by two URLs (two machines, one proxy)
    toml = in_tmp_dir / "workbench.toml"
    toml.write_text(f'[providers.team]\nbase_url = "{a.base_url}"\n')
    assert wb.chat(QUESTION, model="team:gpt-4o-mini").text == "Paris, says A."
    toml.write_text(f'[providers.team]\nbase_url = "{b.base_url}"\n')
    replayed = wb.chat(QUESTION, model="team:gpt-4o-mini")
    assert replayed.text == "Paris, says A." and replayed.record.cache_hit
    assert b.count() == 0
    assert set(wb.runs().provider) == {"team"}
