"""Key hygiene: with a sentinel OPENAI_API_KEY, nothing the workbench writes or says holds it.

Magics make ok calls, failing calls and calls whose errors echo the Authorization header
back; the table is exported; a notebook is executed in a real kernel and saved. The
sentinel must be in none of the store, the exports, the notebook, the logs, the output,
nor any exception (its message, its chain, its traceback).
"""

from __future__ import annotations

import json
import logging
import os
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faults import Action, Fault, FaultServer, Request
from IPython.core.error import UsageError
from loopback import Received, chat_reply, serving
from loopback import Reply as LoopbackReply
from testing_shell import open_shell

import workbench as wb
from workbench.api.keycheck import KeyInPromptWarning, find_key

pytestmark = pytest.mark.stress

# Not shaped like any key pattern: only exact-value redaction can hide it.
SENTINEL = "wbSENTINEL7q2x9ZkLmN4rT8vY"


def by_prompt(request: Request) -> Action:
    """What each test prompt asks the server to do."""
    text = str(request.body)
    if "echo-auth-401" in text:
        return Action(Fault.ECHO_AUTH)
    if "echo-auth-400" in text:
        return Action(Fault.ECHO_AUTH_400)
    if "please-fail" in text:
        return Action(Fault.HTTP_503, retry_after_ms=1)
    if "please-reset" in text:
        return Action(Fault.RESET)
    if "please-cut" in text:
        return Action(Fault.SSE_CUT)
    return Action(Fault.OK)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[FaultServer]:
    with FaultServer(by_prompt, stall_s=1) as running:
        monkeypatch.setenv("OPENAI_BASE_URL", running.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
        yield running


def files_holding(root: Path, secret: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and secret.encode() in path.read_bytes():
            found.append(str(path))
    return found


def exception_text(exc: BaseException) -> str:
    """The message, every exception of the chain, and the traceback a user could print."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(getattr(seen, "body", None))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


CELLS = [
    ("--model gpt-4o-mini", "Say hi."),
    ("--model gpt-4o-mini --no-stream --seed 1", "Say hi again."),
    ("--model gpt-4o-mini --no-stream", "echo-auth-401"),
    ("--model gpt-4o-mini", "echo-auth-401 streamed"),
    ("--model gpt-4o-mini --no-stream", "echo-auth-400"),
    ("--model gpt-4o-mini", "echo-auth-400 streamed"),
    ("--model gpt-4o-mini --no-stream", "please-fail"),
    ("--model gpt-4o-mini --no-stream", "please-reset"),
    ("--model gpt-4o-mini", "please-cut"),
]


def test_the_key_appears_nowhere_the_workbench_writes_or_says(
    server: FaultServer,
    in_tmp_dir: Path,
    isolated_store: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    wb.configure(timeout=0.5, max_retries=1)
    caplog.set_level(logging.DEBUG)  # root, httpx and httpcore at their most talkative
    for name in ("httpx", "httpcore", "workbench", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    errors: list[BaseException] = []
    with open_shell() as shell:
        shell.user_ns["topic"] = "keys"
        for line, cell in CELLS:
            try:
                shell.run_cell(f"%%chat {line}\n{cell}")
            except UsageError as exc:
                errors.append(exc)
        shell.run_cell("%workbench")
        shell.run_cell("%workbench models")
        shell.run_cell("%%embed --model text-embedding-3-small\na cat\na dog")
        try:
            shell.run_cell("%%embed --model text-embedding-3-small\necho-auth-401")
        except UsageError as exc:
            errors.append(exc)
    # The same from plain Python, where exceptions keep their chain.
    for prompt in ("echo-auth-401", "echo-auth-400", "please-fail", "please-reset"):
        with pytest.raises(wb.APIError) as caught:
            wb.chat(prompt, model="gpt-4o-mini")
        errors.append(caught.value)
    assert len(errors) == 12  # every failing call did fail
    assert any("Authorization" in str(e) for e in errors)  # the echo reached the user...
    for exc in errors:
        assert SENTINEL not in exception_text(exc)  # ...without the key

    rows = wb.runs()
    assert len(rows) == 15 and (rows.status == "error").sum() == 12
    for suffix in ("parquet", "csv", "jsonl"):
        wb.export(in_tmp_dir / f"exported.{suffix}")
    out, err = capfd.readouterr()
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logs  # httpx did log, at DEBUG and INFO
    assert SENTINEL not in out and SENTINEL not in err and SENTINEL not in logs
    assert files_holding(in_tmp_dir, SENTINEL) == []
    assert isolated_store.exists() and files_holding(isolated_store.parent, SENTINEL) == []
    assert server.count() >= 20  # the key was sent where it belongs: to the server
    assert all(r.headers.get("authorization") == f"Bearer {SENTINEL}" for r in server.received())


def test_an_executed_notebook_holds_no_key(server: FaultServer, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)\n"
        "import workbench as wb\n"
        "wb.configure(timeout=0.5, max_retries=1)\n"
        "%load_ext workbench",
        "%%chat --model gpt-4o-mini\nSay hi.",
        "%%chat --model gpt-4o-mini --no-stream\necho-auth-401",
        "%%chat --model gpt-4o-mini\necho-auth-400",
        "%%chat --model gpt-4o-mini --no-stream\nplease-fail",
        "wb.chat('echo-auth-401', model='gpt-4o-mini')",
        "import os; print(len(os.environ['OPENAI_API_KEY']))",
        "%workbench",
        "wb.runs()[['status', 'error']]",
        "wb.export('from-notebook.csv')",
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    env = {
        **os.environ,
        "OPENAI_API_KEY": SENTINEL,
        "OPENAI_BASE_URL": server.base_url,
        "WORKBENCH_STORE": str(tmp_path / "notebook.db"),
        "PYTHONWARNINGS": "ignore",
    }
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)
    saved = tmp_path / "executed.ipynb"
    nbformat.write(notebook, saved)

    text = saved.read_text()
    assert "echo: Say hi." in text  # the calls did run...
    assert "Authorization" in text and "HTTP 401" in text  # ...and failed as scripted
    assert str(len(SENTINEL)) in text  # the kernel had the key
    assert "HTTP Request: POST" in text  # and logged at DEBUG into the outputs
    assert SENTINEL not in text
    assert files_holding(tmp_path, SENTINEL) == []
    assert (tmp_path / "from-notebook.csv").exists() and (tmp_path / "notebook.db").exists()


# -- the warning for a key in a cell ----------------------------------------------------

KEY_SHAPED = [
    "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "sk-" + "0123456789abcdefghijABCDEFGHIJ",
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "ghp_" + "a" * 36,
    "xoxb-" + "1234567890-abcdefghij",
    "Authorization: Bearer " + "eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop",
]
NOT_KEYS = [
    "Summarise the task-force report.",
    "sha256: " + "9f" * 32,
    "Explain what sk-learn does.",
    "A bearer of good news.",
]


@pytest.mark.parametrize("text", KEY_SHAPED)
def test_key_shapes_are_found(text: str) -> None:
    assert find_key(f"Here: {text} ok") is not None


@pytest.mark.parametrize("text", NOT_KEYS)
def test_ordinary_text_is_not_a_key(text: str) -> None:
    assert find_key(text) is None


def test_a_cell_holding_a_key_is_warned_about_before_it_is_sent(server: FaultServer) -> None:
    shown: list[tuple[int, str]] = []  # (calls sent so far, the line a person sees)

    def record(
        message: Warning | str, category: type[Warning], filename: str, lineno: int, *rest: object
    ) -> None:
        line = warnings.formatwarning(message, category, filename, lineno).strip()
        shown.append((server.count("/chat/completions"), line))

    with open_shell() as shell, warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = record  # restored by catch_warnings
        shell.user_ns["secret"] = KEY_SHAPED[0]
        shell.run_cell("%%chat --model gpt-4o-mini\nUse this key: {{secret}} to call the API.")
        shell.run_cell(f"%%chat --model gpt-4o-mini\nMy key is {SENTINEL}, remember it.")
        shell.run_cell("%%chat --model gpt-4o-mini\nSummarise the task-force report.")
        shell.run_cell("%%chat --model gpt-4o-mini --fresh\nUse this key: {{secret}} again.")
    assert [sent for sent, _ in shown] == [0, 1, 3]  # each before its call went out
    lines = [line for _, line in shown]
    assert all(line.startswith("%%chat:1: KeyInPromptWarning: ") for line in lines)
    assert all("\n" not in line for line in lines)
    assert "OpenAI-style key" in lines[0] and "$OPENAI_API_KEY" in lines[1]
    assert all(SENTINEL not in line and KEY_SHAPED[0] not in line for line in lines)
    assert server.count("/chat/completions") == 4  # a warning, not a refusal


def test_the_warning_is_a_warning_category_people_can_filter() -> None:
    assert issubclass(KeyInPromptWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KeyInPromptWarning)
        from workbench.api.keycheck import warn_if_key

        with pytest.raises(KeyInPromptWarning, match="OpenAI-style key"):
            warn_if_key("%%chat", [KEY_SHAPED[1]])


def test_a_sweep_cell_holding_a_key_is_warned_about_before_anything_is_sent(
    server: FaultServer,
) -> None:
    with open_shell() as shell, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell.user_ns["secret"] = KEY_SHAPED[0]
        with pytest.raises(KeyInPromptWarning):
            warnings.simplefilter("error", KeyInPromptWarning)
            shell.run_cell_magic(
                "chat", "--model gpt-4o-mini --temperature 0,1", "Use this key: {{secret}}."
            )
    assert server.count("/chat/completions") == 0
    assert all(KEY_SHAPED[0] not in str(w.message) for w in caught)


# -- every secret, every way out: verbose tracebacks, chains, logs, rows, files -----------

URL_SECRET = "wbURLPASS5k8Jd2Qz"  # a password in a base URL
TOML_KEY = "sk-proj-" + "wbTOMLkey3Fh8Lq2Zx7Nv4Rt9Ww"  # pasted where a variable name goes
# Masked echoes as servers put them in a 401: of the sentinel, and literal ones.
MASKED = [
    SENTINEL[:8] + "****" + SENTINEL[-4:],
    "sk-adv-S****cdef",
    "sk-****cdef",
    "sk-...cdef",
]


def scripted(request: Received) -> LoopbackReply:
    """The loopback server's answers: masked echoes of the key, a redirect, or an answer."""
    text = json.dumps(request.body)
    if "masked-echo" in text:
        message = "Incorrect API key provided: " + ", ".join(MASKED) + ". Check your key."
        return LoopbackReply(401, {"error": {"message": message, "code": "invalid_api_key"}})
    if "redirect" in text:
        target = f"http://user:{URL_SECRET}@elsewhere.test/v1/chat/completions"
        return LoopbackReply(307, {"error": "moved"}, headers={"location": target})
    return chat_reply("fine")


def verbose_run(shell: Any, code: str) -> BaseException | None:
    """Run ``code`` in the shell; IPython prints a failure's verbose traceback to stdout."""
    try:
        shell.run_cell(code)
    except BaseException as exc:  # noqa: BLE001 - every failure is looked at
        return exc
    return None


def with_locals(exc: BaseException) -> str:
    """The whole chain with every frame's local variables, as ``capture_locals`` shows it."""
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "".join(rendered.format())


SECRETS = [SENTINEL, URL_SECRET, TOML_KEY, *MASKED]


def test_no_secret_reaches_a_verbose_traceback_chain_log_row_export_or_the_wal(
    server: FaultServer,
    in_tmp_dir: Path,
    isolated_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    errors: list[BaseException | None] = []
    with serving(scripted) as scripted_api, open_shell() as shell:
        shell.run_cell("import workbench as wb\nwb.configure(timeout=0.5, max_retries=0)")
        shell.run_cell("%xmode Verbose")
        # Faults of the connection: httpcore's frames hold the raw request bytes.
        for prompt in ("please-reset", "please-cut", "echo-auth-401", "echo-auth-400"):
            for stream in (False, True):
                errors.append(
                    verbose_run(shell, f"wb.chat({prompt!r}, model='gpt-4o-mini', stream={stream})")
                )
        for stream in (False, True):  # the async client, through IPython's autoawait
            errors.append(
                verbose_run(
                    shell, f"await wb.achat('please-reset', model='gpt-4o-mini', stream={stream})"
                )
            )
        # The key pasted where the name of its variable belongs: refused, no row.
        toml = in_tmp_dir / "workbench.toml"
        toml.write_text(
            f'[providers.team]\nbase_url = "{server.base_url}"\napi_key_env = "{TOML_KEY}"\n'
        )
        rows_before, sent_before = len(wb.runs()), server.count()
        errors.append(verbose_run(shell, "wb.chat('hi', provider='team', model='gpt-4o-mini')"))
        assert (len(wb.runs()), server.count()) == (rows_before, sent_before)
        toml.rename(in_tmp_dir / "mistake.toml")
        # A key read from a file with its newline: stripped, and the call goes through.
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL + "\n")
        assert verbose_run(shell, "wb.chat('with newline', model='gpt-4o-mini')") is None
        assert server.received()[-1].headers["authorization"] == f"Bearer {SENTINEL}"
        # A key with a character no header can carry: one line, no key.
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL + "é")
        errors.append(verbose_run(shell, "wb.chat('non-ascii', model='gpt-4o-mini')"))
        monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
        # Masked echoes, and credentials in the base URL and in a redirect.
        host = scripted_api.base_url.removeprefix("http://")
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{URL_SECRET}@{host}")
        for prompt in ("masked-echo", "redirect"):
            errors.append(verbose_run(shell, f"wb.chat({prompt!r}, model='gpt-4o-mini')"))
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{URL_SECRET}@127.0.0.1:9/v1")
        errors.append(verbose_run(shell, "wb.chat('unreachable', model='gpt-4o-mini')"))
        shell.run_cell("%workbench")
    failures = [exc for exc in errors if exc is not None]
    assert len(failures) == len(errors) == 15
    messages = [str(exc) for exc in failures]
    assert [type(exc).__name__ for exc in failures] == [
        *["APIConnectionError"] * 3,  # reset, reset streamed, a plain answer cut short
        "TruncatedStreamError",
        *["AuthenticationError"] * 2,
        *["BadRequestError"] * 2,
        *["APIConnectionError"] * 2,  # the async client
        *["ConfigurationError"] * 2,  # the key as api_key_env; a key no header can carry
        "AuthenticationError",  # masked echoes
        "APIStatusError",  # the redirect
        "APIConnectionError",  # unreachable, credentials in the URL
    ]
    assert any("non-ASCII" in m and "$OPENAI_API_KEY" in m for m in messages)
    assert any("api_key_env must be the name of an environment variable" in m for m in messages)
    assert any(
        "redirects to http://user:***@elsewhere.test/v1/chat/completions" in m for m in messages
    )
    assert any("Could not talk to POST http://user:***@127.0.0.1:9/v1" in m for m in messages)
    assert any("Incorrect API key provided: [redacted]" in m for m in messages)

    rows = wb.runs()
    for suffix in ("parquet", "csv", "jsonl"):
        wb.export(in_tmp_dir / f"exported.{suffix}")
    out, err = capfd.readouterr()
    # Frames and their locals are printed (the client's endpoint among them).
    plain = out.replace("\x1b[34m", "").replace("\x1b[39m", "")
    assert "Traceback" in out and "endpoint = Endpoint(POST" in plain
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logs and "send_request_headers" in logs
    wal = Path(f"{isolated_store}-wal")
    assert wal.exists() and wal.stat().st_size > 0  # rows are still in the WAL file
    table = rows.astype(str).to_csv()
    for secret in SECRETS:
        for exc in failures:
            assert secret not in exception_text(exc) and secret not in with_locals(exc)
        assert secret not in out and secret not in err and secret not in logs
        assert secret not in table
        assert files_holding(in_tmp_dir, secret) == [] or secret == TOML_KEY
        assert files_holding(isolated_store.parent, secret) == [] or secret == TOML_KEY
        assert secret.encode() not in wal.read_bytes()
    # The toml file itself holds its mistake; nothing the workbench wrote does.
    assert files_holding(in_tmp_dir, TOML_KEY) == [str(in_tmp_dir / "mistake.toml")]
