"""The notebook front end: ``%%chat``, ``%%embed`` and ``%workbench``.

Magics are thin: the line becomes a request (:mod:`workbench.notebook.options`), the request runs
through the same session as ``wb.chat``/``wb.embed`` (:mod:`workbench.notebook.cells`), and the
answer comes back as a display object (:mod:`workbench.notebook.display`). Every user mistake
leaves as one ``UsageError`` line that names the fix, never a traceback.
"""

from __future__ import annotations

import argparse
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

from workbench.calls.session import get_session, one_line
from workbench.calls.tools import ToolError
from workbench.core.errors import (
    APIConnectionError,
    APITimeoutError,
    CallInterrupted,
    WorkbenchError,
)
from workbench.core.templates import TemplateError
from workbench.notebook.cells import ChatOutcome, run_chat, run_embed
from workbench.notebook.cellsweep import plan_sweep, run_sweep
from workbench.notebook.commands import HELP, SUBCOMMANDS, unknown_command
from workbench.notebook.display import ChatDisplay, StreamDisplay, show
from workbench.notebook.embedview import EmbedResult
from workbench.notebook.options import ChatRequest, EmbedRequest, OptionError, closest_name

if TYPE_CHECKING:
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
    from workbench.api.local import get_local_server  # looked up at call time: the tests patch it

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
    @argument("--api", help="chat (Chat Completions) or responses (/v1/responses); a,b: sweep")
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
                try:
                    outcome = run_chat(request, self.user_ns, on_delta=on_delta)
                except CallInterrupted as exc:
                    # Ctrl-C: the whole partial answer (the live view lags up to 0.25 s)
                    # and its footer in place; IPython then shows the exception's one line.
                    screen.finish(ChatDisplay(ChatOutcome([exc.response])))
                    raise
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
                raise OptionError(unknown_command("%workbench", name, SUBCOMMANDS))
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


_status = SUBCOMMANDS["status"]  # its old name here, for code that imported it
