"""The chat and Responses stream readers share one delta shape (api/stream_events.py):
the same handling of an event's data, of text and refusal pieces, of output seen and of
an error event, each reader mapping only its own wire events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from workbench.api.responses_stream import ResponsesAccumulator
from workbench.api.stream_events import DeltaAccumulator, StreamProtocolError
from workbench.api.streaming import StreamAccumulator


def chat_text(text: str) -> dict[str, Any]:
    return {"id": "c1", "choices": [{"index": 0, "delta": {"content": text}}]}


def chat_refusal(text: str) -> dict[str, Any]:
    return {"id": "c1", "choices": [{"index": 0, "delta": {"refusal": text}}]}


def responses_text(text: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "delta": text}


def responses_refusal(text: str) -> dict[str, Any]:
    return {"type": "response.refusal.delta", "delta": text}


Event = Callable[[str], dict[str, Any]]
READERS = [
    pytest.param(StreamAccumulator, chat_text, chat_refusal, {"error": {"message": "overloaded"}},
                 id="chat"),
    pytest.param(ResponsesAccumulator, responses_text, responses_refusal,
                 {"type": "error", "message": "overloaded"}, id="responses"),
]


@pytest.mark.parametrize(("reader", "text", "refusal", "error"), READERS)
def test_both_readers_collect_text_and_refusal_pieces_alike(
        reader: type[DeltaAccumulator], text: Event, refusal: Event, error: dict[str, Any]
) -> None:
    acc = reader()
    assert isinstance(acc, DeltaAccumulator)
    assert acc.feed_data("") == "" and acc.feed_data("  ") == ""  # a ping carries nothing
    assert not acc.has_output and not acc.done
    assert acc.feed_data(json.dumps(text(""))) == ""
    assert not acc.has_output  # an empty delta is not output yet
    assert acc.feed_data(json.dumps(text("Hel"))) == "Hel"
    assert acc.has_output
    assert acc.feed_data(json.dumps(text("lo"))) == "lo"
    assert acc.text == "Hello" and acc.text_parts == ["Hel", "lo"]
    acc.feed_data(json.dumps(refusal("I can")))
    acc.feed_data(json.dumps(refusal("not.")))
    assert "".join(acc.refusal_parts) == "I cannot."
    assert acc.feed_data("[DONE]") == "" and acc.done


@pytest.mark.parametrize(("reader", "text", "refusal", "error"), READERS)
def test_a_refusal_alone_is_output(
        reader: type[DeltaAccumulator], text: Event, refusal: Event, error: dict[str, Any]
) -> None:
    acc = reader()
    acc.feed_data(json.dumps(refusal("No.")))
    assert acc.has_output and acc.text == ""


@pytest.mark.parametrize(("reader", "text", "refusal", "error"), READERS)
@pytest.mark.parametrize(("data", "problem"), [
    ('{"choices": [', "malformed event JSON"),
    ("[1, 2]", "event is not a JSON object"),
])
def test_both_readers_refuse_unusable_data_alike(
        reader: type[DeltaAccumulator], text: Event, refusal: Event, error: dict[str, Any],
        data: str, problem: str) -> None:
    with pytest.raises(StreamProtocolError, match=problem):
        reader().feed_data(data)


@pytest.mark.parametrize(("reader", "text", "refusal", "error"), READERS)
def test_both_readers_stop_at_an_error_event_with_its_message(
        reader: type[DeltaAccumulator], text: Event, refusal: Event, error: dict[str, Any]
) -> None:
    acc = reader()
    acc.feed_data(json.dumps(text("partial")))
    with pytest.raises(StreamProtocolError, match="the server sent an error event: overloaded"):
        acc.feed_data(json.dumps(error))
    assert acc.text == "partial" and not acc.done  # what arrived is kept for the error row
