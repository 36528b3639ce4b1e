"""The Batch API with ``url: /v1/responses`` (issue 23): a sweep over both chat APIs is
one batch per API, each line the body its API takes, each answer read as its API answers.

OpenAI's Batch guide: "The endpoint to be used for all requests in the batch. Currently
/v1/responses, /v1/chat/completions, /v1/embeddings, /v1/completions, and
/v1/moderations are supported." (CreateBatchRequest.endpoint in openai/openai-openapi).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import Start, batch_servers
from batchserver import canned
from responses_server import check_request, message, response, usage

import workbench as wb


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[Start]:
    yield from batch_servers(monkeypatch)


def either(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if "input" not in body:
        return canned(body)
    check_request(body)
    said = body["input"][-1]["content"][0]["text"]
    return 200, response([message(f"responses: {said}")], used=usage(1000, 500))


def test_a_batch_sweep_over_both_apis_is_one_batch_per_api(start: Start) -> None:
    server = start(respond=either)
    s = wb.sweep("Say {{word}}.", vars={"word": ["cat", "dog"]},
                 grid={"api": ["chat", "responses"]}, model="gpt-4o-mini", max_tokens=20)
    df = s.run(mode="batch", progress=False)
    assert sorted(b.data["endpoint"] for b in server.batches.values()) == [
        "/v1/chat/completions", "/v1/responses"]
    for lines in server.input_lines():
        urls = {line["url"] for line in lines}
        assert len(urls) == 1  # every line of a file goes where its batch goes
        if urls == {"/v1/responses"}:
            assert all("api" not in line["body"] and "messages" not in line["body"]
                       for line in lines)
    assert (df.status == "ok").all() and set(df["mode"]) == {"batch"}
    by_api = df.groupby("api").output.apply(sorted).to_dict()
    assert by_api == {"chat": ["echo: Say cat.", "echo: Say dog."],
                      "responses": ["responses: Say cat.", "responses: Say dog."]}
    assert (df.prompt_tokens == 1000).all() and (df.completion_tokens == 500).all()
