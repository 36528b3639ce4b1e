"""A store URL's password never shows (issue 20 item 7): not in a verbose traceback's frame
variables when the server is down, not in the error for a URL that cannot be read."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest
from loopback import chat_reply
from testing_shell import open_shell

import workbench as wb
from workbench.core.errors import ConfigurationError
from workbench.store import open_store, store_label
from workbench.store.target import StoreURL, configured_target

PASSWORD = "TopSecretTail99"


def _every_local(exc: BaseException) -> str:
    """The whole chain with every frame's local variables (as ``capture_locals`` shows)."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def test_a_server_that_is_down_shows_no_password_in_a_verbose_traceback(
    start_api: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = start_api(lambda request: chat_reply("hi"))
    # Nothing listens on port 1: the store cannot be reached.
    monkeypatch.setenv("WORKBENCH_STORE", f"postgresql://ana:{PASSWORD}@127.0.0.1:1/nowhere")
    with open_shell() as shell:
        shell.run_cell("import workbench as wb")
        shell.run_cell("%xmode Verbose")
        try:
            shell.run_cell("wb.chat('hello', model='gpt-4o-mini')")
        except Exception as exc:  # noqa: BLE001 - looked at below
            caught: BaseException | None = exc
        else:
            caught = None
    shown = capsys.readouterr()
    assert caught is not None and "cannot reach" in str(caught)
    assert "ana:***@127.0.0.1:1/nowhere" in str(caught)
    verbose = shown.out + shown.err
    assert "cannot reach" in verbose  # IPython did print the verbose traceback
    assert PASSWORD not in verbose
    assert PASSWORD not in _every_local(caught)
    assert api.count("/chat/completions") == 0


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://ana:Top@Secret:{PASSWORD}@db.example.com/experiments",
        f"postgresql://ana:Top:{PASSWORD}@db.example.com:5432/experiments",
        f"postgresql://ana:x:{PASSWORD}@db.example.com/experiments",
        f"postgres://ana:{PASSWORD}@@db.example.com/experiments",
    ],
)
def test_an_unencoded_at_or_colon_in_the_password_is_one_line_naming_the_fix(
    url: str, monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    for attempt in (
        lambda: StoreURL.parse(url),
        lambda: open_store(url),
        lambda: store_label(url),
    ):
        with pytest.raises(ConfigurationError) as caught:
            attempt()
        message = str(caught.value)
        assert "\n" not in message and "percent-encode" in message
        assert PASSWORD not in message and "Secret" not in message and "Top" not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    monkeypatch.setenv("WORKBENCH_STORE", url)
    with pytest.raises(ConfigurationError, match="percent-encode"):
        wb.runs()


def test_the_configured_url_is_held_masked_from_the_moment_it_is_read(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    monkeypatch.setenv("WORKBENCH_STORE", f"postgresql://ana:{PASSWORD}@db.example.com/x")
    target, _ = configured_target(None)
    assert isinstance(target, StoreURL)
    assert PASSWORD not in repr(target) and PASSWORD not in str(target)
    assert target.password == PASSWORD  # kept, for the driver only


def test_an_encoded_password_still_works() -> None:
    url = StoreURL.parse("postgresql://ana:Top%40Secret%3AX@db.example.com/experiments")
    assert url.password == "Top@Secret:X"
    assert url.masked == "postgresql://ana:***@db.example.com/experiments"
