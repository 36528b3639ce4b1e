"""What the notebook front ends show: answers as Markdown with a one-line footer, text as it
streams in, embeddings as a similarity heatmap. Each carries its run's metadata.

Objects here have ``_repr_mimebundle_``, so notebooks keep structured results (run id,
model, tokens, cost) in the output metadata next to what a person reads.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .finish import finish_note
from .jsonmode import has_json_instruction
from .money import NO_MATHS_CLASS, format_money, money_html
from .pricing import is_estimated
from .results import ChatResponse, EmbedResponse

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes

    from .cells import ChatOutcome
    from .tools import ToolRun
    from .usage import Usage

__all__ = [
    "show",
    "ChatDisplay",
    "StreamDisplay",
    "EmbedResult",
    "Note",
    "footer",
    "format_cost",
    "shorten",
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
    from IPython.display import display

    shown: Callable[..., Any] = display
    return shown(obj, **kwargs)


def shorten(text: str, width: int = 30) -> str:
    """One line of at most ``width`` characters, with an ellipsis where it was cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_cost(cost: float | None, *, estimated: bool = False) -> str:
    """The one money format (workbench.money), "cost unknown" for an unknown price."""
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


def _metadata(response: ChatResponse | EmbedResponse, **extra: Any) -> dict[str, Any]:
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

    def markdown(self) -> str:
        tools = "\n".join(self._tool_lines())
        head = f"{tools}\n\n" if tools else ""
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
        return notes

    def _plain(self) -> str:
        tools = "\n".join(self._tool_lines()).replace("`", "").replace("**", "")
        head = f"{tools}\n\n" if tools else ""
        notes = "".join(f"\n\n{note}" for note in self.notes)
        return f"{head}{self._answer(fenced=False)}{notes}\n\n{self.footer}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        data = {"text/markdown": self.markdown(), "text/plain": self._plain()}
        extra = {"run_ids": [r.run_id for r in self.outcome.responses]}
        return data, _metadata(self.response, **extra)

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


class EmbedResult:
    """The result of an ``%%embed`` cell: texts, unit vectors, similarities, a heatmap."""

    def __init__(self, response: EmbedResponse) -> None:
        self.response = response

    @property
    def texts(self) -> list[str]:
        return list(self.response.texts)

    @property
    def vectors(self) -> npt.NDArray[np.float64]:
        """The vectors as an (n, d) array, each of length 1."""
        vectors: npt.NDArray[np.float64] = self.response.vectors
        return vectors

    @property
    def run_id(self) -> str:
        return self.response.run_id

    @property
    def df(self) -> pd.DataFrame:
        """One row per text (the index), one column per dimension."""
        import pandas as pd

        return pd.DataFrame(self.vectors, index=pd.Index(self.texts, name="text"))

    def similarity(self) -> pd.DataFrame:
        """Cosine similarity of every pair of texts (symmetric, 1 on the diagonal)."""
        import numpy as np
        import pandas as pd

        vectors = self.vectors
        matrix = vectors @ vectors.T
        matrix = np.clip((matrix + matrix.T) / 2, -1.0, 1.0)  # exactly symmetric
        return pd.DataFrame(matrix, index=self.texts, columns=self.texts)

    def nearest(self, query: str | int, k: int = 5) -> pd.DataFrame:
        """The ``k`` texts most similar to ``query`` (a text, embedded if new, or an index)."""
        import pandas as pd

        target = self._vector_of(query)
        scores = self.vectors @ target
        order = scores.argsort()[::-1][:k]
        return pd.DataFrame(
            {"text": [self.texts[i] for i in order], "similarity": scores[order]},
            index=pd.RangeIndex(1, len(order) + 1, name="rank"),
        )

    def _vector_of(self, query: str | int) -> npt.NDArray[np.float64]:
        vectors = self.vectors
        if isinstance(query, int) or query in self.texts:
            index = query if isinstance(query, int) else self.texts.index(query)
            row: npt.NDArray[np.float64] = vectors[index]
            return row
        # A new text: one more call (and row), with the same model and dimensions.
        from .embedding import embed
        from .session import get_session

        record = self.response.record
        dimensions = json.loads(record.params or "{}").get("dimensions")
        answer = embed(
            get_session(),
            [query],
            model=record.model,
            provider=record.provider,
            dimensions=dimensions,
            experiment=record.experiment,
        )
        row = answer.vectors[0]
        return row

    @property
    def footer(self) -> str:
        extra = [f"{len(self.texts)} texts × {self.response.dimensions} dims"]
        return footer(self.response, extra=extra)

    def heatmap(self, ax: Axes | None = None) -> Axes:
        """Draw the similarity matrix; returns the Axes.

        Rows carry the texts in full (wrapped, numbered), columns their numbers: rotated
        texts on both axes cut them at ~20 characters and left half the figure empty.
        The figure grows with the number of texts, so its lettering stays at ~10 px."""
        n = len(self.texts)
        if ax is None:
            from matplotlib.figure import Figure

            # A bare Figure needs no pyplot or GUI backend: safe in kernels and tests.
            cell = 0.6 if n <= 12 else max(0.2, 7.0 / n)  # inches per text
            side = min(max(2.0, cell * n), 9.0)
            figure = Figure(figsize=(side + 4.6, side + 0.9), dpi=100, layout="constrained")
            ax = figure.add_subplot()
        matrix = self.similarity().to_numpy()
        image = ax.imshow(matrix, vmin=min(0.0, float(matrix.min())), vmax=1.0, cmap="viridis")
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        if n <= 40:  # beyond that, labels overlap into a black smear
            ax.set_xticks(range(n), [str(i + 1) for i in range(n)], fontsize=10)
            ax.set_yticks(range(n), [_wrapped_label(i, t) for i, t in enumerate(self.texts)],
                          fontsize=10 if n <= 12 else 8)
            ax.xaxis.tick_top()
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    value = matrix[i, j]
                    color = "black" if value > 0.6 else "white"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9,
                            color=color)
        ax.set_title("cosine similarity", fontsize=11)
        return ax

    def png(self) -> bytes:
        """The heatmap as PNG bytes."""
        figure: Any = self.heatmap().figure
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        encoded = base64.b64encode(self.png()).decode("ascii")
        page = (
            f'<img src="data:image/png;base64,{encoded}" alt="cosine similarity heatmap"/>'
            f"<div><sub>{money_html(self.footer)}</sub></div>"
        )
        data = {"text/html": page, "text/plain": repr(self)}
        extra = {"texts": len(self.texts), "dimensions": self.response.dimensions}
        return data, _metadata(self.response, **extra)

    def __repr__(self) -> str:
        table = self.similarity().round(2)
        table.index = table.columns = [shorten(t, 24) for t in self.texts]
        # Small matrices in full; pandas' own elision for the rest.
        text = table.to_string() if len(self.texts) <= 12 else str(table)
        return f"{text}\n\n{self.footer}"


def _wrapped_label(index: int, text: str, width: int = 36, lines: int = 3) -> str:
    # Numbered like the columns; at most three lines of the text, then an ellipsis.
    wrapped = textwrap.wrap(" ".join(text.split()), width) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], shorten(" ".join(wrapped[lines - 1:]), width)]
    return f"{index + 1}  " + "\n    ".join(wrapped)


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
