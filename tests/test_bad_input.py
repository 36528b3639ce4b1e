"""Bad input: every wrong thing a person types, in the magics and in the Python API, gives
one clear line that names the fix, no traceback wall, and leaves the store as it was.

Each case says what it raises, a fragment its message must hold, and how many rows the
failure adds: a call the server refused is logged as an error row (nothing is lost, not
even a failure); everything refused before sending adds none.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faults import Action, Fault, FaultServer, Request
from faults.server import MODELS
from IPython.core.error import UsageError
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.core.templates import TemplateError

KEY = "sk-bad-input-test-000000000000"


def plan(request: Request) -> Action:
    body = request.body if isinstance(request.body, dict) else {}
    model = body.get("model")
    if model is not None and model not in MODELS:
        return Action(Fault.HTTP_400, text=f"The model `{model}` does not exist")
    if "too long for the context" in str(body):
        return Action(Fault.HTTP_400)  # "This model's maximum context length is 2048 tokens."
    return Action(Fault.OK)


@dataclass
class Env:
    shell: TestingShell
    server: FaultServer
    dir: Path
    store: Path
    monkeypatch: pytest.MonkeyPatch

    def cell(self, text: str) -> Any:
        return self.shell.run_cell(text)

    def unreachable(self) -> None:
        # A port nothing listens on (the discard port), and no retries to wait out.
        self.monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        wb.configure(max_retries=0, timeout=2)

    def corrupt_store(self) -> None:
        from workbench.calls.session import get_session

        get_session().close_store()
        data = self.store.read_bytes()
        # Page 1 keeps SQLite's header; every later page becomes junk.
        self.store.write_bytes(data[:100] + b"\xa5" * (len(data) - 100))

    def junk_store(self) -> None:
        from workbench.calls.session import get_session

        get_session().close_store()
        self.store.write_bytes(b"These are my notes, not a database.\n" * 200)

    def read_only_store(self) -> None:
        from workbench.calls.session import get_session

        get_session().close_store()
        # Root ignores file modes; the immutable attribute stops root too.
        problem = chattr("+i", self.store)
        if problem is not None:
            pytest.skip(f"cannot make a read-only file here: {problem}")


def chattr(flag: str, path: Path) -> str | None:
    """Set or clear a file attribute; what went wrong, or None."""
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    except FileNotFoundError:
        return "no chattr command"
    return done.stderr.decode().strip() or "chattr failed" if done.returncode else None


Run = Callable[[Env], object]


@dataclass(frozen=True)
class Case:
    id: str
    run: Run
    raises: type[BaseException]
    fragment: str
    logged: int = 0  # rows the failed call adds to the table
    sent: int | None = None  # calls that reach the fault server (default: as logged)
    setup: Callable[[Env], None] | None = None
    store_damaged: bool = False  # the case breaks the store itself: compare bytes instead

    @property
    def param(self) -> Any:
        marks = [pytest.mark.integration] if "local" in self.id else []
        return pytest.param(self, id=self.id, marks=marks)

    @property
    def expected_sent(self) -> int:
        if self.sent is not None:
            return self.sent
        # The local model is not the fault server: its calls are not counted there.
        return 0 if "local" in self.id else self.logged


def magic(id: str, text: str, fragment: str, **kwargs: Any) -> Case:
    return Case(id, lambda env: env.cell(text), UsageError, fragment, **kwargs)


def api(id: str, run: Run, raises: type[BaseException], fragment: str, **kwargs: Any) -> Case:
    return Case(id, run, raises, fragment, **kwargs)


CHAT = "%%chat --model gpt-4o-mini"
LONG = "word " * 3000  # far beyond a 2,048-token context

MAGIC_CASES = [
    magic("temperature-not-a-number", "%%chat -t hot\nhi", "--temperature must be a number"),
    magic("temperature-out-of-range", "%%chat -t 5\nhi", "between 0 and 2"),
    magic("top-p-out-of-range", "%%chat --top-p 1.5\nhi", "--top-p must be"),
    magic("seed-not-whole", "%%chat --seed 1.5\nhi", "--seed must be"),
    magic("max-tokens-negative", "%%chat --max-tokens -3\nhi", "--max-tokens"),
    magic("misspelled-option", "%%chat --temprature 0.5\nhi", "did you mean --temperature"),
    magic("prompt-on-the-line", "%%chat tell me a joke\nhi", "the text goes in the cell"),
    magic("unclosed-quote", '%%chat --system "be brief\nhi', "close the quote"),
    magic("option-without-value", "%%chat --stop\nhi", "expected one argument"),
    magic("unknown-model", "%%chat --model gpt-4o-minni\nhi", "Did you mean 'gpt-4o-mini'"),
    magic("empty-cell", "%%chat --model gpt-4o-mini\n", "cell body is empty"),
    magic("blank-cell", "%%chat --model gpt-4o-mini\n   \n\t\n", "The cell is empty"),
    magic("missing-variable", f"{CHAT}\nTell me about {{{{nope}}}}.", "define nope"),
    magic("missing-system-variable", f'{CHAT} -s "{{{{persona}}}}"\nhi', "persona"),
    magic("template-syntax-error", f"{CHAT}\nHi {{{{ name", "Cannot read the prompt template"),
    magic("schema-variable-missing", f"{CHAT} --schema Nope\nhi", "no variable 'Nope'"),
    magic("schema-not-a-schema", f"{CHAT} --schema text\nhi", "not a JSON-schema dict"),
    magic("schema-malformed-dict", f"{CHAT} --schema bad_schema\nhi", "not a JSON-schema dict"),
    magic("json-and-schema", f"{CHAT} --json --schema schema\nhi", "not both"),
    magic("tools-variable-missing", f"{CHAT} --tools nothing\nhi", "no variable 'nothing'"),
    magic("tools-not-functions", f"{CHAT} --tools number\nhi", "Python functions or schemas"),
    magic("tools-malformed-schema", f"{CHAT} --tools bad_tools\nhi", "has no function name"),
    magic("run-tools-without-tools", f"{CHAT} --run-tools\nhi", "--run-tools needs --tools"),
    magic("image-missing", f"{CHAT} --image missing.png\nhi", "cannot read it"),
    magic("image-not-an-image", f"{CHAT} --image notes.txt\nhi", "not an image file"),
    magic("image-is-a-folder", f"{CHAT} --image folder.png\nhi", "cannot read it"),
    magic("out-not-a-name", f"{CHAT} --out 1abc\nhi", "needs a Python variable name"),
    magic("budget-not-a-number", f"{CHAT} --budget lots\nhi", "--budget must be"),
    magic("budget-negative", f"{CHAT} --budget -1\nhi", "--budget must be"),
    magic(
        "budget-too-small",
        f"%%chat --model gpt-4o --budget 0.0000001\n{'word ' * 500}",
        "Refused before sending",
    ),
    magic("unknown-provider", "%%chat --provider opneai\nhi", "Did you mean 'openai'"),
    magic("invalid-utf8", f"{CHAT}\nbad bytes: \udcff\udcfe", "not valid Unicode"),
    magic("invalid-utf8-system", f'{CHAT} -s "\ud800"\nhi', "not valid Unicode"),
    magic(
        "server-refuses-prompt",
        f"{CHAT} --no-stream\ntoo long for the context",
        "maximum context length",
        logged=1,
    ),
    magic("unreachable-provider", f"{CHAT}\nhi", "No provider reachable", setup=Env.unreachable),
    magic("seed-beyond-64-bits", f"{CHAT} --seed {2**70}\nhi", "between -2**63 and 2**63-1"),
    magic("max-tokens-beyond-64-bits", f"{CHAT} --max-tokens {2**70}\nhi", "and 2**63-1"),
    magic("five-stop-sequences", f"{CHAT} {'--stop x ' * 5}\nhi", "at most 4 strings"),
    magic("swept-temperature-out-of-range", f"{CHAT} -t 0,2.5\nhi", "not a number between 0"),
    magic(
        "template-reaches-globals",
        f"{CHAT}\n{{{{ cycler.__init__.__globals__.os.getpid() }}}}",
        "refused: access to attribute '__init__'",
    ),
    magic(
        "template-reads-the-key",
        f"{CHAT}\n{{{{ lipsum.__globals__['os'].environ['OPENAI_API_KEY'] }}}}",
        "Undefined variable lipsum",
    ),
    magic(
        "template-calls-the-shell",
        f"{CHAT}\n{{{{ get_ipython().system('echo pwned') }}}}",
        "refused: calling InteractiveShell.get_ipython() is not allowed",
    ),
    magic(
        "template-in-system-prompt",
        f'{CHAT} -s "{{{{ text.__class__.__mro__ }}}}"\nhi',
        "In the --system: refused",
    ),
    magic(
        "swept-template-escape",
        f"{CHAT} --seed 1,2\n{{{{ text.__class__.__mro__[1].__subclasses__() }}}}",
        "refused: access to attribute '__class__'",
    ),
    magic("embed-empty-cell", "%%embed\n\n", "The cell is empty"),
    magic("embed-dimensions-not-a-number", "%%embed --dimensions many\na", "--dimensions"),
    magic("embed-bad-split", "%%embed --split words\na", "invalid choice"),
    magic(
        "embed-unknown-model",
        "%%embed --model text-embedding-3-smal\na",
        "Did you mean 'text-embedding-3-small'",
    ),
    magic(
        "embed-invalid-utf8",
        "%%embed --model text-embedding-3-small\nbad \udcff",
        "not valid Unicode",
    ),
    magic("workbench-unknown-command", "%workbench modles", "Did you mean 'models'"),
    magic("workbench-runs-not-a-number", "%workbench runs many", "positive whole number"),
    magic("workbench-budget-not-a-number", "%workbench budget lots", "budget"),
    magic("workbench-unknown-provider", "%workbench use nowhere", "Unknown provider"),
    magic("workbench-unknown-thread", "%workbench thread show nope", "No thread 'nope'"),
    magic(
        "corrupted-store",
        f"{CHAT}\nhi",
        "is damaged",
        setup=Env.corrupt_store,
        store_damaged=True,
    ),
    magic(
        "junk-store",
        f"{CHAT}\nhi",
        "is not a workbench store",
        setup=Env.junk_store,
        store_damaged=True,
    ),
    magic(
        "read-only-store",
        f"{CHAT}\nnew question",
        "cannot write the workbench store",
        setup=Env.read_only_store,
        store_damaged=True,
    ),
    magic(
        "local-prompt-beyond-context",
        f"%%chat --provider local --no-stream\n{LONG}",
        "context",
        logged=1,
    ),
]

IE = wb.InvalidInputError

API_CASES = [
    api(
        "chat-temperature-text",
        lambda e: wb.chat("hi", temperature="hot"),
        IE,
        "temperature must be a number",
    ),
    api("chat-seed-float", lambda e: wb.chat("hi", seed=1.5), IE, "seed must be a whole number"),
    api("chat-max-tokens-text", lambda e: wb.chat("hi", max_tokens="10"), IE, "max_tokens"),
    api("chat-top-p-above-1", lambda e: wb.chat("hi", top_p=3), IE, "top_p must be"),
    api("chat-temperature-above-2", lambda e: wb.chat("hi", temperature=2.5), IE, "0 and 2"),
    api("chat-seed-beyond-64-bits", lambda e: wb.chat("hi", seed=2**70), IE, "and 2**63-1"),
    api("chat-max-tokens-beyond-64-bits", lambda e: wb.chat("hi", max_tokens=2**70), IE, "2**63"),
    api("chat-experiment-number", lambda e: wb.chat("hi", experiment=123), IE, "must be text"),
    api("chat-five-stops", lambda e: wb.chat("hi", stop=list("abcde")), IE, "at most 4 strings"),
    api("chat-n-zero", lambda e: wb.chat("hi", n=0), IE, "n must be a whole number between 1"),
    api("chat-top-logprobs-21", lambda e: wb.chat("hi", top_logprobs=21), IE, "between 0 and 20"),
    api("chat-budget-text", lambda e: wb.chat("hi", budget="lots"), IE, "must be an amount"),
    api(
        "sweep-grid-seed-beyond-64-bits",
        lambda e: wb.sweep("hi", grid={"seed": [1, 2**70]}),
        IE,
        "seed must be a whole number between -2**63",
    ),
    api(
        "sweep-experiment-number",
        lambda e: wb.sweep("hi", experiment=7),  # type: ignore[arg-type]
        IE,
        "experiment must be text",
    ),
    api(
        "embed-dimensions-beyond-64-bits",
        lambda e: wb.embed("a", dimensions=2**70),
        IE,
        "between 1 and 2**63-1",
    ),
    api(
        "chat-prompt-not-text",
        lambda e: wb.chat(123),
        IE,  # type: ignore[arg-type]
        "text or a list of message dicts",
    ),
    api("chat-invalid-utf8", lambda e: wb.chat("caf\udce9"), IE, "not valid Unicode"),
    api(
        "chat-unknown-provider",
        lambda e: wb.chat("hi", provider="opneai"),
        wb.ConfigurationError,
        "Did you mean 'openai'",
    ),
    api(
        "chat-unknown-model",
        lambda e: wb.chat("hi", model="gpt-5-ultra"),
        wb.BadRequestError,
        "does not exist",
        logged=1,
    ),
    api(
        "chat-server-refuses",
        lambda e: wb.chat("too long for the context"),
        wb.BadRequestError,
        "maximum context length",
        logged=1,
    ),
    api(
        "chat-unreachable",
        lambda e: wb.chat("hi", model="gpt-4o-mini"),
        wb.APIConnectionError,
        "check the base URL",
        logged=1,
        sent=0,
        setup=Env.unreachable,
    ),
    api(
        "chat-budget-too-small",
        lambda e: wb.chat("word " * 500, model="gpt-4o", budget=1e-9),
        wb.BudgetExceededError,
        "or raise budget=",
    ),
    api(
        "configure-budget-text",
        lambda e: wb.configure(budget="lots"),
        IE,  # type: ignore
        "budget must be an amount",
    ),
    api("configure-budget-negative", lambda e: wb.configure(budget=-1), IE, "0 or more"),
    api("configure-timeout-zero", lambda e: wb.configure(timeout=0), IE, "seconds above 0"),
    api(
        "configure-retries-negative",
        lambda e: wb.configure(max_retries=-1),
        IE,
        "max_retries must be",
    ),
    api(
        "configure-unknown-provider",
        lambda e: wb.configure(provider="nowhere"),
        wb.ConfigurationError,
        "Unknown provider",
    ),
    api(
        "runs-since-not-a-date",
        lambda e: wb.runs(since="last tuesday"),
        IE,
        "since must be a datetime",
    ),
    api("runs-status-typo", lambda e: wb.runs(status="okay"), IE, "'ok', 'error'"),
    api("runs-negative-limit", lambda e: wb.runs(limit=-1), ValueError, "limit must be"),
    api(
        "export-unknown-format",
        lambda e: wb.export(e.dir / "runs.xlsx"),
        wb.StoreError,
        "must end in .parquet",
    ),
    api(
        "export-unwritable-place",
        lambda e: wb.export("/proc/nowhere/runs.csv"),
        wb.StoreError,
        "cannot write",
    ),
    api(
        "import-missing-file",
        lambda e: wb.import_runs(e.dir / "absent.csv"),
        wb.StoreError,
        "cannot read",
    ),
    api(
        "import-foreign-csv",
        lambda e: wb.import_runs(e.dir / "foreign.csv"),
        wb.StoreError,
        "has no column",
    ),
    api(
        "import-broken-jsonl",
        lambda e: wb.import_runs(e.dir / "broken.jsonl"),
        wb.StoreError,
        "line 2 is not JSON",
    ),
    api(
        "import-not-parquet",
        lambda e: wb.import_runs(e.dir / "fake.parquet"),
        wb.StoreError,
        "cannot import",
    ),
    api(
        "set-price-text",
        lambda e: wb.set_price("m", input_per_mtok="x", output_per_mtok=1),
        IE,
        "amount in USD",
    ),  # type: ignore[arg-type]
    api(
        "set-price-negative",
        lambda e: wb.set_price("m", input_per_mtok=-1, output_per_mtok=1),
        IE,
        "0 or more",
    ),
    api("estimate-zero-repeats", lambda e: wb.estimate("hi", repeats=0), IE, "repeats must be"),
    api(
        "estimate-negative-max-tokens",
        lambda e: wb.estimate("hi", max_tokens=-5),
        IE,
        "max_tokens must be",
    ),
    api(
        "sweep-unused-variable",
        lambda e: wb.sweep("hi", vars={"x": [1, 2]}),
        TemplateError,
        "do not appear in the template",
    ),
    api(
        "sweep-missing-variable",
        lambda e: wb.sweep("{{x}} {{y}}", vars={"x": [1]}),
        TemplateError,
        "Undefined variable(s) y",
    ),
    api(
        "sweep-grid-value-not-a-list",
        lambda e: wb.sweep("hi", grid={"temperature": "0.5"}),
        TypeError,
        "needs a list of values",
    ),
    api(
        "sweep-grid-knob-text",
        lambda e: wb.sweep("hi", grid={"temperature": ["hot", 1]}),
        IE,
        "temperature must be a number",
    ),
    api(
        "sweep-concurrency-zero",
        lambda e: wb.sweep("hi", concurrency=0),
        ValueError,
        "concurrency must be",
    ),
    api(
        "sweep-budget-text",
        lambda e: wb.sweep("hi", budget="lots"),
        IE,  # type: ignore
        "budget must be an amount",
    ),
    api("embed-nothing", lambda e: wb.embed([]), ValueError, "Nothing to embed"),
    api("embed-not-text", lambda e: wb.embed(5), IE, "a list of strings"),  # type: ignore
    api(
        "embed-dimensions-text",
        lambda e: wb.embed("a", dimensions="x"),
        IE,  # type: ignore
        "dimensions must be",
    ),
    api("experiment-empty-name", lambda e: wb.experiment(" "), ValueError, "non-empty name"),
    api(
        "runs-from-corrupted-store",
        lambda e: wb.runs(),
        wb.StoreError,
        "is damaged",
        setup=Env.corrupt_store,
        store_damaged=True,
    ),
    api(
        "chat-into-read-only-store",
        lambda e: wb.chat("a new question"),
        wb.StoreError,
        "make the file and its folder writable",
        setup=Env.read_only_store,
        store_damaged=True,
    ),
    api(
        "local-chat-beyond-context",
        lambda e: wb.chat(LONG, provider="local", max_tokens=8),
        wb.BadRequestError,
        "context",
        logged=1,
    ),
]


def count_rows(store: Path) -> int:
    conn = sqlite3.connect(store)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


def integrity(store: Path) -> str:
    conn = sqlite3.connect(store)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def digest(store: Path) -> str:
    return hashlib.sha256(store.read_bytes()).hexdigest()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path, isolated_store: Path) -> Iterator[Env]:
    (in_tmp_dir / "notes.txt").write_text("not an image")
    (in_tmp_dir / "folder.png").mkdir()
    (in_tmp_dir / "foreign.csv").write_text("name,score\nann,3\n")
    (in_tmp_dir / "broken.jsonl").write_text('{"run_id": "x"}\n{oops\n')
    (in_tmp_dir / "fake.parquet").write_bytes(b"PAR1 this is not parquet")
    with FaultServer(plan) as server, open_shell() as shell:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        wb.configure(max_retries=0)
        # Two rows already there, so "unchanged" means something.
        wb.chat("first", model="gpt-4o-mini")
        wb.chat("second", model="gpt-4o-mini")
        shell.user_ns.update(
            text="just a string",
            schema={"type": "object", "properties": {"a": {"type": "string"}}},
            bad_schema={"title": "Answer", "required": ["a"]},
            number=42,
            bad_tools=[{"type": "function", "function": {"description": "no name"}}],
        )
        environment = Env(shell, server, in_tmp_dir, isolated_store, monkeypatch)
        try:
            yield environment
        finally:
            chattr("-i", isolated_store)


def calls(server: FaultServer) -> int:
    return server.count("/chat/completions") + server.count("/embeddings")


def check(case: Case, env: Env) -> None:
    before = count_rows(env.store)
    sent_before = calls(env.server)
    if case.setup is not None:
        case.setup(env)
    snapshot = digest(env.store)
    with pytest.raises(case.raises) as caught:
        case.run(env)
    message = str(caught.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    assert len(message) < 700, "a wall of text"
    assert case.fragment.lower() in message.lower(), message
    assert "Traceback" not in message
    from workbench.calls.session import get_session

    get_session().close_store()
    # Refused input costs nothing: no call reached the API (a refused call was sent once).
    assert calls(env.server) - sent_before == case.expected_sent
    if case.store_damaged:
        assert digest(env.store) == snapshot, "a damaged store was written to"
        return
    assert integrity(env.store) == "ok"
    assert count_rows(env.store) == before + case.logged


@pytest.mark.parametrize("case", [c.param for c in MAGIC_CASES])
def test_a_magic_mistake_is_one_line_and_the_store_is_intact(case: Case, env: Env) -> None:
    check(case, env)


@pytest.mark.parametrize("case", [c.param for c in API_CASES])
def test_a_python_api_mistake_is_one_line_and_the_store_is_intact(case: Case, env: Env) -> None:
    check(case, env)


def test_the_catalogue_is_large_and_names_are_unique() -> None:
    ids = [c.id for c in MAGIC_CASES + API_CASES]
    assert len(ids) >= 40 and len(ids) == len(set(ids))
