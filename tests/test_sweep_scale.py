"""A sweep planned at scale (issue 20 item 5) says and identifies exactly what the
call-by-call planner said: the lazy plan's request hashes, sweep id, rendered prompts and
estimate are checked here against references computed the slow way (a body built per
point, json.dumps of the identities, Jinja, one estimate per point). Speed is in
bench/dataset_scale.py."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.calls.budget.estimate import Estimate, estimate_messages
from workbench.core.gcpause import gc_paused
from workbench.core.identity import request_hash
from workbench.core.templates import render
from workbench.scoring.datasets import _canonical, _canonical_row
from workbench.sweeps.plan import Prompts
from workbench.sweeps.sweep import Sweep

Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]


def echo(request: Received) -> Reply:
    return chat_reply("ok")


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(echo)


CASES = [
    {"city": "Paris", "expected": "France"},
    {"city": 'São "Paulo"', "expected": "Brazil"},
    {"city": "Zürich\nline two", "expected": "Switzerland"},
    {"city": "東京", "expected": "Japan"},
    {"city": "", "expected": "?"},
]


def define(**overrides: Any) -> Sweep:
    arguments: dict[str, Any] = {
        "vars": CASES,
        "grid": {"model": ["gpt-4o-mini", "gpt-4o"], "max_tokens": [5, 50]},
        "system": "You answer about {{city}}.",
        "repeats": 2,
    }
    arguments.update(overrides)
    return wb.sweep("In which country is {{city}}? One word.", **arguments)


def test_each_planned_hash_is_the_hash_of_the_body_it_sends(api: LoopbackAPI) -> None:
    for s in (define(), define(system=None),
              define(response_format={"type": "json_object"}, grid={"temperature": [0, 1]},
                     model="gpt-4o-mini")):
        assert len(s) > 0
        for planned in s._plan:
            body = planned.prepared.body
            provider = planned.prepared.provider.identity
            assert planned.request_hash == request_hash(provider, body)
            assert planned.identity == (
                planned.prepared.record.request_hash, planned.prepared.record.sample_index
            )


def test_planning_and_estimating_builds_no_request_body(api: LoopbackAPI) -> None:
    s = define(system=None)
    s.estimate()
    len(s.points)
    assert all(p._prepared is None for p in s._plan)  # built only when sent


def test_sweep_id_is_the_hash_of_the_identities_as_json(api: LoopbackAPI) -> None:
    s = define(experiment="ünïcode \"exp\"")
    records = [p.prepared.record for p in s._plan]
    key: list[Any] = [s.experiment, [[r.request_hash, r.sample_index] for r in records]]
    first = records[0]
    key.append([first.dataset, first.dataset_version, [r.item_id for r in records]])
    text = json.dumps(key, separators=(",", ":"))
    assert s.sweep_id == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert {r.sweep_id for r in records} == {s.sweep_id}
    plain = wb.sweep("Say {{w}}.", vars={"w": ["a", "b"]}, model="gpt-4o-mini")
    key = [plain.experiment, [list(p.identity) for p in plain._plan]]
    text = json.dumps(key, separators=(",", ":"))
    assert plain.sweep_id == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_estimate_is_the_sum_of_each_points_estimate(api: LoopbackAPI) -> None:
    for s in (define(), define(system=None)):
        memo: dict[Any, Any] = {}
        each = [
            estimate_messages(
                p.prepared.body["messages"], model=p.prepared.record.model,
                provider=p.prepared.provider, session=s.session,
                max_tokens=p.prepared.record.max_tokens, experiment=s.experiment, memo=memo,
            )
            for p in s._plan
        ]
        expected = sum(each, Estimate.zero())
        got = s.estimate()
        assert got.runs == expected.runs == len(s)
        assert got.prompt_tokens == expected.prompt_tokens
        assert got.completion_tokens_max == expected.completion_tokens_max
        assert got.cost_expected == expected.cost_expected
        assert isinstance(got.cost_high, Decimal) and got.cost_high == expected.cost_high


@pytest.mark.parametrize(
    "value", ["plain", "", "a {{ b }}", None, 3, 2.5, 1e20, True, np.int64(7), np.float64(0.1),
              [1, "x"], {"k": "v"}, "ünï\ncode"],
)
def test_a_plain_template_renders_as_jinja_renders_it(value: Any) -> None:
    template = "Q: {{x}} and {{ y }}!\n"
    prompts = Prompts(template, [], ["x", "y"], None)
    prompts._checked = 10**9  # the fast path alone, with no check against Jinja
    values = {"x": value, "y": "tail"}
    assert prompts.render(values, None)[0] == render(template, values)


def test_a_template_with_filters_is_rendered_by_jinja() -> None:
    template = "{{ x | upper }} {{ y }}"
    prompts = Prompts(template, [], ["x", "y"], None)
    assert prompts.render({"x": "ab", "y": 1}, None)[0] == "AB 1"


def test_a_text_rows_canonical_json_is_json_dumps() -> None:
    for row in CASES + [{"b": "1", "a": "\u2028\x00\\"}]:
        assert _canonical_row(row) == _canonical(row)
    assert _canonical_row({"a": 1, "b": None}) == _canonical({"a": 1, "b": None})


def test_the_collector_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), gc_paused():
        raise KeyError
    assert gc.isenabled()


def test_a_large_dataset_sweep_plans_with_a_progress_bar(
    api: LoopbackAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"city": f"c{i}"} for i in range(10_000)]
    s = wb.sweep("Where is {{city}}?", vars=rows, model="gpt-4o-mini", max_tokens=3)
    assert len(s) == 10_000
    assert "planning" in capsys.readouterr().err
    assert s.estimate().runs == 10_000
