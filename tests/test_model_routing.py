"""A hosted model is never answered by the local model (issue 20, item 6).

With no OPENAI_API_KEY the calls go to the embedded local model, which (as llama.cpp
does) answers whatever model name it is sent. So every front end asks
``providers.route`` first: a hosted name with no key, or a misspelled local name, is
refused with one line naming the fix, before anything starts or is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price

import workbench as wb
from workbench.api import local as local_mod
from workbench.api.providers import route
from workbench.calls.session import get_session
from workbench.core.errors import ConfigurationError, redact
from workbench.core.identity import request_hash
from workbench.core.record import RunRecord

HOSTED_NO_KEY = "'gpt-4o-mini' is a hosted model and no OPENAI_API_KEY is set"


@pytest.fixture(autouse=True)
def no_local_model(in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly if anything reaches for the local model: a refusal comes first."""
    started: list[str] = []

    def refuse_to_start() -> Any:
        started.append("local model")
        raise AssertionError("the local model was started for a refused call")

    monkeypatch.setattr(local_mod, "get_local_server", refuse_to_start)
    return started


def rows() -> int:
    return len(wb.runs())


CALLS: dict[str, Callable[[], Any]] = {
    "wb.chat": lambda: wb.chat("hi", model="gpt-4o-mini"),
    "wb.chat stream": lambda: wb.chat("hi", model="gpt-4o-mini", stream=True),
    "wb.sweep grid": lambda: wb.sweep(
        "Say {{w}}", vars={"w": ["a"]}, grid={"model": ["gpt-4o-mini", "gpt-4o"]}
    ),
    "wb.embed": lambda: wb.embed(["a"], model="text-embedding-3-small"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_a_hosted_model_without_a_key_is_refused_naming_the_fix(
    name: str, no_local_model: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        CALLS[name]()
    message = str(info.value)
    model = "text-embedding-3-small" if name == "wb.embed" else "gpt-4o-mini"
    assert message.startswith(f"{model!r} is a hosted model and no OPENAI_API_KEY is set")
    # The fix, both ways: the key (an example that survives masking), or the local name.
    assert "export OPENAI_API_KEY=YOUR_KEY" in message
    local_name = "all-minilm-l6-v2" if name == "wb.embed" else "smollm2-135m-instruct"
    assert f'model="{local_name}"' in message
    assert "\n" not in message and "Unknown model" not in message
    assert no_local_model == [] and rows() == 0


def test_every_no_key_message_reads_the_same_after_masking() -> None:
    # Every message goes through redact() before it is shown; "export
    # OPENAI_API_KEY=sk-..." came out as "export OPENAI_API_KEY=[redacted]".
    messages = [
        route("gpt-4o-mini").refusal,
        route("text-embedding-3-small").refusal,
        route(None, "openai").provider.missing_key(),
    ]
    for message in messages:
        assert message is not None and redact(message) == message


def test_a_misspelled_local_name_gets_did_you_mean() -> None:
    with pytest.raises(ConfigurationError) as info:
        wb.chat("hi", model="smolm2")
    assert str(info.value).startswith(
        "Unknown model 'smolm2' for provider 'local'. Did you mean 'smollm2-135m-instruct'?"
    )
    with pytest.raises(ConfigurationError, match="Did you mean 'all-minilm-l6-v2'"):
        wb.embed(["a"], model="all-minilm")
    assert rows() == 0


def test_the_local_provider_named_with_a_hosted_model_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="the local provider serves only"):
        wb.chat("hi", model="gpt-4o-mini", provider="local")
    with pytest.raises(ConfigurationError, match="the local provider serves only"):
        wb.chat("hi", model="local:gpt-4o")
    assert rows() == 0


def test_the_local_model_is_reached_by_its_own_names() -> None:
    for name in ("smollm2-135m-instruct", "all-minilm-l6-v2", None):
        routed = route(name)
        assert routed.provider.local and routed.refusal is None and routed.model == name


def test_the_estimate_prices_the_named_model_and_says_no_key_is_set() -> None:
    estimate = wb.estimate("Write a haiku about the sea", model="gpt-4o-mini", max_tokens=100)
    # genai-prices' own figure for the same tokens (it was $0 when the local model took it).
    expected = calc_price(
        PricesUsage(input_tokens=estimate.prompt_tokens, output_tokens=100),
        "gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert estimate.cost_high == Decimal(expected) and estimate.cost_high > 0
    assert estimate.note is not None and "no OPENAI_API_KEY is set" in estimate.note
    assert "no OPENAI_API_KEY is set" in str(estimate)
    # A name that is nobody's model is not priced: it is refused, with the suggestion.
    with pytest.raises(ConfigurationError, match="Did you mean 'smollm2-135m-instruct'"):
        wb.estimate("hi", model="smolm2")


def test_a_local_estimate_has_no_note() -> None:
    estimate = wb.estimate("hi", model="smollm2-135m-instruct", max_tokens=10)
    assert estimate.cost_high == 0 and estimate.note is None


def test_replay_never_serves_an_answer_from_another_model() -> None:
    # A row an older version stored: the local model answered "gpt-4o" under that name.
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    legacy = RunRecord(
        kind="chat",
        provider="local",
        model="gpt-4o",
        output="Hello from SmolLM2",
        status="ok",
        request_hash=request_hash("local", body),
        messages='[{"role": "user", "content": "hi"}]',
        prompt="hi",
    )
    get_session().store.append(legacy)
    with pytest.raises(ConfigurationError, match="'gpt-4o' is a hosted model"):
        wb.chat("hi", model="gpt-4o")
    assert rows() == 1  # the old row only: nothing replayed, nothing added


def test_the_playground_shows_the_refusal() -> None:
    panel = wb.Playground("hi", models=["gpt-4o-mini"])
    panel.run()
    assert HOSTED_NO_KEY.replace("'", "&#x27;") in panel.message.value
    assert panel.response is None and rows() == 0


def test_a_configured_provider_without_its_key(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp_dir / "workbench.toml").write_text(
        '[providers.corp]\nbase_url = "https://llm.corp.example/v1"\n'
        'api_key_env = "CORP_KEY"\nprice_provider = "openai"\n'
    )
    monkeypatch.delenv("CORP_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="No API key for provider 'corp'.*CORP_KEY"):
        wb.chat("hi", model="corp:gpt-4o-mini")
    estimate = wb.estimate("hi", model="corp:gpt-4o-mini", max_tokens=10)
    assert estimate.cost_high is not None and estimate.cost_high > 0
    assert estimate.note == "no CORP_KEY is set: set it to send these calls"
    # The call itself was refused when it was to be sent: a row with its error, as every
    # failed call is (nothing reached the network: the host does not exist).
    runs = wb.runs()
    assert list(runs.status) == ["error"] and "CORP_KEY" in runs.error[0]
