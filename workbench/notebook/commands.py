"""``%workbench`` and its commands: status, models, runs, experiment, budget, use, thread,
help. Each command is a function (session, words after the command) -> what to show.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.core.errors import mask_url
from workbench.core.htmltable import html_table
from workbench.core.money import money_html
from workbench.notebook.display import Note, format_cost
from workbench.notebook.options import OptionError, parse_knob
from workbench.notebook.runtable.grid import RunsBrowser

if TYPE_CHECKING:
    from workbench.api.providers import Provider
    from workbench.calls.session import Session

__all__ = ["Command", "SUBCOMMANDS", "THREAD_COMMANDS", "HELP", "unknown_command"]

Command = Callable[["Session", list[str]], object]


def unknown_command(prefix: str, name: str, known: dict[str, Command]) -> str:
    hint = difflib.get_close_matches(name, list(known), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    return f"Unknown command {prefix} {name}.{suggestion} Commands: {', '.join(known)}"


def _takes(usage: str, args: list[str], most: int, least: int = 0) -> None:
    if not least <= len(args) <= most:
        raise OptionError(f"Usage: {usage}")


def _base_url(provider: Provider) -> str:
    if not provider.local:
        return mask_url(provider.base_url or "")
    from workbench.api.local import get_local_server  # looked up at call time: the tests patch it

    server = get_local_server()
    # Asking a stopped server for its URL would start it: status must not.
    return server.chat_base_url if server.chat_running else "127.0.0.1 (starts on first call)"


def _table(rows: list[tuple[str, str]]) -> Note:
    markdown = "| | |\n|---|---|\n" + "\n".join(f"| **{k}** | {v} |" for k, v in rows)
    width = max(len(k) for k, _ in rows)
    # HTML for the notebook: the spend and budget rows hold dollars, typeset as maths in
    # Markdown.
    page = html_table(None, [([html.escape(k)], [money_html(v)]) for k, v in rows])
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
        raise OptionError(unknown_command("%workbench thread", name, THREAD_COMMANDS))
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
