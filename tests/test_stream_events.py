"""The chat and Responses stream readers share one delta shape (api/stream_events.py):
the same handling of an event's data, of text and refusal pieces, of output seen and of
an error event, each reader mapping only its own wire events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Reader:
    """One stream reader and how its wire writes a text delta, a refusal delta, an error."""

    make: type[DeltaAccumulator]
    text: Callable[[str], dict[str, Any]]
    refusal: Callable[[str], dict[str, Any]]
    error: dict[str, Any]

    def feed(self, acc: DeltaAccumulator, event: dict[str, Any]) -> str:
        return acc.feed_data(json.dumps(event))


@pytest.fixture(params=[
    Reader(StreamAccumulator, chat_text, chat_refusal, {"error": {"message": "overloaded"}}),
    Reader(ResponsesAccumulator, responses_text, responses_refusal,
           {"type": "error", "message": "overloaded"}),
], ids=["chat", "responses"])
def reader(request: pytest.FixtureRequest) -> Reader:
    return request.param  # type: ignore[no-any-return]


def test_both_readers_collect_text_and_refusal_pieces_alike(reader: Reader) -> None:
    acc = reader.make()
    assert acc.feed_data("") == "" and acc.feed_data("  ") == ""  # a ping carries nothing
    assert not acc.has_output and not acc.done
    assert reader.feed(acc, reader.text("")) == ""
    assert not acc.has_output  # an empty delta is not output yet
    assert reader.feed(acc, reader.text("Hel")) == "Hel"
    assert acc.has_output
    assert reader.feed(acc, reader.text("lo")) == "lo"
    assert acc.text == "Hello" and acc.text_parts == ["Hel", "lo"]
    reader.feed(acc, reader.refusal("I can"))
    reader.feed(acc, reader.refusal("not."))
    assert "".join(acc.refusal_parts) == "I cannot."
    assert acc.feed_data("[DONE]") == "" and acc.done


def test_a_refusal_alone_is_output(reader: Reader) -> None:
    acc = reader.make()
    reader.feed(acc, reader.refusal("No."))
    assert acc.has_output and acc.text == ""


@pytest.mark.parametrize(("data", "problem"), [
    ('{"choices": [', "malformed event JSON"),
    ("[1, 2]", "event is not a JSON object"),
])
def test_both_readers_refuse_unusable_data_alike(reader: Reader, data: str,
                                                  problem: str) -> None:
    with pytest.raises(StreamProtocolError, match=problem):
        reader.make().feed_data(data)


def test_both_readers_stop_at_an_error_event_with_its_message(reader: Reader) -> None:
    acc = reader.make()
    reader.feed(acc, reader.text("partial"))
    with pytest.raises(StreamProtocolError) as raised:
        reader.feed(acc, reader.error)
    # The server's own words, not wrapped as if the event's shape were wrong.
    assert str(raised.value) == "the server sent an error event: overloaded"
    assert acc.text == "partial" and not acc.done  # what arrived is kept for the error row
