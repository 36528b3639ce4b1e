"""Token log-probabilities: kept compactly in the table, shown as a token-confidence view.

A row's ``logprobs`` column is JSON ``[[token, logprob, [[alternative, logprob], ...]],
...]`` (the API's ids and bytes left out). :func:`logprobs_view` shades each token by its
probability, with the alternatives on hover and listed below.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import InvalidInputError
from workbench.core.record import RunRecord

__all__ = ["TokenLogprob", "compact_logprobs", "read_logprobs", "LogprobsView", "logprobs_view"]

_DIGITS = 5  # log-probabilities to 1e-5: plenty to shade or rank, a third of the text


def _rounded(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # JSON has no -Infinity: an impossible token (probability 0) is kept as null.
    return round(float(value), _DIGITS) if math.isfinite(value) else None


def compact_logprobs(content: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The ``logprobs`` column for ``choices[0].logprobs.content``; None when absent."""
    if content is None:
        return None
    rows = [
        [
            str(entry.get("token", "")),
            _rounded(entry.get("logprob")),
            [
                [str(alt.get("token", "")), _rounded(alt.get("logprob"))]
                for alt in entry.get("top_logprobs") or []
                if isinstance(alt, Mapping)
            ],
        ]
        for entry in content
    ]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class TokenLogprob:
    """One token of an answer, its log-probability and the likeliest alternatives."""

    token: str
    logprob: float | None
    alternatives: tuple[tuple[str, float | None], ...] = ()

    @property
    def probability(self) -> float:
        return 0.0 if self.logprob is None else math.exp(self.logprob)


def read_logprobs(column: str | None) -> list[TokenLogprob]:
    """The tokens of a ``logprobs`` column (empty when the run has none)."""
    if not column:
        return []
    return [
        TokenLogprob(token, logprob, tuple((alt, lp) for alt, lp in alternatives))
        for token, logprob, alternatives in json.loads(column)
    ]


def _percent(logprob: float | None) -> str:
    return f"{0.0 if logprob is None else math.exp(logprob):.0%}"


class LogprobsView:
    """A run's answer, token by token, each shaded by how unlikely it was.

    Colours are JupyterLab's CSS variables, so light and dark themes both read well.
    """

    def __init__(self, tokens: Sequence[TokenLogprob], run_id: str | None = None) -> None:
        self.tokens = list(tokens)
        self.run_id = run_id

    def _title(self, token: TokenLogprob) -> str:
        others = ", ".join(f"{alt!r} {_percent(lp)}" for alt, lp in token.alternatives)
        return f"{token.token!r} {_percent(token.logprob)}" + (
            f" · alternatives: {others}" if others else ""
        )

    def _span(self, token: TokenLogprob) -> str:
        # Sure tokens stay plain; the less likely a token, the stronger its warn shade.
        shade = round((1 - token.probability) * 70)
        style = (
            f"background: color-mix(in srgb, var(--jp-warn-color2) {shade}%, transparent);"
            "border-radius: 2px;"
        )
        return (
            f'<span title="{html.escape(self._title(token))}" style="{style}">'
            f"{html.escape(token.token)}</span>"
        )

    def _rows(self) -> str:
        cells = []
        for i, token in enumerate(self.tokens):
            others = ", ".join(
                f"<code>{html.escape(repr(alt))}</code> {_percent(lp)}"
                for alt, lp in token.alternatives
            )
            cells.append(
                f"<tr><td style='text-align:right'>{i}</td>"
                f"<td style='text-align:left'><code>{html.escape(repr(token.token))}</code></td>"
                f"<td style='text-align:right'>{_percent(token.logprob)}</td>"
                f"<td style='text-align:left'>{others}</td></tr>"
            )
        return "".join(cells)

    def _repr_html_(self) -> str:
        text = "".join(self._span(token) for token in self.tokens)
        mean = (
            sum(t.probability for t in self.tokens) / len(self.tokens) if self.tokens else 0.0
        )
        about = f"{len(self.tokens)} tokens · mean probability {mean:.0%}"
        if self.run_id:
            about += f" · run {html.escape(self.run_id)}"
        return (
            "<div style='color: var(--jp-ui-font-color1); "
            "font-family: var(--jp-content-font-family)'>"
            "<div style='white-space: pre-wrap; line-height: 1.8; "
            "font-family: var(--jp-code-font-family); border: 1px solid "
            "var(--jp-border-color2); background: var(--jp-layout-color1); padding: 6px'>"
            f"{text}</div>"
            f"<div style='color: var(--jp-ui-font-color2); font-size: var(--jp-ui-font-size0)'>"
            f"{about} · shaded by how unlikely each token was; hover for alternatives</div>"
            "<details><summary>every token</summary>"
            "<div style='max-height: 24em; overflow: auto'><table>"
            "<tr><th>#</th><th>token</th><th>probability</th><th>alternatives</th></tr>"
            f"{self._rows()}</table></div></details></div>"
        )

    def __repr__(self) -> str:
        return " ".join(f"{t.token!r}:{_percent(t.logprob)}" for t in self.tokens)


def _record_of(
    run: Any, find_run: Callable[[str], RunRecord | None] | None
) -> tuple[str | None, str | None]:
    """(logprobs column, run id) of a ChatResponse, %%chat result, RunRecord, row or id
    (looked up with ``find_run``, the store's)."""
    for candidate in (run, getattr(run, "record", None), getattr(run, "response", None)):
        if isinstance(candidate, RunRecord):
            return candidate.logprobs, candidate.run_id
        inner = getattr(candidate, "record", None)
        if isinstance(inner, RunRecord):
            return inner.logprobs, inner.run_id
    if isinstance(run, str) and find_run is not None:
        record = find_run(run)
        if record is None:
            raise InvalidInputError(f"No run with run_id {run!r} in the table")
        return record.logprobs, record.run_id
    if isinstance(run, Mapping) or hasattr(run, "index"):  # a dict or a pandas row
        value = run.get("logprobs")
        run_id = run.get("run_id")
        return (value if isinstance(value, str) else None), (
            str(run_id) if run_id is not None else None
        )
    raise InvalidInputError(
        "logprobs needs a run: a ChatResponse, a %%chat result, a row of wb.runs() or a "
        f"run_id, got {type(run).__name__}"
    )


def logprobs_view(
    run: Any, find_run: Callable[[str], RunRecord | None] | None = None
) -> LogprobsView:
    """The token-confidence view of one run asked with ``logprobs=True`` (``--logprobs N``);
    a run id is looked up with ``find_run`` (the store's ``find_run``)."""
    column, run_id = _record_of(run, find_run)
    if not column:
        who = f"Run {run_id}" if run_id else "This run"
        raise InvalidInputError(
            f"{who} has no logprobs: ask for them with logprobs=True, top_logprobs=N in "
            "wb.chat, or --logprobs N in %%chat"
        )
    return LogprobsView(read_logprobs(column), run_id)
