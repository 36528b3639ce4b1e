"""Sweeps against a real loopback HTTP server (and the real local model): rows, resume,
budgets, concurrency, rate limits, and running inside an event loop."""

from __future__ import annotations

import _thread
import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls.progress import SweepProgress
from workbench.core.money import format_money
from workbench.sweeps.sweep import Sweep


def echo(request: Received) -> Reply:
    """Answer with what was asked, so a row can be matched to its request."""
    body = request.body
    if body["model"] == "broken":
        return Reply(400, {"error": {"message": "model 'broken' does not exist"}})
    text = f"{body['messages'][-1]['content']} t={body.get('temperature')} s={body.get('seed')}"
    return chat_reply(text, model=body["model"], prompt_tokens=20, completion_tokens=5)


Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(echo)


def slow(delay_s: float) -> Callable[[Received], Reply]:
    def handler(request: Received) -> Reply:
        reply = echo(request)
        reply.delay_s = delay_s
        return reply

    return handler


def sent(api: LoopbackAPI) -> list[Received]:
    return [r for r in api.received if r.path.endswith("/chat/completions")]


def identity_of(request: Received) -> str:
    return json.dumps(request.body, sort_keys=True)


def define(**overrides: object) -> Sweep:
    arguments: dict[str, object] = {
        "vars": {"word": ["cat", "dog", "fish"]},
        "grid": {"temperature": [0, 0.5], "seed": [1, 2]},
        "model": "gpt-4o-mini",
        "max_tokens": 10,
    }
    arguments.update(overrides)
    return wb.sweep("Say {{word}}.", **arguments)  # type: ignore[arg-type]


# -- planning and estimates -------------------------------------------------------------


def test_points_follow_the_grid_and_estimate_is_the_sum_of_points(api: LoopbackAPI) -> None:
    s = define(repeats=2)
    points = s.points
    assert len(s) == len(points) == 3 * 2 * 2 * 2
    assert list(points.columns[:5]) == ["point", "word", "temperature", "seed", "sample_index"]
    assert list(points.word[:8]) == ["cat"] * 8
    assert list(points.sample_index[:4]) == [0, 1, 0, 1]
    assert list(points.prompt.unique()) == ["Say cat.", "Say dog.", "Say fish."]
    total = s.estimate()
    by_point = [
        wb.estimate(row.prompt, model="gpt-4o-mini", max_tokens=10) for row in points.itertuples()
    ]
    summed = by_point[0]
    for each in by_point[1:]:
        summed = summed + each
    assert total == summed
    assert total.runs == 24 and total.cost_expected is not None and total.cost_expected > 0
    assert sent(api) == []  # planning and estimating send nothing


def test_sweep_id_is_the_definition(api: LoopbackAPI) -> None:
    assert define().sweep_id == define().sweep_id
    assert define().sweep_id != define(grid={"temperature": [0, 1], "seed": [1, 2]}).sweep_id
    assert define().sweep_id != define(experiment="other").sweep_id
    fresh = define(fresh=True)
    assert fresh.sweep_id != define(fresh=True).sweep_id != define().sweep_id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vars": {"word": ["a"], "colour": ["red"]}}, "colour do not appear"),
        ({"vars": {}}, "word"),
        ({"grid": {"temperature": [0], "seed": [1]}, "seed": 1}, "both in the grid"),
        ({"stream": True}, "stream"),
        ({"grid": {"temperature": [0, 0]}}, "twice"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_definitions_are_refused(
    api: LoopbackAPI, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        define(**overrides)


def test_two_points_that_are_one_request_are_refused(api: LoopbackAPI) -> None:
    with pytest.raises(ValueError, match="same request"):
        wb.sweep("hi", grid={"model": ["gpt-4o-mini", "openai:gpt-4o-mini"]})


def test_context_fills_fixed_variables(api: LoopbackAPI) -> None:
    s = wb.sweep(
        "{{greeting}}, {{name}}!",
        vars={"name": ["Ann", "Bo"]},
        context={"greeting": "Hi", "unused": object()},
        model="gpt-4o-mini",
    )
    assert list(s.points.prompt) == ["Hi, Ann!", "Hi, Bo!"]
    df = s.run(progress=False)
    assert json.loads(df.variables[0]) == {"greeting": "Hi", "name": "Ann"}


# -- running --------------------------------------------------------------------------------


def test_one_row_per_point_in_order_with_its_knobs(api: LoopbackAPI) -> None:
    s = define(repeats=2, system="Be {{word}}-like.")
    df = s.run(progress=False)
    assert len(df) == len(s) == len(sent(api)) == 24
    assert len(wb.runs(sweep_id=s.sweep_id)) == 24
    assert list(df.point) == list(range(24)) and (df.status == "ok").all()
    assert df.groupby(["request_hash", "sample_index"]).size().max() == 1
    first = df.iloc[0]
    assert first.output == "Say cat. t=0 s=1" and first.word == "cat"
    assert first.system == "Be cat-like." and first.sweep_id == s.sweep_id
    assert list(df.sample_index[:2]) == [0, 1]
    assert df.cost_usd.sum() > 0 and not df.cache_hit.any()
    assert s.progress.state == "done" and s.progress.done == 24


def test_table_is_side_by_side(api: LoopbackAPI) -> None:
    s = define()
    s.run(progress=False)
    table = s.table()
    assert table.index.name == "word" and list(table.index) == ["cat", "dog", "fish"]
    assert list(table.columns) == [
        "temperature=0 · seed=1",
        "temperature=0 · seed=2",
        "temperature=0.5 · seed=1",
        "temperature=0.5 · seed=2",
    ]
    assert table.loc["dog", "temperature=0.5 · seed=2"] == "Say dog. t=0.5 s=2"
    tokens = s.table("completion_tokens")
    assert (tokens == 5).all().all()
    repeated = wb.sweep("Say hi.", grid={"seed": [1, 2]}, repeats=2, model="gpt-4o-mini")
    repeated.run(progress=False)
    assert list(repeated.table().columns) == ["seed=1 #0", "seed=1 #1", "seed=2 #0", "seed=2 #1"]
    assert repeated.table().index.name == "prompt"
    with pytest.raises(KeyError, match="no column"):
        s.table("nonsense")


def test_a_bare_table_shows_the_readable_sweep_table_and_stays_a_dataframe(
    api: LoopbackAPI, tmp_path: Path
) -> None:
    s = define()
    s.run(progress=False)
    table = s.table()
    page = table._repr_html_()
    # What a notebook shows: the scrolling sweep table with each output's small print.
    assert 'class="wb-sweep-scroll' in page and 'class="dataframe wb-sweep"' in page
    assert "Say dog. t=0.5 s=2" in page and "20→5 tok" in page
    assert page.count('class="wb-meta"') == 12  # 3 words × 4 knob combinations
    # What code uses: a DataFrame, and frames made from it are plain (no sweep view).
    assert isinstance(table, pd.DataFrame)
    assert table.loc["dog", "temperature=0.5 · seed=2"] == "Say dog. t=0.5 s=2"
    table.to_csv(tmp_path / "table.csv")
    assert pd.read_csv(tmp_path / "table.csv", index_col=0).shape == (3, 4)
    for derived in (table.copy(), table[["temperature=0 · seed=1"]], table.T, table.head(1)):
        assert type(derived) is pd.DataFrame
        assert "wb-sweep" not in derived._repr_html_()
    # Other values read as numbers people know, without the outputs' small print.
    costs = s.table(values="cost_usd")
    assert isinstance(costs, pd.DataFrame) and costs.shape == (3, 4)
    shown = costs._repr_html_()
    assert 'class="wb-meta"' not in shown
    assert f">{format_money(costs.iat[0, 0])}</div>" in shown and "e-0" not in shown
    tokens = s.table(values="completion_tokens")._repr_html_()
    assert ">5</div>" in tokens and "5.0" not in tokens
    assert " s</div>" in s.table(values="latency_s")._repr_html_()


def test_running_again_sends_nothing_and_logs_nothing(api: LoopbackAPI) -> None:
    define().run(progress=False)
    again = define()
    assert again.estimate(remaining=True).runs == 0
    df = again.run(progress=False)
    assert len(sent(api)) == 12 and len(wb.runs()) == 12 and len(df) == 12
    assert again.progress.already == 12


def test_points_answered_elsewhere_are_replayed_into_the_sweep(api: LoopbackAPI) -> None:
    wb.chat("Say dog.", model="gpt-4o-mini", temperature=0.5, seed=2, max_tokens=10)
    s = define()
    assert s.estimate(remaining=True).runs == 11
    df = s.run(progress=False)
    assert len(sent(api)) == 12  # 1 single call + 11 sweep calls
    assert df.cache_hit.sum() == 1 and len(df) == 12
    hit = df[df.cache_hit].iloc[0]
    assert hit.word == "dog" and hit.cost_usd == 0 and hit.output == "Say dog. t=0.5 s=2"
    assert s.progress.replayed == 1
    # fresh=True asks the API for every point, whatever the table holds
    fresh = define(fresh=True)
    fresh.run(progress=False)
    assert len(sent(api)) == 24 and not fresh.df.cache_hit.any()


def test_stopped_sweep_resumes_with_only_the_missing_points(start_api: Start) -> None:
    api = start_api(slow(0.05))
    s = define(concurrency=2)

    def stop_after_three(progress: SweepProgress) -> None:
        if progress.done >= 3:
            s.stop()

    s.start(on_progress=stop_after_three)
    assert s.wait(timeout=30)
    assert s.progress.state == "stopped"
    finished = wb.runs(sweep_id=s.sweep_id)
    assert 3 <= len(finished) < 12 and (finished.status == "ok").all()
    first_run = len(sent(api))
    done_before = set(finished.request_hash)

    again = define(concurrency=2)
    assert again.sweep_id == s.sweep_id
    df = again.run(progress=False)
    resent = sent(api)[first_run:]
    # exactly the missing points went out, each once, and the table is whole
    assert len(resent) == 12 - len(finished)
    assert len({identity_of(r) for r in resent}) == len(resent)
    assert len(df) == 12 and (df.status == "ok").all()
    assert set(df.request_hash) - done_before == set(
        df[~df.request_hash.isin(done_before)].request_hash
    )
    assert len(wb.runs(sweep_id=s.sweep_id)) == 12
    assert not df.cache_hit.any()


def test_keyboard_interrupt_cancels_and_keeps_finished_rows(start_api: Start) -> None:
    api = start_api(slow(0.05))
    s = define(concurrency=1)
    interrupted = threading.Event()

    def interrupt(progress: SweepProgress) -> None:
        if progress.done >= 2 and not interrupted.is_set():
            interrupted.set()
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        s.run(progress=False, on_progress=interrupt)
    assert not s.running and s.progress.state == "stopped"
    kept = wb.runs(sweep_id=s.sweep_id)
    assert 2 <= len(kept) < 12
    before = len(sent(api))
    define(concurrency=1).run(progress=False)
    assert len(sent(api)) - before == 12 - len(kept)


def test_budget_refusal_sends_nothing(api: LoopbackAPI) -> None:
    s = wb.sweep(
        "x " * 2_000 + "{{n}}",
        vars={"n": [1, 2, 3]},
        model="gpt-4o",
        max_tokens=2_000,
        budget=0.001,
    )
    with pytest.raises(wb.BudgetExceededError, match=r"refused before sending.*Estimate: 3 runs"):
        s.run(progress=False)
    wb.configure(budget=0.001)
    with pytest.raises(wb.BudgetExceededError, match="expected cost"):
        wb.sweep("x " * 2_000 + "{{n}}", vars={"n": [1, 2, 3]}, model="gpt-4o").start()
    assert sent(api) == [] and len(wb.runs()) == 0


def test_strict_budget_uses_the_worst_case(api: LoopbackAPI) -> None:
    wb.chat("Say cat.", model="gpt-4o-mini", max_tokens=4_000, seed=9)  # 5 completion tokens
    s = define(max_tokens=4_000)
    estimate = s.estimate(remaining=True)
    assert estimate.cost_expected is not None and estimate.cost_high is not None
    budget = float(estimate.cost_expected + estimate.cost_high) / 2
    with pytest.raises(wb.BudgetExceededError, match="worst-case"):
        define(max_tokens=4_000, budget=budget, strict=True).run(progress=False)
    assert len(sent(api)) == 1
    define(max_tokens=4_000, budget=budget).run(progress=False)
    assert len(sent(api)) == 13


def test_spending_past_the_budget_stops_the_sweep(start_api: Start) -> None:
    def costly(request: Received) -> Reply:  # a server that answers far more than expected
        return chat_reply("long", model="gpt-4o-mini", prompt_tokens=10, completion_tokens=50_000)

    api = start_api(costly)
    s = wb.sweep(
        "n={{n}}",
        vars={"n": list(range(20))},
        model="gpt-4o-mini",
        max_tokens=5,
        budget=0.05,
        concurrency=1,
    )
    with pytest.raises(wb.BudgetExceededError, match="Sweep stopped"):
        s.run(progress=False)
    # each call costs $0.03: the second puts the sweep over, the third is never sent
    assert len(sent(api)) == 2 and len(s.df) == 2


def test_errors_are_rows_and_are_sent_again(api: LoopbackAPI) -> None:
    s = wb.sweep(
        "Say {{word}}.", vars={"word": ["a", "b"]}, grid={"model": ["gpt-4o-mini", "broken"]}
    )
    df = s.run(progress=False)
    assert list(df.status) == ["ok", "error", "ok", "error"]
    assert "does not exist" in df.error[1] and s.progress.errors == 2
    df = s.run(progress=False)
    assert len(sent(api)) == 6  # only the two errors again
    assert len(df) == 4 and len(wb.runs(sweep_id=s.sweep_id)) == 6


def test_a_sweep_that_only_fails_stops_early(api: LoopbackAPI) -> None:
    s = wb.sweep("n={{n}}", vars={"n": list(range(40))}, model="broken", concurrency=2)
    with pytest.raises(wb.BadRequestError, match="does not exist"):
        s.run(progress=False)
    assert 5 <= len(sent(api)) < 40
    assert s.progress.state == "failed" and "in a row" in s.progress.message


def test_concurrency_is_capped_and_reached(start_api: Start) -> None:
    api = start_api(slow(0.2))
    s = wb.sweep("n={{n}}", vars={"n": list(range(16))}, model="gpt-4o-mini", concurrency=4)
    df = s.run(progress=False)
    assert len(df) == 16 and (df.status == "ok").all()
    assert api.max_in_flight == 4


def test_rate_limited_requests_are_retried_until_every_row_is_ok(start_api: Start) -> None:
    lock = threading.Lock()
    counter = Counter[str]()

    def every_third_is_429(request: Received) -> Reply:
        with lock:
            counter["n"] += 1
            n = counter["n"]
        if n % 3 == 0:
            return Reply(
                429, {"error": {"message": "Rate limit reached"}}, headers={"retry-after-ms": "20"}
            )
        return echo(request)

    api = start_api(every_third_is_429)
    s = define(concurrency=4)
    df = s.run(progress=False)
    assert len(df) == 12 and (df.status == "ok").all()
    assert len(sent(api)) == 12 + int(df.retries.sum())
    assert df.retries.sum() >= 4 and s.progress.rate_limited >= 4


def test_429s_beyond_the_clients_retries_are_retried_by_the_sweep(start_api: Start) -> None:
    lock = threading.Lock()
    attempts = Counter[str]()

    def three_429s_per_prompt(request: Received) -> Reply:
        key = identity_of(request)
        with lock:
            attempts[key] += 1
            n = attempts[key]
        if n <= 3:  # the client gives up after 2 retries
            return Reply(429, {"error": {"message": "busy"}}, headers={"retry-after-ms": "5"})
        return echo(request)

    api = start_api(three_429s_per_prompt)
    s = wb.sweep("n={{n}}", vars={"n": [1, 2, 3]}, model="gpt-4o-mini")
    df = s.run(progress=False)
    assert (df.status == "ok").all() and list(df.retries) == [3, 3, 3]
    assert len(sent(api)) == 12 and len(wb.runs()) == 3


def test_run_works_inside_a_running_event_loop(api: LoopbackAPI) -> None:
    async def notebook_cell() -> tuple[pd.DataFrame, pd.DataFrame]:
        # What a Jupyter cell does: call the blocking API while the kernel's loop runs...
        blocking = define().run(progress=False)
        # ...or await the async one on that loop.
        awaited = await wb.sweep("n={{n}}", vars={"n": [1, 2]}, model="gpt-4o-mini").arun()
        return blocking, awaited

    blocking, awaited = asyncio.run(notebook_cell())
    assert len(blocking) == 12 and len(awaited) == 2


def test_progress_bar_runs_in_a_terminal(
    api: LoopbackAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    define().run(progress=True)
    assert "12/12" in capsys.readouterr().err


def test_estimate_and_budget_in_decimal(api: LoopbackAPI) -> None:
    s = define(budget=Decimal("1"))
    assert s.budget == Decimal("1")
    assert "12 runs" in str(s.estimate())
    assert repr(s).startswith(f"<Sweep {s.sweep_id}: 12 runs (word×3 · temperature×2")


@pytest.mark.integration
def test_a_sweep_against_the_local_model_writes_one_row_per_point(in_tmp_dir: Path) -> None:
    s = wb.sweep(
        "Name a {{thing}}.",
        vars={"thing": ["colour", "fruit"]},
        grid={"temperature": [0, 0.8]},
        seed=3,
        max_tokens=8,
        concurrency=2,
    )
    df = s.run(progress=False)
    assert len(df) == len(s) == 4 and (df.status == "ok").all()
    assert (df.provider == "local").all() and (df.completion_tokens <= 8).all()
    assert df.output.str.len().min() > 0 and (df.cost_usd == 0).all()
    assert len(wb.runs()) == 4
    s.run(progress=False)
    assert len(wb.runs()) == 4  # nothing sent or logged again
    assert s.table().shape == (2, 2)


def test_rate_limit_headers_are_read_without_stalling(start_api: Start) -> None:
    def nearly_out(request: Received) -> Reply:
        reply = echo(request)
        reply.headers = {
            "x-ratelimit-remaining-requests": "1",
            "x-ratelimit-reset-requests": "20ms",
            "x-ratelimit-remaining-tokens": "50",
            "x-ratelimit-reset-tokens": "10ms",
        }
        return reply

    api = start_api(nearly_out)
    df = define(concurrency=4).run(progress=False)
    assert len(df) == 12 and (df.status == "ok").all() and len(sent(api)) == 12


def test_a_missing_key_fails_before_anything_is_logged(
    api: LoopbackAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    s = wb.sweep("n={{n}}", vars={"n": [1, 2]}, provider="openai", model="gpt-4o-mini")
    with pytest.raises(wb.ConfigurationError, match="OPENAI_API_KEY"):
        s.run(progress=False)
    assert len(wb.runs()) == 0 and not s.running


def test_planning_a_sweep_loads_what_its_first_call_needs(api: LoopbackAPI) -> None:
    # Issue 21: the first call of a sweep waited ~1 s in s.run() for the tokenizer
    # (~0.57 s) and the store's pandas (~0.49 s); both now load while the plan is read.
    import sys

    from workbench.core import tokens

    tokens.get_encoding.cache_clear()
    s = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini", max_tokens=5)
    assert api.count() == 0  # planning sends nothing
    s._warm.wait()  # the warm-up ran without s.run()
    name = tokens.encoding_name_for("gpt-4o-mini")
    assert tokens.get_encoding.cache_info().currsize == 1
    assert tokens.get_encoding(name) is tokens.get_encoding(name)
    assert "workbench.store" in sys.modules and "workbench.calls.dispatch" in sys.modules
    s.run(progress=False)  # and the run uses it: no second tokenizer is built
    assert tokens.get_encoding.cache_info().currsize == 1
    assert api.count() == 2
