"""Speaking the API exactly (issue 14), against a loopback server that answers as the
OpenAI spec documents: embedding limits, reasoning models, JSON mode, refusals, logprobs
and every returned field the table has a column for, streamed or not.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from loopback import LoopbackAPI, Received, Reply
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api.jsonmode import JSON_INSTRUCTION, schema_name
from workbench.calls.embedding import MAX_INPUTS_PER_REQUEST, split_inputs
from workbench.core.errors import BadRequestError, InvalidInputError
from workbench.core.tokens import count_tokens
from workbench.notebook.cells import response_format_for
from workbench.notebook.display import ChatDisplay

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]
MODELS = ["gpt-4o-mini", "o3-mini", "o4-mini", "gpt-5-mini", "text-embedding-3-small"]


def spec_error(message: str, status: int = 400) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "invalid_request_error"}})


def completion(
    message: dict[str, Any],
    *,
    model: str = "gpt-4o-mini",
    logprobs: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` as the spec's example responses are shaped."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": None, "refusal": None, **message},
        "logprobs": None if logprobs is None else {"content": logprobs, "refusal": None},
        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
    }
    return {
        "id": "chatcmpl-spec",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": f"{model}-2025-01-01",
        "system_fingerprint": "fp_spec",
        "service_tier": "default",
        "choices": [choice],
        "usage": usage
        or {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def streamed(answer: dict[str, Any]) -> Reply:
    """The same answer as ``chat.completion.chunk`` events, in small pieces."""
    choice, message = answer["choices"][0], answer["choices"][0]["message"]
    base = {k: answer[k] for k in ("id", "created", "model", "system_fingerprint", "service_tier")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None, **extra}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    for key in ("content", "refusal"):
        text = message.get(key) or ""
        for start in range(0, len(text), 4):
            chunks.append(chunk({key: text[start : start + 4]}))
    for entry in (choice.get("logprobs") or {}).get("content") or []:
        chunks.append(chunk({"content": ""}, logprobs={"content": [entry], "refusal": None}))
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, **call}]}))
    last = chunk({})
    last["choices"][0]["finish_reason"] = choice["finish_reason"]
    chunks.append(last)
    chunks.append({**base, "choices": [], "usage": answer["usage"]})
    data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return Reply(body=data.encode(), headers={"content-type": "text/event-stream"})


def answer_with(make: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Received], Reply]:
    def handle(request: Received) -> Reply:
        if request.path.endswith("/models"):
            return Reply(body={"object": "list", "data": [{"id": m} for m in MODELS]})
        answer = make(request.body)
        return streamed(answer) if request.body.get("stream") else Reply(body=answer)

    return handle


def chat_bodies(api: LoopbackAPI) -> list[dict[str, Any]]:
    return [r.body for r in api.received if r.path.endswith("/chat/completions")]


@pytest.fixture
def start(start_api: Start) -> Start:
    wb.configure(max_retries=0)
    return start_api


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


# ---------------------------------------------------------------- 1. embedding limits


def embeddings_api(
    *, fail_batch: int | None = None, concurrent: int = 1
) -> Callable[[Received], Reply]:
    """/embeddings by the spec: at most 2,048 inputs and 300,000 tokens, else HTTP 400.
    Each vector is [the text's number, batch size]. With ``concurrent`` > 1 the first
    that many requests must be in flight together, or they fail (a barrier, no timing)."""
    barrier = threading.Barrier(concurrent) if concurrent > 1 else None
    seen = {"batches": 0}
    lock = threading.Lock()

    def handle(request: Received) -> Reply:
        inputs = request.body["input"]
        if len(inputs) > MAX_INPUTS_PER_REQUEST:
            return spec_error(f"'$.input' is too long: {len(inputs)} > 2048 items")
        tokens = sum(count_tokens(t, "text-embedding-3-small") for t in inputs)
        if tokens > 300_000:
            return spec_error(f"Requested {tokens} tokens, max 300000 tokens per request")
        with lock:
            seen["batches"] += 1
            number = seen["batches"]
        if barrier is not None and number <= concurrent:
            try:
                barrier.wait(timeout=20)
            except threading.BrokenBarrierError:
                return spec_error("requests were sent one after another", 500)
        if number == fail_batch:
            return spec_error("this batch fails")
        data = [
            {"object": "embedding", "index": i, "embedding": [float(t.split()[-1]), len(inputs)]}
            for i, t in enumerate(inputs)
        ]
        return Reply(
            body={
                "object": "list",
                "data": data,
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return handle


def test_split_inputs_keeps_order_within_both_limits() -> None:
    texts = [f"t{i}" for i in range(10)]
    sizes = {t: (5 if t == "t3" else 1) for t in texts}
    batches = split_inputs(texts, sizes.__getitem__, max_inputs=4, max_tokens=6)
    assert [t for batch in batches for t in batch] == texts
    assert batches == [["t0", "t1", "t2"], ["t3", "t4"], ["t5", "t6", "t7", "t8"], ["t9"]]
    assert split_inputs(["huge"], lambda t: 10, max_tokens=6) == [["huge"]]  # alone


@pytest.mark.parametrize("run_async", [False, True])
def test_5000_texts_go_in_requests_of_at_most_2048(start: Start, run_async: bool) -> None:
    api = start(embeddings_api(concurrent=3))
    texts = [f"text number {i}" for i in range(5000)]
    if run_async:
        import asyncio

        answer = asyncio.run(wb.aembed(texts, model="text-embedding-3-small"))
    else:
        answer = wb.embed(texts, model="text-embedding-3-small")

    sizes = sorted(len(r.body["input"]) for r in api.received)
    assert sizes == [904, 2048, 2048]
    assert [v[0] for v in answer.embeddings] == list(range(5000))  # in the caller's order
    row = wb.runs().iloc[-1]
    assert len(wb.runs()) == 1 and row.status == "ok" and row.requests == 3
    assert row.prompt_tokens == sum(count_tokens(t, "text-embedding-3-small") for t in texts)
    again = wb.embed(texts, model="text-embedding-3-small")  # every text was cached
    assert again.cache_hit and len(api.received) == 3 and wb.runs().iloc[-1].requests == 0


def test_requests_stay_under_300000_tokens(start: Start) -> None:
    api = start(embeddings_api())
    texts = [" ".join(["word"] * 120_000) + f" {i}" for i in range(3)]  # ~120k tokens each
    wb.embed(texts, model="text-embedding-3-small")
    assert sorted(len(r.body["input"]) for r in api.received) == [1, 2]  # sent together
    assert wb.runs().iloc[-1].requests == 2


def test_a_failed_request_is_an_error_row_and_the_paid_ones_are_kept(start: Start) -> None:
    api = start(embeddings_api(fail_batch=2))
    texts = [f"text {i}" for i in range(3000)]
    with pytest.raises(BadRequestError, match="this batch fails"):
        wb.embed(texts, model="text-embedding-3-small")
    row = wb.runs().iloc[-1]
    assert row.status == "error" and row.requests == 2 and row.prompt_tokens > 0
    # Whichever request failed, the other one's vectors are in the table: only the rest
    # is sent again.
    wb.embed(texts, model="text-embedding-3-small")
    resent = [len(r.body["input"]) for r in api.received[2:]]
    assert len(resent) == 1 and resent[0] in (2048, 952)


# ---------------------------------------------------------------- 3. reasoning models


def reasoning_answer(body: dict[str, Any]) -> dict[str, Any]:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 90,
        "total_tokens": 102,
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    return completion({"content": "42"}, model=body["model"], usage=usage)


@pytest.mark.parametrize("model", ["o3-mini", "o1", "o4-mini-2025-04-16", "gpt-5-mini", "gpt-5.1"])
def test_reasoning_models_get_max_completion_tokens(start: Start, model: str) -> None:
    api = start(answer_with(reasoning_answer))
    answer = wb.chat("Think.", model=model, max_tokens=300, reasoning_effort="low")
    body = chat_bodies(api)[0]
    assert "max_tokens" not in body and body["max_completion_tokens"] == 300
    assert body["reasoning_effort"] == "low"
    row = wb.runs().iloc[-1]
    assert row.max_tokens == 300 and json.loads(row.params)["max_completion_tokens"] == 300
    assert row.reasoning_tokens == 64 and answer.usage.reasoning_tokens == 64


def test_other_models_keep_max_tokens(start: Start) -> None:
    api = start(answer_with(reasoning_answer))
    wb.chat("Hi.", model="gpt-4o-mini", max_tokens=30)
    wb.chat("Hi.", model="gpt-5-chat-latest", max_tokens=30)
    assert all(b["max_tokens"] == 30 and "max_completion_tokens" not in b for b in chat_bodies(api))


def test_a_sampling_knob_is_refused_before_sending(start: Start) -> None:
    api = start(answer_with(reasoning_answer))
    for knobs in ({"temperature": 0.7}, {"top_p": 0.5}):
        with pytest.raises(InvalidInputError) as info:
            wb.chat("Think.", model="o3-mini", **knobs)
        message = str(info.value)
        assert "reasoning model" in message and "default" in message and "\n" not in message
    wb.chat("Think.", model="o3-mini", temperature=1)  # the default is accepted
    assert len(chat_bodies(api)) == 1 and len(wb.runs()) == 1


def test_workbench_toml_names_reasoning_models(start: Start, in_tmp_dir: Path) -> None:
    api = start(answer_with(reasoning_answer))
    (in_tmp_dir / "workbench.toml").write_text(
        f'[providers.proxy]\nbase_url = "{api.base_url}"\n'
        'reasoning_models = ["my-proxy-model"]\n'
        f'[providers.thinking]\nbase_url = "{api.base_url}"\nreasoning = true\n'
        f'[providers.plain]\nbase_url = "{api.base_url}"\nreasoning = false\n'
    )
    wb.chat("a", model="proxy:my-proxy-model", max_tokens=5)
    wb.chat("b", model="proxy:other", max_tokens=5)
    wb.chat("c", model="thinking:anything", max_tokens=5)
    wb.chat("d", model="plain:o3-mini", max_tokens=5)
    sent = ["max_completion_tokens" in body for body in chat_bodies(api)]
    assert sent == [True, False, True, False]


def test_the_magic_sends_reasoning_effort_and_refuses_temperature(
    start: Start, shell: TestingShell
) -> None:
    api = start(answer_with(reasoning_answer))
    shell.run_cell("%%chat -m o4-mini --max-tokens 200 --reasoning-effort high --out r\nThink.")
    body = chat_bodies(api)[0]
    assert body["reasoning_effort"] == "high" and body["max_completion_tokens"] == 200
    assert "(64 reasoning)" in shell.user_ns["r"].footer
    with pytest.raises(UsageError, match="reasoning model"):
        shell.run_cell("%%chat -m o4-mini -t 0.2\nThink.")
    assert len(chat_bodies(api)) == 1


def test_reasoning_effort_is_a_sweep_knob(start: Start, shell: TestingShell) -> None:
    api = start(answer_with(reasoning_answer))
    shell.run_cell("%%chat -m o3-mini --reasoning-effort low,high --max-tokens 50\nThink.")
    shell.run_cell("%%chat -m gpt-4o-mini --seed 1,2 --logprobs 2\nThink.")
    sweep = wb.sweep("Why?", model="o3-mini", grid={"reasoning_effort": ["low", "medium"]})
    sweep.run()
    bodies = chat_bodies(api)
    # Each sweep's calls run concurrently: their order within the sweep is not fixed.
    efforts = [sorted(str(b.get("reasoning_effort")) for b in bodies[i : i + 2]) for i in (0, 2, 4)]
    assert efforts == [["high", "low"], ["None", "None"], ["low", "medium"]]
    assert all(b["top_logprobs"] == 2 and b["logprobs"] for b in bodies[2:4])


def test_the_estimate_bounds_reasoning_by_max_completion_tokens(start: Start) -> None:
    start(answer_with(reasoning_answer))
    sweep = wb.sweep("Why?", model="o3-mini", grid={"seed": [1, 2]}, max_completion_tokens=200)
    assert sweep.estimate().completion_tokens_max == 400
    wb.chat("Before.", model="o3-mini", max_tokens=200)  # 90 completion tokens, 64 reasoning
    estimate = wb.sweep("Why?", model="o3-mini", grid={"seed": [1, 2]}, max_tokens=60).estimate()
    # Earlier runs' completion tokens include their reasoning: expected is capped at max.
    assert estimate.completion_tokens_max == 120 and estimate.completion_tokens_expected == 120


# ---------------------------------------------------------------- 4. JSON mode


def json_answer(body: dict[str, Any]) -> dict[str, Any]:
    text = " ".join(str(m.get("content")) for m in body["messages"])
    if body.get("response_format", {}).get("type") == "json_object" and "json" not in text.lower():
        raise AssertionError("the API answers 400 here; the workbench must not send this")
    name = body.get("response_format", {}).get("json_schema", {}).get("name")
    if name is not None and not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
        raise AssertionError(f"invalid json_schema.name {name!r}")
    return completion({"content": '{"colours": ["red"]}'})


def test_json_mode_adds_an_instruction_only_when_needed(start: Start, shell: TestingShell) -> None:
    api = start(answer_with(json_answer))
    shell.run_cell("%%chat -m gpt-4o-mini --json --out a\nList three colours.")
    shell.run_cell("%%chat -m gpt-4o-mini --json --out b\nList three colours as Json.")
    first, second = chat_bodies(api)
    assert first["messages"][0] == {"role": "system", "content": JSON_INSTRUCTION}
    assert [m["role"] for m in second["messages"]] == ["user"]
    assert "JSON instruction added" in shell.user_ns["a"].footer
    assert "JSON instruction added" not in shell.user_ns["b"].footer
    assert shell.user_ns["a"].parsed == {"colours": ["red"]}
    wb.chat("Colours?", response_format={"type": "json_object"})  # Python too
    assert chat_bodies(api)[2]["messages"][0]["content"] == JSON_INSTRUCTION


def test_schema_names_are_made_valid(start: Start, shell: TestingShell) -> None:
    api = start(answer_with(json_answer))
    schema = {"type": "object", "properties": {"colours": {"type": "array"}}}
    long_name = "colour_schema_" + "x" * 70
    shell.user_ns.update({"données": schema, long_name: schema})
    shell.run_cell("%%chat -m gpt-4o-mini --schema données\nColours?")
    shell.run_cell(f"%%chat -m gpt-4o-mini --schema {long_name}\nColours?")
    names = [b["response_format"]["json_schema"]["name"] for b in chat_bodies(api)]
    assert names == ["donn_es", long_name[:64]]
    assert schema_name("ü") == "schema" and schema_name("ünï") == "n"
    assert schema_name("ok-name_1") == "ok-name_1"
    assert response_format_for(schema, "a.b")[0]["json_schema"]["name"] == "a_b"


# ---------------------------------------------------------------- 5. refusals


REFUSAL = "I'm sorry, I can't help with that."


def refusing(body: dict[str, Any]) -> dict[str, Any]:
    return completion({"refusal": REFUSAL})


@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_is_kept_and_shown_as_one(start: Start, stream: bool) -> None:
    start(answer_with(refusing))
    answer = wb.chat("Do something bad.", stream=stream)
    assert answer.text == "" and answer.refusal == REFUSAL
    row = wb.runs().iloc[-1]
    assert row.refusal == REFUSAL and row.status == "ok"
    assert wb.chat("Do something bad.", stream=stream).refusal == REFUSAL  # replayed too


def test_refusals_in_the_footer_views_and_plots(start: Start, shell: TestingShell) -> None:
    import matplotlib

    matplotlib.use("Agg")
    ok = completion({"content": "ok"})
    start(answer_with(lambda body: refusing(body) if body.get("seed") == 2 else ok))
    shell.run_cell("%%chat -m gpt-4o-mini --seed 1,2 --out s\nDo it.")
    shell.run_cell("%%chat -m gpt-4o-mini --seed 2 --out one\nDo it.")
    shown: ChatDisplay = shell.user_ns["one"]
    assert "refused" in shown.footer and f"**Refused:** {REFUSAL}" in shown.markdown()
    sweep = shell.user_ns["s"]
    assert list(sweep.table().iloc[0]) == ["ok", f"[refused] {REFUSAL}"]
    html = wb.compare(sweep, by="seed")._repr_html_()
    assert "wb-refusal" in html and "refused: I&#x27;m sorry" in html
    ax = wb.plots.outcomes(sweep, by="seed")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["finished", "refused"]
    heights = sorted(round(p.get_height()) for p in ax.patches)
    assert heights == [0, 0, 1, 1]  # seed 1: one stop; seed 2: one refusal, not "empty"
    assert "1 refusals left out" in wb.plots.length(sweep, by="seed").get_title()


# ---------------------------------------------------------------- 6. logprobs


def token(text: str, logprob: float, *alternatives: tuple[str, float]) -> dict[str, Any]:
    def entry(t: str, lp: float) -> dict[str, Any]:
        return {"token": t, "logprob": lp, "bytes": list(t.encode())}

    return {**entry(text, logprob), "top_logprobs": [entry(t, lp) for t, lp in alternatives]}


TOKENS = [
    token("Hello", -0.01, ("Hello", -0.01), ("Hi", -4.6)),
    token("<b>", -2.3, ("<b>", -2.3), (" there", -0.3)),
]


@pytest.mark.parametrize("stream", [False, True])
def test_logprobs_are_stored_and_viewed(start: Start, stream: bool) -> None:
    api = start(answer_with(lambda b: completion({"content": "Hello<b>"}, logprobs=TOKENS)))
    answer = wb.chat("Greet.", logprobs=True, top_logprobs=2, stream=stream)
    assert chat_bodies(api)[0]["top_logprobs"] == 2
    row = wb.runs().iloc[-1]
    assert json.loads(row.logprobs) == [
        ["Hello", -0.01, [["Hello", -0.01], ["Hi", -4.6]]],
        ["<b>", -2.3, [["<b>", -2.3], [" there", -0.3]]],
    ]
    assert [t.token for t in answer.logprobs] == ["Hello", "<b>"]
    for run in (answer, row, answer.run_id):
        page = wb.plots.logprobs(run)._repr_html_()
        assert "&lt;b&gt;" in page and "<b>" not in page  # tokens are escaped
        assert "title=\"&#x27;&lt;b&gt;&#x27; 10% · alternatives:" in page
        assert "var(--jp-" in page and not re.search(r"#[0-9a-fA-F]{3,6}\b", page)


def test_a_run_without_logprobs_says_how_to_get_them(start: Start) -> None:
    start(answer_with(lambda b: completion({"content": "hi"})))
    answer = wb.chat("Greet.")
    with pytest.raises(InvalidInputError, match="logprobs=True"):
        wb.plots.logprobs(answer)
    with pytest.raises(InvalidInputError, match="No run"):
        wb.plots.logprobs("nope")


# ---------------------------------------------------------------- 7. every field kept


def everything(body: dict[str, Any]) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    return completion({"content": "Hi", "tool_calls": [call]}, logprobs=TOKENS[:1])


def test_a_stream_keeps_every_column_a_plain_answer_keeps(start: Start) -> None:
    start(answer_with(everything))
    wb.chat("Hi.", logprobs=True, top_logprobs=2)
    wb.chat("Hi.", logprobs=True, top_logprobs=2, stream=True)
    plain, streamed_row = (wb.runs().iloc[i] for i in (0, 1))
    columns = [
        "response_model", "output", "finish_reason", "tool_calls", "prompt_tokens",
        "completion_tokens", "cached_tokens", "reasoning_tokens", "total_tokens",
        "system_fingerprint", "refusal", "logprobs", "service_tier",
    ]
    assert plain.service_tier == "default" and plain.cached_tokens == 3
    assert plain.response_model == "gpt-4o-mini-2025-01-01"
    for column in columns:
        assert plain[column] == streamed_row[column] or (
            pd.isna(plain[column]) and pd.isna(streamed_row[column])  # missing text is NaN
        ), column


def test_reasoning_models_by_name() -> None:
    from workbench.api.reasoning import is_reasoning_model

    reasoning = ["o1", "o1-preview", "o3-pro", "o4-mini", "gpt-5", "gpt-5-nano", "openai/o3-mini"]
    others = ["gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "omni-moderation-latest", "llama3"]
    assert all(is_reasoning_model(name) for name in reasoning)
    assert not any(is_reasoning_model(name) for name in others)


def test_a_bad_reasoning_setting_in_workbench_toml_is_one_line(in_tmp_dir: Path) -> None:
    from workbench.api.providers import load_config
    from workbench.core.errors import ConfigurationError

    (in_tmp_dir / "workbench.toml").write_text(
        '[providers.p]\nbase_url = "http://x/v1"\nreasoning_models = "o3"\n'
    )
    with pytest.raises(ConfigurationError, match="must be a list of model names"):
        load_config()


def test_a_refused_schema_answer_says_refused(start: Start, shell: TestingShell) -> None:
    start(answer_with(refusing))
    shell.user_ns["shape"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    with pytest.raises(UsageError, match="the model refused: I'm sorry"):
        shell.run_cell("%%chat -m gpt-4o-mini --schema shape --out got\nDo it.")
    assert "got" not in shell.user_ns


def test_compare_sets_reasoning_efforts_side_by_side(start: Start) -> None:
    start(answer_with(lambda body: completion({"content": body["reasoning_effort"]})))
    sweep = wb.sweep("Why?", model="o3-mini", grid={"reasoning_effort": ["low", "high"]})
    sweep.run()
    table = wb.compare(sweep)
    assert table.df.iloc[0].to_dict() == {
        "reasoning_effort=low": "low",
        "reasoning_effort=high": "high",
    }
