"""Display objects: footers, Markdown and metadata, throttled streaming, the embedding heatmap."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from IPython.utils.capture import capture_output
from testing_shell import TestingShell, open_shell

from workbench.calls.results import ChatResponse, EmbedResponse
from workbench.calls.tools import ToolRun
from workbench.core.record import RunRecord
from workbench.notebook.cells import ChatOutcome
from workbench.notebook.display import ChatDisplay, StreamDisplay, footer
from workbench.notebook.embedview import EmbedResult


@pytest.fixture
def shell() -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


def chat_response(text: str = "**Hi** there", **fields: Any) -> ChatResponse:
    record = RunRecord(
        kind="chat", provider="openai", model="gpt-4o-mini", run_id="run42", output=text,
        prompt_tokens=12, completion_tokens=5, total_tokens=17, cost_usd=0.0000123,
        latency_s=0.5,
    )
    for name, value in fields.items():
        setattr(record, name, value)
    return ChatResponse(record=record)


def test_the_footer_line() -> None:
    assert footer(chat_response()) == "gpt-4o-mini · 12→5 tokens · $0.000012 · 0.50 s · run run42"
    replay = chat_response(cache_hit=True, cost_usd=0.0, latency_s=0.0, tokens_counted=True)
    assert footer(replay) == "gpt-4o-mini · ~12→5 tokens · $0 · 0.00 s · cached · run run42"
    unknown = chat_response(cost_usd=None, prompt_tokens=None, response_model="gpt-4o-mini-2024")
    assert footer(unknown).startswith("gpt-4o-mini-2024 · tokens unknown · cost unknown · ")


def test_an_answer_is_markdown_with_footer_and_metadata() -> None:
    shown = ChatDisplay(ChatOutcome([chat_response()]))
    data, metadata = shown._repr_mimebundle_()
    assert data["text/markdown"] == (
        '**Hi** there\n\n<sub class="tex2jax_ignore mathjax_ignore">'
        "gpt-4o-mini · 12→5 tokens · $0.000012 · 0.50 s · run run42</sub>"
    )
    assert data["text/plain"].startswith("**Hi** there\n\ngpt-4o-mini · 12→5")
    assert metadata == {"workbench": {
        "run_id": "run42", "model": "gpt-4o-mini", "prompt_tokens": 12,
        "completion_tokens": 5, "total_tokens": 17, "cost_usd": 0.0000123, "latency_s": 0.5,
        "cache_hit": False, "run_ids": ["run42"],
    }}
    json.dumps(metadata)  # notebooks store metadata as JSON


def test_json_answers_are_shown_parsed_or_with_the_parse_error() -> None:
    parsed = ChatDisplay(ChatOutcome([chat_response('{"a":[1]}')], json=True, parsed={"a": [1]}))
    assert parsed.markdown().startswith('```json\n{\n  "a": [\n    1\n  ]\n}\n```')
    broken = ChatOutcome([chat_response('{"a":')], json=True, parse_error="Expecting value")
    assert "Not valid JSON: Expecting value" in ChatDisplay(broken).markdown()


def test_tool_calls_are_listed_above_the_answer() -> None:
    runs = [
        ToolRun("c1", "forecast", '{"city": "Oslo"}', "sunny", ran=True),
        ToolRun("c2", "forecast", '{"city": "Rome"}'),
    ]
    outcome = ChatOutcome([chat_response(""), chat_response("Sunny.")], runs)
    markdown = ChatDisplay(outcome).markdown()
    assert markdown.startswith(
        '**Tool calls**\n- `forecast({"city": "Oslo"})` → `sunny`\n'
        '- `forecast({"city": "Rome"})` (not run: add --run-tools)\n\nSunny.'
    )
    assert "gpt-4o-mini · 2 calls · 12→5 tokens" in markdown


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_streaming_redraws_at_most_every_interval(shell: TestingShell) -> None:
    clock = Clock()
    screen = StreamDisplay(live=True, interval=0.25, clock=clock)
    with capture_output() as captured:
        for step in range(10):  # ten deltas, 0.1 s apart: one second of streaming
            clock.now = step * 0.1
            screen(f"w{step} ")
        screen.finish(ChatDisplay(ChatOutcome([chat_response("final")])))
    outputs = captured.outputs
    # Markdown from the first word, as the final answer is: no monospace, no reflow.
    assert outputs[0].data == {"text/markdown": "w0 ", "text/plain": "w0 "}
    assert not outputs[0].update
    redraws = [o.data["text/markdown"] for o in outputs[1:-1]]
    # Redrawn at 0.3, 0.6 and 0.9 s: never two within 0.25 s, so not per token.
    assert redraws == ["w0 w1 w2 w3 ", "w0 w1 w2 w3 w4 w5 w6 ", "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 "]
    assert all(o.update for o in outputs[1:])
    assert outputs[-1].data["text/markdown"].startswith("final\n\n<sub class=")
    assert outputs[-1].metadata["workbench"]["run_id"] == "run42"
    assert screen.text == "".join(f"w{i} " for i in range(10))


def test_a_status_line_shows_until_the_first_words_replace_it(shell: TestingShell) -> None:
    clock = Clock()
    screen = StreamDisplay(live=True, interval=0.25, clock=clock)
    with capture_output() as captured:
        screen.status("starting the local model…")
        screen("Hel")  # at once, not after the interval: the status must not linger
        screen.finish(ChatDisplay(ChatOutcome([chat_response("Hello")])))
    status, words, final = captured.outputs
    assert status.data["text/plain"] == "starting the local model…" and not status.update
    assert words.update and words.data["text/markdown"] == "Hel"
    assert final.update and final.data["text/markdown"].startswith("Hello")


def test_a_status_line_is_cleared_when_the_call_fails(shell: TestingShell) -> None:
    with (
        capture_output() as captured,
        pytest.raises(RuntimeError),
        StreamDisplay(live=True) as screen,
    ):
        screen.status("starting the local model…")
        raise RuntimeError("Unknown model")
    status, cleared = captured.outputs
    assert cleared.update and cleared.data == {"text/plain": ""}


def test_a_replay_streams_nothing_and_is_shown_once(shell: TestingShell) -> None:
    screen = StreamDisplay(live=True)
    with capture_output() as captured:
        screen.finish(ChatDisplay(ChatOutcome([chat_response("from the table")])))
    (only,) = captured.outputs
    assert not only.update and only.data["text/markdown"].startswith("from the table")


def test_a_terminal_gets_the_text_as_it_comes() -> None:
    out = io.StringIO()
    with StreamDisplay(live=False, stream=out) as screen:
        screen("Hel")
        screen("lo")
        screen.finish(ChatDisplay(ChatOutcome([chat_response("Hello")])))
    assert out.getvalue() == "Hello\n\ngpt-4o-mini · 12→5 tokens · $0.000012 · 0.50 s · run run42\n"
    broken = io.StringIO()
    with pytest.raises(RuntimeError), StreamDisplay(live=False, stream=broken) as screen:
        screen("partial")
        raise RuntimeError("connection lost")
    assert broken.getvalue() == "partial\n"  # the error then starts on its own line


TEXTS = ["a cat sat on the mat", "a kitten", "stock markets fell sharply today", "zero"]


def embed_result() -> EmbedResult:
    vectors = [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 2.0], [0.6, 0.8, 0.0]]
    record = RunRecord(
        kind="embed", provider="openai", model="text-embedding-3-small", run_id="e1",
        prompt_tokens=9, total_tokens=9, cost_usd=0.0, latency_s=0.1,
    )
    return EmbedResult(EmbedResponse(record=record, texts=TEXTS, embeddings=vectors))


def test_similarity_is_symmetric_with_ones_on_the_diagonal() -> None:
    result = embed_result()
    similarity = result.similarity()
    assert list(similarity.index) == list(similarity.columns) == TEXTS
    matrix = similarity.to_numpy()
    assert np.array_equal(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0)
    assert similarity.loc["a cat sat on the mat", "a kitten"] == pytest.approx(0.8)
    assert similarity.loc["a kitten", "zero"] == pytest.approx(0.96)


def test_nearest_by_text_or_index_and_the_frame() -> None:
    result = embed_result()
    nearest = result.nearest("a kitten", k=3)
    assert list(nearest.text) == ["a kitten", "zero", "a cat sat on the mat"]
    assert nearest.similarity.tolist() == pytest.approx([1.0, 0.96, 0.8])
    assert list(result.nearest(2, k=1).text) == ["stock markets fell sharply today"]
    assert result.df.shape == (4, 3) and list(result.df.index) == TEXTS
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0)


def test_the_heatmap_is_a_labelled_png_in_the_bundle() -> None:
    result = embed_result()
    ax = result.heatmap()
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "1  a cat sat on the mat", "2  a kitten", "3  stock markets fell sharply today", "4  zero"
    ]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert len(ax.texts) == 16  # every cell annotated
    assert result.png().startswith(b"\x89PNG\r\n\x1a\n")
    data, metadata = result._repr_mimebundle_()
    assert data["text/html"].startswith('<img src="data:image/png;base64,iVBOR')
    assert "text-embedding-3-small · 4 texts × 3 dims · 9 tokens · $0" in data["text/html"]
    assert "a kitten" in data["text/plain"] and "stock markets fell shar…" in data["text/plain"]
    assert metadata["workbench"]["run_id"] == "e1" and metadata["workbench"]["texts"] == 4


def test_the_heatmap_keeps_long_texts_readable_and_grows_with_them() -> None:
    long = "the quick brown fox jumps over the lazy dog while the cat watches from the mat"
    vectors = [[1.0, float(i), 0.5] for i in range(8)]
    record = RunRecord(kind="embed", provider="openai", model="m", run_id="e2")
    many = EmbedResult(EmbedResponse(record=record, texts=[long] * 8, embeddings=vectors))
    ax = many.heatmap()
    label = ax.get_yticklabels()[0]
    assert label.get_text().replace("\n    ", " ") == f"1  {long}"  # wrapped, not cut
    assert label.get_fontsize() >= 10 and ax.texts[0].get_fontsize() >= 9
    # At the figure's dpi, 10 pt is 14 px: the 5-7 px lettering is gone.
    assert ax.figure.dpi >= 100
    small = embed_result().heatmap().figure.get_size_inches()
    assert ax.figure.get_size_inches()[1] > small[1]


def test_the_heatmap_draws_on_a_given_axes() -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert embed_result().heatmap(ax=ax) is ax


def test_a_cut_or_filtered_answer_says_so() -> None:
    cut = chat_response(finish_reason="length", completion_tokens=40)
    assert "· cut at 40 tokens ·" in footer(cut)
    shown = ChatDisplay(ChatOutcome([cut]))._repr_mimebundle_()[0]
    assert "cut at 40 tokens: the answer is incomplete" in shown["text/markdown"]
    assert "cut at 40 tokens" in shown["text/plain"]
    assert "content filtered" in footer(chat_response(finish_reason="content_filter"))
    assert "cut at" not in footer(chat_response(finish_reason="stop"))


def test_a_replayed_answer_has_a_visible_note() -> None:
    replay = ChatDisplay(ChatOutcome([chat_response(cache_hit=True)]))._repr_mimebundle_()[0]
    assert "answered from the table · --fresh for a new sample" in replay["text/markdown"]
    fresh = ChatDisplay(ChatOutcome([chat_response()]))._repr_mimebundle_()[0]
    assert "answered from the table" not in fresh["text/markdown"]
