"""The notebook front end: ``%%chat``, ``%%embed`` and ``%workbench``.

Magics are thin: the line becomes a request (:mod:`workbench.options`), the request runs
through the same session as ``wb.chat``/``wb.embed`` (:mod:`workbench.cells`), and the
answer comes back as a display object (:mod:`workbench.display`). Every user mistake
leaves as one ``UsageError`` line that names the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import html
import io
import re
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)

from .cells import run_chat, run_embed
from .cellsweep import plan_sweep, run_sweep
from .display import ChatDisplay, EmbedResult, Note, StreamDisplay, format_cost, show
from .errors import APIConnectionError, APITimeoutError, WorkbenchError, mask_url
from .money import money_html
from .options import ChatRequest, EmbedRequest, OptionError, closest_name, parse_knob
from .session import Session, get_session, one_line
from .templates import TemplateError
from .tools import ToolError

if TYPE_CHECKING:
    from .providers import Provider

    _F = TypeVar("_F", bound=Callable[..., Any])

    # IPython's decorators carry no annotations; these are their real shapes.
    def argument(*args: Any, **kwargs: Any) -> Callable[[_F], _F]: ...
    def magic_arguments(name: str | None = None) -> Callable[[_F], _F]: ...
else:
    from IPython.core.magic_arguments import argument, magic_arguments

__all__ = ["WorkbenchMagics", "register", "user_errors", "SUBCOMMANDS", "HELP"]


@contextmanager
def user_errors() -> Iterator[None]:
    """Translate the workbench's errors into IPython's one-line ``UsageError``, once."""
    try:
        yield
    except (OptionError, TemplateError, ToolError) as exc:
        raise UsageError(one_line(exc)) from None
    except APIConnectionError as exc:
        if isinstance(exc, APITimeoutError):
            raise UsageError(one_line(exc)) from None
        raise UsageError(f"No provider reachable: {one_line(exc)}") from None
    except WorkbenchError as exc:  # API status errors keep the status and server message
        raise UsageError(one_line(exc)) from None


def _parse(magics: Magics, name: str, line: str) -> argparse.Namespace:
    """A magic's line parsed by its ``@magic_arguments`` parser, unknown words refused."""
    parser: argparse.ArgumentParser = getattr(type(magics), name).parser
    label = f"%{parser.prog}"  # both parsed magics are cell magics: %%chat, %%embed
    try:
        argv = shlex.split(line)  # quotes group words and are removed, as in a shell
    except ValueError as exc:
        raise OptionError(f"Cannot read the {label} line: {exc} (close the quote)") from None
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    word = extra[0].split("=")[0]
    if not word.startswith("-"):
        raise OptionError(
            f"Unexpected {word!r} on the {label} line: options start with --, the "
            f"text goes in the cell below (see {label}?)"
        )
    options = sorted({s for action in parser._actions for s in action.option_strings})
    hint = closest_name(word, options)
    suggestion = f": did you mean {hint}?" if hint else ""
    raise OptionError(f"Unknown option {word} for {label}{suggestion} (see {label}?)")


def _local_model_will_start(request: ChatRequest) -> bool:
    provider, _ = get_session().resolve(request.model, request.provider)
    if not provider.local:
        return False
    from .local import get_local_server

    return not get_local_server().chat_running  # asking does not start it


def _in_kernel(shell: Any) -> bool:
    # A Jupyter kernel can redraw an output in place; a terminal can only append.
    return getattr(shell, "kernel", None) is not None


@magics_class
class WorkbenchMagics(Magics):
    """``%%chat``, ``%%embed`` and ``%workbench``; loaded with ``%load_ext workbench``."""

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's variables: templates read them, --out writes them."""
        assert self.shell is not None, "magics run inside an IPython shell"
        ns: dict[str, Any] = self.shell.user_ns
        return ns

    @magic_arguments(name="%chat")  # IPython prints usage with one more "%"
    @argument("-m", "--model", help="model name, or provider:model (a,b: a sweep)")
    @argument("-t", "--temperature", help="sampling temperature, 0 to 2 (0,0.7 or 0:1:0.5: sweep)")
    @argument("--top-p", help="nucleus sampling mass, 0 to 1")
    @argument("--seed", help="integer seed, for repeatable sampling (1:4 is 1,2,3,4)")
    @argument("--max-tokens", help="at most this many tokens in the answer")
    @argument("-s", "--system", help="system prompt: text or {{var}}")
    @argument("--stop", action="append", help="stop sequence (repeatable; \\n is a newline)")
    @argument("--presence-penalty", help="-2 to 2")
    @argument("--frequency-penalty", help="-2 to 2")
    @argument("--reasoning-effort", help="reasoning models: low, medium, high (a,b: sweep)")
    @argument("--logprobs", metavar="N", help="keep each token's log-probability and N rivals")
    @argument("--provider", help="local, openai, or a provider of workbench.toml")
    @argument("--experiment", help="experiment name for this run")
    @argument("--out", metavar="VAR", help="bind the result to VAR (with --schema: the object)")
    @argument("--thread", metavar="NAME", help="multi-turn: send the thread's earlier messages")
    @argument("--no-stream", action="store_true", help="wait for the whole answer")
    @argument("--fresh", action="store_true", help="ask the model even if the table has it")
    @argument("--json", action="store_true", help="ask for a JSON object, shown parsed")
    @argument("--schema", metavar="VAR", help="JSON-schema dict or pydantic class to answer in")
    @argument("--tools", metavar="VAR", help="list of Python functions or tool schemas")
    @argument("--run-tools", action="store_true", help="run the tools the model calls")
    @argument("--image", action="append", metavar="PATH_OR_URL", help="attach (repeatable)")
    @argument("--budget", metavar="USD", help="refuse if the estimated cost is above this")
    @argument("--deadline", metavar="SECONDS", help="give up on a call after this long, all in")
    @argument("--repeat", metavar="K", help="a sweep of K samples of each point")
    @argument("--concurrency", metavar="N", help="a sweep sends at most N calls at once")
    @argument("--score", metavar="VAR", help="score each run with the scorer(s) in VAR")
    @argument("--batch", action="store_true", help="a sweep through the Batch API (24 h)")
    @line_cell_magic
    @no_var_expand  # IPython would turn {{name}} on the line into {name}: Jinja's job
    def chat(self, line: str, cell: str | None = None) -> None:
        """Replaced by CHAT_HELP below (magic_arguments would prepend RST usage)."""
        with user_errors():
            if cell is None:  # %chat [options] QUESTION: the rest of the line is the prompt
                line, cell = _split_question(line)
            request = ChatRequest.from_args(_parse(self, "chat", line), cell)
            if request.is_sweep:
                planned = plan_sweep(request, self.user_ns)
                if request.out:
                    self.user_ns[request.out] = planned
                run_sweep(planned, request)
                return
            with StreamDisplay(live=_in_kernel(self.shell)) as screen:
                if _local_model_will_start(request):  # ~2.5 s of a blank output otherwise
                    screen.status("starting the local model… (once per kernel)")
                on_delta = screen if request.stream else None
                outcome = run_chat(request, self.user_ns, on_delta=on_delta)
                result = ChatDisplay(outcome)
                screen.finish(result)
            if request.out and request.schema:
                if outcome.parse_error is not None:
                    raise OptionError(
                        f"The answer does not fit --schema {request.schema} "
                        f"({outcome.parse_error}); nothing was bound to {request.out}: "
                        "raise --max-tokens, or try --fresh"
                    )
                self.user_ns[request.out] = outcome.parsed
            elif request.out:
                self.user_ns[request.out] = result

    @magic_arguments(name="%embed")
    @argument("-m", "--model", help="embedding model name, or provider:model")
    @argument("--dimensions", help="ask for shorter vectors (models that support it)")
    @argument("--split", choices=("line", "paragraph"), default="line",
              help="one text per non-empty line (default), or per paragraph")
    @argument("--out", metavar="VAR", help="bind the result (.vectors, .df, .similarity())")
    @argument("--experiment", help="experiment name for this run")
    @argument("--fresh", action="store_true", help="embed again even texts the table has")
    @cell_magic
    @no_var_expand
    def embed(self, line: str, cell: str) -> None:
        """Replaced by EMBED_HELP below (magic_arguments would prepend RST usage)."""
        with user_errors():
            request = EmbedRequest.from_args(_parse(self, "embed", line), cell)
            result = EmbedResult(run_embed(request))
            show(result)
            if request.out:
                self.user_ns[request.out] = result

    @line_magic
    @no_var_expand
    def workbench(self, line: str) -> object:
        """Workbench status and settings: %workbench [COMMAND] [ARGS]

        Commands: (none) status · models [PROVIDER] · runs [N] · experiment [NAME] ·
        budget [USD|off] · use PROVIDER · thread list|show NAME|reset NAME · help
        """
        with user_errors():
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise OptionError(f"Cannot read the %workbench line: {exc}") from None
            name, args = (words[0], words[1:]) if words else ("status", [])
            if name not in SUBCOMMANDS:
                raise OptionError(_unknown_command("%workbench", name, SUBCOMMANDS))
            return SUBCOMMANDS[name](get_session(), args)


def _parser_of(magic: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = getattr(WorkbenchMagics, magic).parser
    return parser


def _split_question(line: str) -> tuple[str, str]:
    """``%chat [options] QUESTION`` as (options, question): the options come first, the
    question is the rest of the line as typed (an apostrophe in "What's" is no quote)."""
    parser = _parser_of("chat")
    takes_value = {
        option for action in parser._actions if action.nargs != 0
        for option in action.option_strings
    }
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    expect_value = False
    while True:
        start = stream.tell()
        try:
            word = lexer.get_token()
        except ValueError:  # an unclosed quote: it belongs to the question
            word = line[start:].strip()
        if word is None or word == lexer.eof:
            question = ""
            break
        if expect_value:
            expect_value = False
        elif word.startswith("-"):
            expect_value = word in takes_value  # --temperature=0.7 carries its value
        else:
            question = line[start:].strip()
            break
    if not question:
        raise OptionError(
            "%chat needs a question after the options: %chat What is a haiku? "
            "(or %%chat, with the prompt in the cell below)"
        )
    return line[:start], question


def _options_help(parser: argparse.ArgumentParser) -> str:
    rows = []
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        names = ", ".join(action.option_strings)
        if action.choices:
            names += " " + "|".join(map(str, action.choices))
        elif action.nargs != 0:
            names += f" {action.metavar or 'VALUE'}"
        rows.append(f"  {names:<28} {action.help or ''}")
    return "\n".join(rows)


CHAT_HELP = f"""\
%%chat [options]            the cell below is the prompt
%chat [options] QUESTION    one line: the rest of the line is the prompt

Sends the prompt to a chat model and shows the answer as it arrives, rendered
as Markdown. Each call is one row of the experiment table (wb.runs()). Asking
again exactly the same thing replays the answer from the table, free; --fresh
asks the model again.

The prompt is a template over the notebook's variables: {{{{name}}}} is replaced
by the variable's value; other braces (JSON, code) are left as they are.

A list or a range on a knob makes the cell a sweep, as does --repeat K: one call
per combination, estimated first, run with a progress bar and shown side by
side. Ranges include both ends: --seed 1:3 is 1, 2, 3; -t 0:1:0.5 is 0, 0.5, 1.
Re-running a sweep sends only the runs still missing. --batch sends a sweep
through the provider's Batch API instead (half price on OpenAI, answers within
24 hours); re-running the cell collects it.

Examples
  %chat What is a haiku?

  %%chat -m smollm2-135m-instruct -t 0.7 --max-tokens 60 --thread t
  Write a haiku about {{{{topic}}}}.

  %%chat -t 0,0.7,1.2 --seed 1:2 --max-tokens 60 --budget 0.05 --out s
  Write a haiku about {{{{topic}}}}.

Options
{_options_help(_parser_of("chat"))}
"""

EMBED_HELP = f"""\
%%embed [options]           one text per line of the cell

Embeds each non-empty line of the cell and shows how similar they are (cosine
similarity, as a heatmap). Texts already embedded with the same model are read
from the table; the call is one row of wb.runs() either way.

The result (--out VAR) has .texts, .vectors (unit length), .df,
.similarity() and .nearest(query, k=5).

Example
  %%embed --out e
  The cat sat on the mat.
  A kitten rests on a rug.
  Stock prices fell sharply.

Options
{_options_help(_parser_of("embed"))}
"""

# What %%chat? and %%embed? show in the pager: text for a notebook reader, not RST.
WorkbenchMagics.chat.__doc__ = CHAT_HELP
WorkbenchMagics.embed.__doc__ = EMBED_HELP


_ONE_LINE_CHAT = re.compile(r"^%chat\s+(?!\?{1,2}\s*$)(\S.*?)\s*$")


def one_line_chat_as_call(lines: list[str]) -> list[str]:
    """``%chat What is a haiku?`` as a direct call of the magic.

    A question ends with "?", and IPython reads a line ending in ``word?`` as a request
    for help on ``word``; this runs before that rewrite (``input_transformers_cleanup``).
    ``%chat?`` alone still shows the help."""
    return [
        f"get_ipython().run_line_magic('chat', {match.group(1)!r})\n"
        if (match := _ONE_LINE_CHAT.match(line)) else line
        for line in lines
    ]


def register(ipython: Any) -> None:
    """Called by ``%load_ext workbench``."""
    ipython.register_magics(WorkbenchMagics)
    cleanup = ipython.input_transformers_cleanup
    if one_line_chat_as_call not in cleanup:
        cleanup.append(one_line_chat_as_call)


# -- %workbench commands: (session, words after the command) -> what to show ----------

Command = Callable[[Session, list[str]], object]


def _unknown_command(prefix: str, name: str, known: dict[str, Command]) -> str:
    hint = difflib.get_close_matches(name, list(known), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    return f"Unknown command {prefix} {name}.{suggestion} Commands: {', '.join(known)}"


def _takes(usage: str, args: list[str], most: int, least: int = 0) -> None:
    if not least <= len(args) <= most:
        raise OptionError(f"Usage: {usage}")


def _base_url(provider: Provider) -> str:
    if not provider.local:
        return mask_url(provider.base_url or "")
    from .local import get_local_server

    server = get_local_server()
    # Asking a stopped server for its URL would start it: status must not.
    return server.chat_base_url if server.chat_running else "127.0.0.1 (starts on first call)"


def _table(rows: list[tuple[str, str]]) -> Note:
    markdown = "| | |\n|---|---|\n" + "\n".join(f"| **{k}** | {v} |" for k, v in rows)
    width = max(len(k) for k, _ in rows)
    # HTML for the notebook: the spend and budget rows hold dollars, typeset as maths in
    # Markdown.
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
        f"{money_html(v)}</td></tr>"
        for k, v in rows
    )
    page = f"<table>{body}</table>"
    return Note(markdown, "\n".join(f"{k:<{width}}  {v}" for k, v in rows), html=page)


def _status(session: Session, args: list[str]) -> Note:
    _takes("%workbench", args, 0)
    provider, _ = session.resolve(None, None)
    remaining = session.remaining_budget()
    budget = "none" if session.budget is None else (
        f"{format_cost(float(session.budget))} ({format_cost(float(remaining or 0))} left)"
    )
    return _table([
        ("provider", f"{provider.name} · {_base_url(provider)}"),
        ("store", str(session.store_where)),
        ("experiment", session.experiment),
        ("spent", f"{_spent(session)} this session"),
        ("budget", budget),
        ("threads", ", ".join(session.threads) or "none"),
    ])


def _spent(session: Session) -> str:
    """The session's spend; calls of unknown price make it "+ unknown", never $0."""
    spent = format_cost(float(session.spent))
    if not session.unpriced_calls:
        return spent
    return f"{spent} + unknown" if session.spent else "unknown"


def _models(session: Session, args: list[str]) -> Note:
    _takes("%workbench models [PROVIDER]", args, 1)
    provider, _ = session.resolve(None, args[0] if args else None)
    names = session.models(provider, refresh=True)
    listing = "\n".join(f"- `{n}`" for n in names) or "(none listed)"
    return Note(f"**{provider.name}** models:\n\n{listing}", "\n".join(names))


def _runs(session: Session, args: list[str]) -> object:
    _takes("%workbench runs [N]", args, 1)
    limit = 100
    if args:
        try:
            limit = int(args[0])
        except ValueError:
            limit = 0
        if limit < 1:
            raise OptionError(f"%workbench runs N needs a positive whole number, got {args[0]!r}")
    from .runtable.grid import RunsBrowser

    return RunsBrowser(session.store.runs(limit=limit))


def _experiment(session: Session, args: list[str]) -> Note:
    if args:
        session.experiment = " ".join(args)
        return Note(f"Runs from now on belong to experiment **{session.experiment}**.")
    return Note(f"Experiment: **{session.experiment}**")


def _budget(session: Session, args: list[str]) -> Note:
    _takes("%workbench budget [USD|off]", args, 1)
    if args and args[0].lower() in ("off", "none"):
        session.budget = None
    elif args:
        session.configure(budget=parse_knob("budget", args[0]))
    if session.budget is None:
        return Note("No session budget.")
    left = format_cost(float(session.remaining_budget() or 0))
    text = f"Session budget {format_cost(float(session.budget))}, {left} left."
    return Note(text, html=money_html(text))


def _use(session: Session, args: list[str]) -> Note:
    _takes("%workbench use PROVIDER", args, 1, 1)
    session.configure(provider=args[0])
    provider, _ = session.resolve(None, None)
    return Note(f"Calls now go to **{provider.name}** ({_base_url(provider)}).")


def _thread_list(session: Session, args: list[str]) -> Note:
    _takes("%workbench thread list", args, 0)
    rows = [(name, f"{len(messages)} messages") for name, messages in session.threads.items()]
    return _table(rows) if rows else Note("No threads yet: use %%chat --thread NAME.")


def _thread_named(session: Session, args: list[str], usage: str) -> str:
    _takes(usage, args, 1, 1)
    if args[0] not in session.threads:
        hint = difflib.get_close_matches(args[0], list(session.threads), n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(session.threads) or "none yet"
        raise OptionError(f"No thread {args[0]!r}.{suggestion} Threads: {known}")
    return args[0]


def _thread_show(session: Session, args: list[str]) -> Note:
    name = _thread_named(session, args, "%workbench thread show NAME")
    lines = []
    for message in session.threads[name]:
        content = message.get("content")
        if not isinstance(content, str):  # text and images: show the text parts
            content = " ".join(p.get("text", "[image]") for p in content or [])
        lines.append((message["role"], content))
    markdown = "\n\n".join(f"**{role}:** {text}" for role, text in lines)
    return Note(markdown, "\n\n".join(f"{role}: {text}" for role, text in lines))


def _thread_reset(session: Session, args: list[str]) -> Note:
    name = _thread_named(session, args, "%workbench thread reset NAME")
    del session.threads[name]
    return Note(f"Thread **{name}** is empty again.")


THREAD_COMMANDS: dict[str, Command] = {
    "list": _thread_list,
    "show": _thread_show,
    "reset": _thread_reset,
}


def _thread(session: Session, args: list[str]) -> object:
    name, rest = (args[0], args[1:]) if args else ("list", [])
    if name not in THREAD_COMMANDS:
        raise OptionError(_unknown_command("%workbench thread", name, THREAD_COMMANDS))
    return THREAD_COMMANDS[name](session, rest)


_HELP_ROWS = [
    ("%%chat [options]",
     "the cell is the prompt (`{{name}}` fills in a variable). Knobs: `-m/--model`, "
     "`-t/--temperature`, `--top-p`, `--seed`, `--max-tokens`, `-s/--system`, `--stop`, "
     "`--presence-penalty`, `--frequency-penalty`, `--reasoning-effort`. Also "
     "`--logprobs N`, `--thread NAME`, `--json`, "
     "`--schema VAR`, `--tools VAR --run-tools`, `--image PATH`, `--out VAR`, "
     "`--no-stream`, `--fresh`, `--budget USD`, `--deadline SECONDS`, `--provider`, "
     "`--experiment`. "
     "A list or range on a knob (`-t 0,0.7 --seed 1:3`) or `--repeat K` makes a sweep; "
     "`--concurrency N` sends at most N calls at once"),
    ("%chat [options] QUESTION", "one line: the rest of the line is the prompt"),
    ("%%embed [options]",
     "one text per line; shows a similarity heatmap. `-m/--model`, `--dimensions`, "
     "`--split line|paragraph`, `--out VAR`, `--experiment`, `--fresh`"),
    ("%workbench", "status: provider, store, experiment, spend and budget"),
    ("%workbench models [PROVIDER]", "the models a provider lists"),
    ("%workbench runs [N]", "the last N runs (default 100), newest first: sort, search, filter"),
    ("%workbench experiment [NAME]", "name the runs that follow"),
    ("%workbench budget [USD|off]", "refuse calls once the session has spent this"),
    ("%workbench use PROVIDER", "send calls to another provider"),
    ("%workbench thread list|show NAME|reset NAME", "the conversations of `--thread`"),
]


def _cell(text: str) -> str:
    # A "|" inside a Markdown table cell must be escaped, even inside backticks.
    return text.replace("|", "\\|")


HELP = (
    "**Prompt Workbench**: every call is a row of `wb.runs()`, with tokens, cost and "
    "latency.\n\n| command | what it does |\n|---|---|\n"
    + "\n".join(f"| `{_cell(c)}` | {_cell(d)} |" for c, d in _HELP_ROWS)
    + "\n\nDetails of each magic: `%%chat?`, `%%embed?`, `%workbench?`."
)


def _help(session: Session, args: list[str]) -> Note:
    plain = "\n".join(f"{c}\n    {d.replace('`', '')}" for c, d in _HELP_ROWS)
    return Note(HELP, f"{plain}\n\nDetails of each magic: %%chat?, %%embed?, %workbench?")


SUBCOMMANDS: dict[str, Command] = {
    "status": _status,
    "models": _models,
    "runs": _runs,
    "experiment": _experiment,
    "budget": _budget,
    "use": _use,
    "thread": _thread,
    "help": _help,
}
