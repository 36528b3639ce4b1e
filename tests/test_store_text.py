"""What a store's text can hold (issue 20 item 8): a NUL character on PostgreSQL.

PostgreSQL's documentation (Character Types, 8.3): "The characters that can be stored in
any of these data types are determined by the database character set [...] In any case,
the character with code zero (sometimes called NUL) cannot be stored." So a request holding
one is refused before it is sent on PostgreSQL (it would be paid, then refused by the
table, then paid again on every re-run), and a copy into PostgreSQL copies the rest.
"""

from __future__ import annotations

from typing import Any

import pytest
from loopback import chat_reply
from store_backends import StoreMaker, store_maker
from store_backends import chat_run as run

import workbench as wb
from workbench.core.errors import InvalidInputError
from workbench.store.copying import copy_command

__all__ = ["store_maker"]


def test_a_prompt_with_nul_is_refused_before_it_is_paid_on_postgresql(
    pg_url: str, start_api: Any
) -> None:
    api = start_api(lambda request: chat_reply("fine"))
    wb.configure(store=pg_url)
    for _ in range(2):  # and again on a re-run: still nothing sent
        with pytest.raises(InvalidInputError) as caught:
            wb.chat("before\x00after", model="gpt-4o-mini")
        message = str(caught.value)
        assert "\n" not in message and "NUL" in message and "prompt" in message
    assert api.count("/chat/completions") == 0
    assert wb.runs().empty


def test_a_sweep_with_a_nul_prompt_sends_nothing_on_postgresql(
    pg_url: str, start_api: Any
) -> None:
    api = start_api(lambda request: chat_reply("fine"))
    wb.configure(store=pg_url)
    sweep = wb.sweep(
        "Say {{word}}", vars={"word": ["plain", "with \x00 inside"]}, model="gpt-4o-mini"
    )
    with pytest.raises(InvalidInputError, match="NUL"):
        sweep.run()
    assert api.count("/chat/completions") == 0


@pytest.mark.parametrize(
    ("column", "define"),
    [
        ("system", lambda: wb.sweep("Say {{w}}", vars={"w": ["a", "b"]},
                                    system="Be {{w}}\x00", model="gpt-4o-mini")),
        ("expected", lambda: wb.sweep("Say {{w}}", model="gpt-4o-mini", expected="answer",
                                      vars=[{"w": "a", "answer": "A"},
                                            {"w": "b", "answer": "B\x00"}])),
        ("candidate", lambda: wb.sweep("Say {{w}}", vars={"w": ["a", "b"]},
                                       model="gpt-4o-mini").mark(candidate="c\x00")),
    ],
)
def test_a_sweep_with_a_nul_anywhere_in_its_rows_sends_nothing_on_postgresql(
    pg_url: str, start_api: Any, column: str, define: Any
) -> None:
    # Checked from the plan's text, without building every call: the same one line.
    api = start_api(lambda request: chat_reply("fine"))
    wb.configure(store=pg_url)
    with pytest.raises(InvalidInputError) as caught:
        define().run(progress=False)
    message = str(caught.value)
    assert "\n" not in message and f"the {column} of this request holds a NUL" in message
    assert api.count("/chat/completions") == 0


def test_an_answer_with_nul_is_kept_on_postgresql(pg_url: str, start_api: Any) -> None:
    start_api(lambda request: chat_reply("paid\x00answer"))
    wb.configure(store=pg_url)
    reply = wb.chat("hello", model="gpt-4o-mini")
    assert reply.text == "paid\x00answer"  # the caller gets it exactly
    assert list(wb.runs()["output"]) == ["paid\u2400answer"]  # the table as ␀


def test_sqlite_keeps_nul_exactly(isolated_store: Any, start_api: Any) -> None:
    start_api(lambda request: chat_reply("ok"))
    wb.chat("a\x00b", model="gpt-4o-mini")
    assert list(wb.runs()["prompt"]) == ["a\x00b"]


def test_store_copy_into_postgresql_copies_the_rest_and_names_the_nul_row(
    store_maker: StoreMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    source = store_maker.make("sqlite", "source")
    target = store_maker.make("postgresql", "target")
    runs = [run(i) for i in range(8)]
    runs[3].output = "bad\x00row"
    for record in runs:
        source.append(record)

    status = copy_command(store_maker.target(source), store_maker.target(target), progress=False)
    err = capsys.readouterr().err
    assert status == 1  # not a clean copy: a script must not delete the source
    assert target.count() == 7
    assert f"run_id {runs[3].run_id}" in err and "NUL" in err and "output" in err
    assert sorted(target.runs()["run_id"]) == sorted(r.run_id for i, r in enumerate(runs) if i != 3)
