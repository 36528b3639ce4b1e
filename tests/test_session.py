"""wb.chat / wb.embed against a real loopback HTTP server: rows, cost, replay, budgets."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.core.record import COLUMNS

SENTINEL = "sk-SENTINEL-do-not-leak-0123456789"


def embedding_reply(request: Received) -> Reply:
    texts = request.body["input"]
    return Reply(
        body={
            "object": "list",
            "model": request.body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": 2 * len(texts), "total_tokens": 2 * len(texts)},
        }
    )


def route(request: Received) -> Reply:
    if request.path.endswith("/embeddings"):
        return embedding_reply(request)
    model = request.body["model"]
    if model == "broken":
        return Reply(400, {"error": {"message": "model 'broken' does not exist"}})
    if model == "echo":  # a careless server that echoes the credentials back
        return Reply(401, {"error": {"message": f"bad key {request.headers['authorization']}"}})
    if model == "no-usage":
        reply = chat_reply("four words right here", model=model)
        del reply.body["usage"]
        return reply
    return chat_reply(
        "Paris.", model=model, prompt_tokens=12_000, completion_tokens=3_000, cached_tokens=4_000
    )


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[LoopbackAPI]:
    with LoopbackAPI(route) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
        yield server


def test_one_call_is_one_row_with_every_column(api: LoopbackAPI) -> None:
    answer = wb.chat(
        "Capital of France?", model="gpt-4o-mini", system="Be brief.", temperature=0.5,
        top_p=0.9, seed=7, max_tokens=20, stop=["\n"],
    )
    assert answer.text == "Paris." and str(answer) == "Paris."
    df = wb.runs()
    assert sorted(df.columns) == sorted(COLUMNS)  # every column, in reading order
    assert len(df) == 1
    row = df.iloc[0]
    assert row.run_id == answer.run_id
    assert row.kind == "chat" and row.model == "gpt-4o-mini"
    assert row.provider == "openai@" + api.base_url.split("/")[2]  # the server it reached
    assert row.response_model == "gpt-4o-mini" and row.system_fingerprint == "fp_test"
    assert (row.temperature, row.top_p, row.seed, row.max_tokens) == (0.5, 0.9, 7, 20)
    params = json.loads(row.params)
    assert params == {
        "model": "gpt-4o-mini", "temperature": 0.5, "top_p": 0.9, "seed": 7,
        "max_tokens": 20, "stop": ["\n"],
    }
    assert row.system == "Be brief." and row.prompt == "Capital of France?"
    assert json.loads(row.messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert row.output == "Paris." and row.finish_reason == "stop"
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (12_000, 3_000, 4_000)
    assert row.total_tokens == 15_000 and not row.tokens_counted
    assert row.status == "ok" and pd.isna(row.error) and row.retries == 0
    assert row.latency_s > 0 and not row.cache_hit and row.sample_index == 0
    assert len(row.request_hash) == 64
    assert row.experiment == "default" and pd.isna(row.sweep_id)
    assert row.created_at.tzinfo is not None
    # What the server received is what the row says was sent.
    assert api.received[0].body == {"messages": json.loads(row.messages), **params}


def test_cost_of_gpt_4o_mini_by_hand(api: LoopbackAPI) -> None:
    answer = wb.chat("Capital of France?", model="gpt-4o-mini")
    # Published gpt-4o-mini prices: $0.15 / M input, $0.075 / M cached input, $0.60 / M
    # output. 12,000 prompt tokens of which 4,000 cached; 3,000 completion tokens.
    by_hand = (
        Decimal(8_000) * Decimal("0.15") + Decimal(4_000) * Decimal("0.075")
        + Decimal(3_000) * Decimal("0.60")
    ) / Decimal(1_000_000)
    assert answer.cost_usd == pytest.approx(float(by_hand))
    row = wb.runs().iloc[0]
    assert row.cost_usd == pytest.approx(0.0033)
    assert row.price_source.startswith("genai-prices")


def test_replay_sends_one_request_and_fresh_sends_another(api: LoopbackAPI) -> None:
    first = wb.chat("Capital of France?", model="gpt-4o-mini", temperature=0)
    again = wb.chat("Capital of France?", model="gpt-4o-mini", temperature=0)
    assert api.count("/chat/completions") == 1
    assert again.cache_hit and again.text == first.text and again.run_id != first.run_id
    assert again.cost_usd == 0.0
    wb.chat("Capital of France?", model="gpt-4o-mini", temperature=0, fresh=True)
    assert api.count("/chat/completions") == 2
    df = wb.runs()
    assert list(df.cache_hit) == [False, True, False]
    assert df.request_hash.nunique() == 1
    # A different knob is a different run.
    wb.chat("Capital of France?", model="gpt-4o-mini", temperature=1)
    assert api.count("/chat/completions") == 3


def test_an_error_is_a_row_too(api: LoopbackAPI) -> None:
    with pytest.raises(wb.BadRequestError, match="model 'broken' does not exist"):
        wb.chat("hi", model="broken")
    row = wb.runs().iloc[0]
    assert row.status == "error" and "does not exist" in row.error and "\n" not in row.error
    assert pd.isna(row.output) and pd.isna(row.cost_usd)
    # An error is never replayed: the next identical call goes to the API again.
    with pytest.raises(wb.BadRequestError):
        wb.chat("hi", model="broken")
    assert api.count("/chat/completions") == 2


def test_missing_usage_is_counted_and_marked(api: LoopbackAPI) -> None:
    answer = wb.chat("Say four words", model="no-usage")
    assert answer.usage.counted
    row = wb.runs().iloc[0]
    assert row.tokens_counted
    assert row.completion_tokens == 4  # "four words right here" in o200k_base
    assert row.prompt_tokens > 0


def test_unknown_price_is_null_until_set(api: LoopbackAPI) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wb.chat("hi", model="my-private-model")
    assert any("wb.set_price" in str(w.message) for w in caught)
    assert pd.isna(wb.runs().iloc[-1].cost_usd)
    wb.set_price("my-private-model", input_per_mtok=1, output_per_mtok=2)
    answer = wb.chat("hi again", model="my-private-model")
    # 8,000 uncached input at $1 + 4,000 cached at the input price + 3,000 output at $2.
    assert answer.cost_usd == pytest.approx((12_000 * 1 + 3_000 * 2) / 1e6)
    assert wb.runs().iloc[-1].price_source == "custom"


def test_budget_refusal_sends_nothing(api: LoopbackAPI) -> None:
    with pytest.raises(wb.BudgetExceededError, match="above the budget"):
        wb.chat("x " * 5_000, model="gpt-4o", max_tokens=4_000, budget=0.0001)
    assert api.count() == 0
    assert len(wb.runs()) == 0


def test_session_budget_counts_spend(api: LoopbackAPI) -> None:
    wb.configure(budget=0.004)
    wb.chat("first", model="gpt-4o-mini", max_tokens=10)  # costs $0.0033
    with pytest.raises(wb.BudgetExceededError):
        wb.chat("x " * 10_000, model="gpt-4o-mini", max_tokens=4_000)
    assert api.count() == 1


def test_embeddings_are_cached_per_text(api: LoopbackAPI) -> None:
    first = wb.embed(["alpha", "beta"], model="text-embedding-3-small")
    assert first.vectors.shape == (2, 3)
    second = wb.embed(["alpha", "beta", "gamma!"], model="text-embedding-3-small")
    assert api.received[-1].body["input"] == ["gamma!"]
    assert second.embeddings[2] == [6.0, 1.0, 0.5]
    assert second.embeddings[:2] == first.embeddings
    third = wb.embed(["beta", "alpha"], model="text-embedding-3-small")
    assert api.count("/embeddings") == 2 and third.cache_hit
    df = wb.runs()
    assert list(df.kind) == ["embed"] * 3 and list(df.cache_hit) == [False, False, True]
    assert df.iloc[0].output.startswith("2 vectors x 3 dims")


def test_experiments_group_runs(api: LoopbackAPI) -> None:
    wb.chat("a", model="gpt-4o-mini")
    with wb.experiment("capitals"):
        wb.chat("b", model="gpt-4o-mini")
    wb.chat("c", model="gpt-4o-mini")
    assert list(wb.runs().experiment) == ["default", "capitals", "default"]
    assert list(wb.runs(experiment="capitals").prompt) == ["b"]
    wb.experiment("from-now-on")
    wb.chat("d", model="gpt-4o-mini")
    assert wb.runs().iloc[-1].experiment == "from-now-on"


def test_estimate_uses_history(api: LoopbackAPI) -> None:
    before = wb.estimate("Capital of France?", model="gpt-4o-mini", max_tokens=5_000)
    assert before.completion_tokens_expected == 5_000 == before.completion_tokens_max
    assert before.cost_low is not None and before.cost_high is not None
    assert before.cost_low < before.cost_expected <= before.cost_high
    wb.chat("Capital of France?", model="gpt-4o-mini", max_tokens=5_000)  # 3,000 completion
    after = wb.estimate("Capital of France?", model="gpt-4o-mini", max_tokens=5_000, repeats=3)
    assert after.completion_tokens_expected == 9_000 and after.runs == 3
    assert after.prompt_tokens == 3 * before.prompt_tokens


def test_the_key_appears_nowhere_in_the_store(api: LoopbackAPI, isolated_store: Path) -> None:
    wb.chat("hi", model="gpt-4o-mini")
    with pytest.raises(wb.BadRequestError) as info:
        wb.chat("hi", model="broken")
    assert SENTINEL not in str(info.value)
    with pytest.raises(wb.AuthenticationError) as auth:
        wb.chat("hi", model="echo")
    assert SENTINEL not in str(auth.value) and "bad key" in str(auth.value)
    wb.embed(["x"], model="text-embedding-3-small")
    blobs = b"".join(
        p.read_bytes() for p in isolated_store.parent.iterdir() if p.name.startswith("experiments")
    )
    assert blobs and SENTINEL.encode() not in blobs


def test_default_experiment_is_the_notebook_name(
    api: LoopbackAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/notebooks/haiku study.ipynb")
    wb.chat("a", model="gpt-4o-mini")
    assert wb.runs().iloc[-1].experiment == "haiku study"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_colleague_replays_from_an_exported_file(
    api: LoopbackAPI, tmp_path: Path, suffix: str
) -> None:
    with wb.experiment("shared"):
        original = wb.chat("Capital of France?", model="gpt-4o-mini", seed=3)
    exported = wb.export(tmp_path / f"shared{suffix}", experiment="shared")
    wb.configure(store=tmp_path / "colleague.db")
    assert len(wb.runs()) == 0
    assert wb.import_runs(exported) == 1
    assert wb.import_runs(exported) == 0  # merging twice adds nothing
    with wb.experiment("shared"):
        replay = wb.chat("Capital of France?", model="gpt-4o-mini", seed=3)
    assert replay.cache_hit and replay.text == original.text
    assert api.count("/chat/completions") == 1


# -- the session is the composition root (issue 21 item 1) ------------------------------


def _imported_modules(module: str) -> set[str]:
    """Every workbench module ``module`` imports, at any depth of its code (functions and
    ``if TYPE_CHECKING:`` blocks too), by its dotted name below ``workbench``."""
    import ast
    from pathlib import Path

    import workbench

    package = Path(workbench.__file__).parent
    path = package.joinpath(*module.split(".")).with_suffix(".py")
    here = module.split(".")[:-1]
    if not path.exists():  # a package: its __init__, relative imports from within it
        path, here = package.joinpath(*module.split("."), "__init__.py"), module.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = here[: len(here) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
        elif (node.module or "").startswith("workbench."):
            target = (node.module or "").removeprefix("workbench.")
        else:
            continue
        found |= {target, *(f"{target}.{alias.name}".lstrip(".") for alias in node.names)}
    return found


@pytest.mark.parametrize(
    "module",
    ["calls.results", "calls.logprobs", "calls.budget",
     "calls.budget.estimate", "calls.budget.gate", "calls.budget.charge", "calls.budget.price",
     "calls.budget.session_budget"],
)
def test_lower_modules_do_not_reach_back_to_the_session(module: str) -> None:
    # session -> estimate -> session and session -> results -> logprobs -> session were
    # import circles; a lower module gets what it needs as arguments instead.
    assert "calls.session" not in _imported_modules(module)


def test_only_the_top_floor_calls_get_session() -> None:
    """The façade, the command line and the notebook front end may reach the session;
    every layer below is given what it needs as arguments."""
    from pathlib import Path

    import workbench

    package = Path(workbench.__file__).parent
    top = {"__init__.py", "_api.py", "cli.py", "plots.py", "calls/session.py"}
    lower = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.relative_to(package).as_posix() not in top
        and path.relative_to(package).parts[0] != "notebook"
    ]
    callers = [name for name in lower if "get_session()" in (package / name).read_text()]
    assert callers == []
