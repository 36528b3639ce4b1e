"""What the notebook front ends show: answers as Markdown with a one-line footer, text as it
streams in, short notes. Each carries its run's metadata (embeddings: ``notebook.embedview``).

Objects here have ``_repr_mimebundle_``, so notebooks keep structured results (run id,
model, tokens, cost) in the output metadata next to what a person reads.
"""

from __future__ import annotations

import html
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from workbench.api.jsonmode import has_json_instruction
from workbench.calls.results import ChatResponse, EmbedResponse
from workbench.core.finish import finish_note
from workbench.core.money import NO_MATHS_CLASS, format_money
from workbench.core.pricing import is_estimated

if TYPE_CHECKING:
    from workbench.calls.tools import ToolRun
    from workbench.core.usage import Usage
    from workbench.notebook.cells import ChatOutcome

__all__ = [
    "show",
    "ChatDisplay",
    "StreamDisplay",
    "Note",
    "footer",
    "format_cost",
    "shorten",
    "metadata",
    "Bundle",
]

Bundle = tuple[dict[str, Any], dict[str, Any]]
METADATA_KEY = "workbench"
# A note above the footer (a replay, a cut answer): visible, in the theme's warning colour.
_NOTE_HTML = (
    '<div class="' + NO_MATHS_CLASS + '" style="font-size: 85%; '
    'color: var(--jp-warn-color0); border-left: 3px solid var(--jp-warn-color1); '
    'padding-left: .5em">{}</div>'
)


def show(obj: object, **kwargs: Any) -> Any:
    """IPython's ``display``, typed (IPython's own carries no annotations)."""
    from IPython.display import display  # deferred: keeps import workbench light (~72 ms)

    shown: Callable[..., Any] = display
    return shown(obj, **kwargs)


def shorten(text: str, width: int = 30) -> str:
    """One line of at most ``width`` characters, with an ellipsis where it was cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_cost(cost: float | None, *, estimated: bool = False) -> str:
    """The one money format (workbench.core.money), "cost unknown" for an unknown price."""
    return format_money(cost, estimated=estimated, unknown="cost unknown")


def _tokens(response: ChatResponse | EmbedResponse, *, completion: bool = True) -> str:
    usage = response.usage
    if usage.prompt_tokens is None:
        return "tokens unknown"
    mark = "~" if usage.counted else ""  # counted with tiktoken: the server gave none
    if not completion:
        return f"{mark}{usage.prompt_tokens} tokens"
    # Reasoning tokens are billed within the completion tokens; say how many they were.
    reasoning = f" ({usage.reasoning_tokens} reasoning)" if usage.reasoning_tokens else ""
    return f"{mark}{usage.prompt_tokens}→{usage.completion_tokens or 0} tokens{reasoning}"


def footer(response: ChatResponse | EmbedResponse, *, extra: Sequence[str] = ()) -> str:
    """model · prompt→completion tokens · cost · latency · cached · run id."""
    parts = [response.model, *extra]
    if isinstance(response, ChatResponse):
        if response.refusal:
            parts.append("refused")
        ended = finish_note(response.finish_reason, response.usage.completion_tokens)
        if ended:
            parts.append(ended)
        if has_json_instruction(response.record.messages):
            parts.append("JSON instruction added")
    parts.append(_tokens(response, completion=isinstance(response, ChatResponse)))
    # "~": a cost worked out from tokens counted here, the server having sent no usage.
    estimated = is_estimated(response.record.price_source) and response.cost_usd is not None
    parts.append(format_cost(response.cost_usd, estimated=estimated))
    if response.latency_s is not None:
        parts.append(f"{response.latency_s:.2f} s")
    if response.cache_hit:
        parts.append("cached")
    parts.append(f"run {response.run_id}")
    return " · ".join(parts)


def metadata(response: ChatResponse | EmbedResponse, **extra: Any) -> dict[str, Any]:
    usage = response.usage
    return {
        METADATA_KEY: {
            "run_id": response.run_id,
            "model": response.model,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cost_usd": response.cost_usd,
            "latency_s": response.latency_s,
            "cache_hit": response.cache_hit,
            **extra,
        }
    }


class ChatDisplay:
    """The result of a ``%%chat`` cell: the answer rendered as Markdown, plus a footer.

    ``text`` is the answer, ``parsed`` the JSON object (``--json``/``--schema``),
    ``response`` the :class:`~workbench.ChatResponse` of the last call, ``responses``
    every call the cell made (one per tool round).
    """

    def __init__(self, outcome: ChatOutcome) -> None:
        self.outcome = outcome

    # -- the answer -----------------------------------------------------------------

    @property
    def response(self) -> ChatResponse:
        return self.outcome.response

    @property
    def responses(self) -> list[ChatResponse]:
        return list(self.outcome.responses)

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def parsed(self) -> Any:
        return self.outcome.parsed

    @property
    def tool_runs(self) -> list[ToolRun]:
        return list(self.outcome.tool_runs)

    @property
    def run_id(self) -> str:
        return self.response.run_id

    @property
    def logprobs(self) -> Any:
        """The answer's tokens with their log-probabilities (``--logprobs N``), as
        ``response.logprobs``: docs/calls.md reads them as ``r.logprobs``."""
        return self.response.logprobs

    @property
    def model(self) -> str:
        return self.response.model

    @property
    def usage(self) -> Usage:
        return self.response.usage

    @property
    def cost_usd(self) -> float | None:
        return self.response.cost_usd

    @property
    def latency_s(self) -> float | None:
        return self.response.latency_s

    @property
    def cache_hit(self) -> bool:
        return self.response.cache_hit

    @property
    def finish_reason(self) -> str | None:
        return self.response.finish_reason

    @property
    def footer(self) -> str:
        rounds = len(self.outcome.responses)
        extra = [f"{rounds} calls"] if rounds > 1 else []
        return footer(self.response, extra=[*extra, *self.outcome.scores])

    def __str__(self) -> str:
        return self.text

    # -- rendering ------------------------------------------------------------------

    def _answer(self, *, fenced: bool) -> str:
        refusal = self.response.refusal
        if refusal:
            return f"**Refused:** {refusal}" if fenced else f"Refused: {refusal}"
        if not self.outcome.json:
            return self.text
        if self.outcome.parse_error is not None:
            return f"{self.text}\n\nNot valid JSON: {self.outcome.parse_error}"
        shown = self.parsed
        if hasattr(shown, "model_dump"):  # a pydantic object
            shown = shown.model_dump(mode="json")
        pretty = json.dumps(shown, indent=2, ensure_ascii=False, default=str)
        return f"```json\n{pretty}\n```" if fenced else pretty

    def _tool_lines(self) -> list[str]:
        lines = []
        for run in self.outcome.tool_runs:
            call = f"`{run.name}({run.arguments})`"
            if not run.ran:
                lines.append(f"- {call} (not run: add --run-tools)")
            else:
                lines.append(f"- {call} → `{shorten(run.result or '', 200)}`")
        return ["**Tool calls**", *lines] if lines else []

    def _summary_html(self) -> str:
        # Folded: a reasoning summary can be longer than the answer it led to.
        summary = self.response.reasoning_summary
        if not summary:
            return ""
        return (
            f'<details class="{NO_MATHS_CLASS}"><summary>Reasoning summary</summary>'
            f'<div style="white-space: pre-wrap; color: var(--jp-ui-font-color2)">'
            f"{html.escape(summary)}</div></details>\n\n"
        )

    def markdown(self) -> str:
        tools = "\n".join(self._tool_lines())
        head = self._summary_html() + (f"{tools}\n\n" if tools else "")
        # The footer holds dollars: in an element MathJax skips, never typeset as maths.
        foot = f'<sub class="{NO_MATHS_CLASS}">{html.escape(self.footer)}</sub>'
        notes = "".join(f"\n\n{_NOTE_HTML.format(html.escape(n))}" for n in self.notes)
        return f"{head}{self._answer(fenced=True)}{notes}\n\n{foot}"

    @property
    def notes(self) -> list[str]:
        """What a reader must know about this answer, shown above the footer: that it was
        replayed from the table, cut at the token limit or content-filtered."""
        response = self.response
        notes = []
        ended = finish_note(response.finish_reason, response.usage.completion_tokens)
        if ended:
            notes.append(f"⚠ {ended}: the answer is incomplete")
        if response.cache_hit:
            notes.append("↺ answered from the table · --fresh for a new sample")
        if response.record.api == "responses" and response.record.seed is not None:
            notes.append("ℹ seed not sent: the Responses API takes none (kept in the table)")
        return notes

    def _plain(self) -> str:
        tools = "\n".join(self._tool_lines()).replace("`", "").replace("**", "")
        head = f"{tools}\n\n" if tools else ""
        if self.response.reasoning_summary:
            head = f"Reasoning summary: {self.response.reasoning_summary}\n\n{head}"
        notes = "".join(f"\n\n{note}" for note in self.notes)
        return f"{head}{self._answer(fenced=False)}{notes}\n\n{self.footer}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        data = {"text/markdown": self.markdown(), "text/plain": self._plain()}
        extra = {"run_ids": [r.run_id for r in self.outcome.responses]}
        return data, metadata(self.response, **extra)

    def __repr__(self) -> str:
        return self._plain()


class StreamDisplay:
    """Shows a streamed answer as it arrives, then the final result in the same place.

    ``live``: one display output, updated at most every ``interval`` seconds (a kernel
    re-renders the whole output on each update, so per-token updates would flood it).
    The partial answer is Markdown, as the final one is: streamed as monospace text it
    broke words mid-way, then jumped to proportional Markdown and reflowed at the end.
    Not live (a terminal): the text is written as it comes.
    """

    def __init__(
        self,
        *,
        live: bool = True,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
    ) -> None:
        self.live = live
        self.interval = interval
        self._clock = clock
        self._stream = stream
        self._parts: list[str] = []
        self._handle: Any = None
        self._last = 0.0
        self.updates = 0  # how many times the live output was redrawn

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def _partial(self) -> dict[str, str]:
        return {"text/markdown": self.text, "text/plain": self.text}

    def status(self, message: str) -> None:
        """A line shown until the first words arrive (e.g. while the local model starts)."""
        if self.live and self._handle is None:
            note = {"text/markdown": f"<sub>{html.escape(message)}</sub>", "text/plain": message}
            self._handle = show(note, raw=True, display_id=True)

    def __call__(self, delta: str) -> None:
        first = not self._parts
        self._parts.append(delta)
        if not self.live:
            out = self._stream or sys.stdout
            out.write(delta)
            out.flush()
            return
        now = self._clock()
        if self._handle is None:
            self._handle = show(self._partial(), raw=True, display_id=True)
            self._last = now
        elif first or now - self._last >= self.interval:  # first words replace a status
            self._handle.update(self._partial(), raw=True)
            self.updates += 1
            self._last = now

    def finish(self, result: ChatDisplay) -> None:
        """Replace the streamed text with the rendered result (or show it, if none came)."""
        if self._handle is not None:
            self._handle.update(result)
            self.updates += 1
        elif self.live or not self._parts:
            show(result)
        else:
            out = self._stream or sys.stdout
            out.write(f"\n\n{result.footer}\n")

    def __enter__(self) -> StreamDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None and self._parts and not self.live:
            (self._stream or sys.stdout).write("\n")  # the error goes on a line of its own
        if exc_info[0] is not None and self._handle is not None and not self._parts:
            # Only a status was shown ("starting the local model…"): the error replaces it.
            self._handle.update({"text/plain": ""}, raw=True)


class Note:
    """A short Markdown message (status, help, confirmations) with a plain-text twin.

    ``html``, when given, is shown instead of the Markdown: a line with dollars in it must
    not be Markdown (JupyterLab typesets a pair of ``$`` as maths, even escaped).
    """

    def __init__(self, markdown: str, plain: str | None = None, *, html: str | None = None) -> None:
        self.markdown = markdown
        self.plain = plain if plain is not None else markdown
        self.html = html

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        if self.html is not None:
            return {"text/html": self.html, "text/plain": self.plain}
        return {"text/markdown": self.markdown, "text/plain": self.plain}

    def _repr_markdown_(self) -> str | None:
        # None when there is HTML: IPython would otherwise add the Markdown next to it.
        return self.markdown if self.html is None else None

    def __repr__(self) -> str:
        return self.plain
