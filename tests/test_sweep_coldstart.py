"""A cold sweep's start (issue 21): what its first call no longer waits for. The store is
opened while the plan is read, and each call is built by the worker about to send it, so
the first request goes before the other calls are built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls import session as session_mod
from workbench.calls.dispatch import Job
from workbench.calls.progress import SweepProgress
from workbench.calls.warmup import WarmUp
from workbench.sweeps.plan import requests_to_check

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture


def _built_at_first_request(start_api: Start, points: int, **knobs: object) -> tuple[
    Any, Any, list[int]
]:
    """(the sweep, its frame, how many of its calls were built when the server got the
    first request)."""
    built_at_first: list[int] = []
    sweep: list[Any] = []

    def handler(request: Received) -> Reply:
        if not built_at_first:
            built_at_first.append(sum(p._prepared is not None for p in sweep[0]._plan))
        return chat_reply("ok", model=request.body["model"], prompt_tokens=3, completion_tokens=1)

    start_api(handler)
    sweep.append(wb.sweep("Say {{w}}", vars={"w": [str(i) for i in range(points)]},
                          model="gpt-4o-mini", max_tokens=5, concurrency=2, **knobs))
    return sweep[0], sweep[0].run(progress=False), built_at_first


def test_the_first_request_goes_before_the_other_calls_are_built(start_api: Start) -> None:
    s, df, built_at_first = _built_at_first_request(start_api, 30)
    assert 1 <= built_at_first[0] <= 2  # the workers' own calls, not the plan's 30
    assert (df.status == "ok").all() and len(df) == 30
    # Built late, the calls are still the plan's: the rows carry its identities.
    assert set(df.request_hash) == {p.request_hash for p in s._plan}


def test_on_postgresql_the_first_request_goes_before_the_other_calls_are_built(
    start_api: Start, pg_url: str
) -> None:
    # PostgreSQL refuses a NUL in text, so a sweep's rows are checked before it sends:
    # that check built every call first, until it read the plan's text instead.
    wb.configure(store=pg_url)
    s, df, built_at_first = _built_at_first_request(start_api, 30)
    assert 1 <= built_at_first[0] <= 2
    assert (df.status == "ok").all() and len(df) == 30


def test_the_rows_checked_before_sending_are_one_a_shape_not_one_a_call(
    start_api: Start,
) -> None:
    start_api(lambda request: chat_reply("ok", model="gpt-4o-mini"))
    s = wb.sweep("Say {{w}}", vars={"w": [str(i) for i in range(30)]},
                 model="gpt-4o-mini", grid={"temperature": [0, 1]})
    checked = list(requests_to_check(s._plan))
    assert len(checked) == 2  # the two temperatures' prototypes
    assert not any(p._prepared is not None for p in s._plan)  # nothing built
    assert {record.temperature for record in checked} == {0, 1}


def test_a_sweep_with_a_budget_still_builds_and_prices_every_call_first(
    start_api: Start,
) -> None:
    _, _, built_at_first = _built_at_first_request(start_api, 10, budget=1)
    assert built_at_first == [10]  # the budget is checked against all of them before sending


def test_the_store_is_opened_while_the_plan_is_read(start_api: Start) -> None:
    start_api(lambda request: chat_reply("ok", model="gpt-4o-mini"))
    s = wb.sweep("Say {{w}}", vars={"w": ["a", "b"]}, model="gpt-4o-mini", max_tokens=5)
    s._warm.wait()  # the store opens before the tokenizers are built
    session = session_mod._SESSION
    assert session is not None and session.stores._store is not None
    assert len(s.run(progress=False)) == 2


def test_a_store_that_cannot_open_fails_the_run_not_the_warm_up(
    start_api: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = start_api(lambda request: chat_reply("ok", model="gpt-4o-mini"))
    monkeypatch.setenv("WORKBENCH_STORE", "/proc/no-such-folder/runs.db")
    s = wb.sweep("Say {{w}}", vars={"w": ["a"]}, model="gpt-4o-mini", max_tokens=5)
    s._warm.wait()
    assert s._warm.tokenizers.is_set()  # the tokenizers were built all the same
    with pytest.raises(Exception, match="no-such-folder"):
        s.run(progress=False)
    assert not [r for r in api.received if r.path.endswith("/chat/completions")]


def test_a_job_built_later_is_built_once_when_first_needed() -> None:
    calls: list[int] = []
    provider, call = object(), object()

    def build() -> Any:
        calls.append(1)
        return call

    job = Job.later(build, provider, "m")  # type: ignore[arg-type]
    assert (job.provider, job.model, calls) == (provider, "m", [])
    assert job.prepared is call and job.prepared is call
    assert calls == [1]


def test_the_frame_readers_wait_for_a_runs_first_answers() -> None:
    warm = WarmUp([])
    seen: list[int] = []
    progressed = warm.after_first_answers(lambda p: seen.append(p.done), 2)
    assert not warm._frames_may_load.is_set()  # held while the first calls go out
    progressed(SweepProgress(total=9, sent=2, done=3, already=3))  # a resume: 3 done before
    progressed(SweepProgress(total=9, sent=2, done=4, ok=4, already=3))
    assert not warm._frames_may_load.is_set()
    progressed(SweepProgress(total=9, sent=2, done=5, ok=5, already=3))
    assert warm._frames_may_load.is_set() and seen == [3, 4, 5]
    warm.after_first_answers(None, 2)
    warm.release()  # a run that ended without answers lets them load too
    assert warm._frames_may_load.is_set()
