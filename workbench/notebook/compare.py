"""Outputs side by side (``wb.compare``): one row per prompt, one column per knob combination,
with the words that differ from a baseline column marked, and each cell's cost in small print.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from workbench.core.finish import finish_note
from workbench.core.htmltable import TableRow, html_table
from workbench.core.money import NO_MATHS_CLASS
from workbench.core.worddiff import diff_html, similarity
from workbench.notebook.display import format_cost, shorten
from workbench.notebook.pivot import (
    KNOB_COLUMNS,
    NOT_SET,
    knob_columns,
    missing,
    row_labels,
    runs_of,
    sort_key,
    varying,
)
from workbench.scoring.live import compact_row

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compare", "Comparison", "Cell", "KNOBS"]

KNOBS = KNOB_COLUMNS  # its name here before notebook.pivot held it

FOLD_CHARS = 500  # longer outputs are folded into <details>, all of their text kept
_FOLD_LINES = 10

SIMILAR_ENOUGH = 0.4  # below this share of shared text, a diff is word soup: shown plainly
SHOWN_SAMPLES = 3  # samples shown open in a cell; the rest are folded, and counted

# Colours only from JupyterLab's variables, so both themes read well; inserted and deleted
# text carry their own tints (core.worddiff: inline, so a reopened notebook keeps them) and
# a replacement's two phrases are kept apart by a space, so "the" + "twilight's" never
# reads as "thetwilight's". Left-aligned: JupyterLab right-aligns table cells.
# Five columns fit a 1,400 px window (cells 10em at least, headers wrap); wider tables
# scroll inside a box of at most 42em, so the scrollbar is near the top, with the prompts
# and the header in view (sticky; separate borders, which sticky cells keep).
_STYLE = """<style>
.wb-scroll {overflow: auto; max-width: 100%; max-height: 42em}
table.wb-compare {border-collapse: separate; border-spacing: 0; table-layout: auto;
  margin: 0 !important}
table.wb-compare td, table.wb-compare th {vertical-align: top; text-align: left !important;
  min-width: 10em; max-width: 30em; padding: .4em .6em; overflow-wrap: anywhere;
  border-right: 1px solid var(--jp-border-color2);
  border-bottom: 1px solid var(--jp-border-color2); color: var(--jp-content-font-color1)}
table.wb-compare thead th {background: var(--jp-layout-color2); white-space: normal;
  position: sticky; top: 0; z-index: 2}
table.wb-compare thead th:first-child {left: 0; z-index: 3}
table.wb-compare tbody th {background: var(--jp-layout-color1); font-weight: normal;
  min-width: 8em; max-width: 18em; position: sticky; left: 0; z-index: 1}
.wb-compare .wb-text {white-space: pre-wrap; line-height: 1.45}
.wb-compare .wb-meta {font-size: 80%; color: var(--jp-ui-font-color2); margin-top: .3em}
.wb-compare .wb-error {color: var(--jp-error-color1)}
.wb-compare .wb-refusal, .wb-compare .wb-ended {color: var(--jp-warn-color0)}
.wb-compare .wb-refusal {font-style: italic}
.wb-compare .wb-sample + .wb-sample {border-top: 1px dashed var(--jp-border-color2);
  margin-top: .5em; padding-top: .5em}
.wb-compare .wb-label {font-size: 80%; color: var(--jp-ui-font-color2)}
.wb-compare summary {cursor: pointer; color: var(--jp-ui-font-color1)}
</style>"""


@dataclass(frozen=True)
class Cell:
    """What one cell shows: the run's output (None: it failed) and its numbers."""

    output: str | None
    error: str | None
    prompt_tokens: Any
    completion_tokens: Any
    cost_usd: Any
    latency_s: Any
    cache_hit: bool
    runs: int  # distinct requests that landed in this cell; the latest ok one is shown
    refusal: str | None = None  # the model declined (message.refusal): not an empty answer
    scores: str = ""  # its score: columns, compact ("contains ✓ · judge 4")
    finish_reason: str | None = None  # "length": cut at max_tokens; "content_filter"


@dataclass(frozen=True, eq=False)  # a DataFrame has no single truth value to compare by
class Comparison:
    """A side-by-side table of outputs; shows as HTML in a notebook, ``.df`` as data."""

    df: pd.DataFrame  # outputs: index = prompts (or their variables), columns = knob labels
    baseline: str  # the column the others are diffed against
    cells: dict[tuple[str, str], Cell]  # by (row, column) of df: its latest sample
    fold_chars: int = FOLD_CHARS
    diff: bool = True  # mark the words that differ from the baseline
    samples: dict[tuple[str, str], list[Cell]] | None = None  # every sample of each cell

    def __repr__(self) -> str:
        return f"Comparison(baseline={self.baseline!r})\n{self.df!r}"

    def _repr_html_(self) -> str:
        columns = [str(c) for c in self.df.columns]
        head = [
            f"{html.escape(c)}{' <small>(baseline)</small>' if c == self.baseline else ''}"
            for c in columns
        ]
        rows: list[TableRow] = []
        for row in self.df.index:
            base = self.cells.get((row, self.baseline))
            cells = [
                self._cell_html(
                    self.cells.get((row, c)), None if c == self.baseline else base, row, c
                )
                for c in columns
            ]
            rows.append(([self._fold(html.escape(row), row)], cells))
        corner = html.escape(str(self.df.index.name or ""))
        note = "" if self.diff else '<div class="wb-label">diff off</div>'
        table = html_table([corner, *head], rows, classes="wb-compare")
        return f'{_STYLE}<div class="wb-scroll {NO_MATHS_CLASS}">{table}</div>{note}'

    def _samples(self, row: str, column: str) -> list[Cell]:
        if self.samples is not None and (row, column) in self.samples:
            return self.samples[(row, column)]
        cell = self.cells.get((row, column))
        return [] if cell is None else [cell]

    def _cell_html(self, cell: Cell | None, base: Cell | None, row: str = "",
                   column: str = "") -> str:
        if cell is None:
            return "—"
        samples = self._samples(row, column) or [cell]
        if len(samples) == 1:
            return self._sample_html(samples[0], base)
        shown = [
            f'<div class="wb-sample"><div class="wb-label">sample {i} of {len(samples)}</div>'
            f"{self._sample_html(sample, base)}</div>"
            for i, sample in enumerate(samples, 1)
        ]
        opened, folded = shown[:SHOWN_SAMPLES], shown[SHOWN_SAMPLES:]
        more = (
            f"<details><summary>{len(folded)} more sample{'s' if len(folded) > 1 else ''}"
            f"</summary>{''.join(folded)}</details>" if folded else ""
        )
        return f"{''.join(opened)}{more}"

    def _sample_html(self, cell: Cell, base: Cell | None) -> str:
        plain_note = ""
        if cell.output is None:
            text = f'<div class="wb-error">error: {html.escape(cell.error or "no output")}</div>'
        elif cell.refusal:
            text = f'<div class="wb-refusal">refused: {html.escape(cell.refusal)}</div>'
        else:
            compared = base.output if base is not None and self.diff else None
            marked = html.escape(cell.output)
            if compared is not None and compared != cell.output:
                if similarity(compared, cell.output) >= SIMILAR_ENOUGH:
                    marked = diff_html(compared, cell.output)
                else:
                    plain_note = "too different from the baseline to mark changes"
            text = self._fold(marked, cell.output)
        ended = finish_note(cell.finish_reason, cell.completion_tokens)
        if ended:
            text += f'<div class="wb-ended">⚠ {html.escape(ended)}</div>'
        meta = " · ".join(filter(None, [_meta(cell), plain_note]))
        small = f'<div class="wb-meta">{html.escape(meta)}</div>' if meta else ""
        return f"{text}{small}"

    def _fold(self, marked: str, plain: str) -> str:
        """The text whole, or folded under its opening line when long (never cut)."""
        if len(plain) <= self.fold_chars and plain.count("\n") < _FOLD_LINES:
            return f'<div class="wb-text">{marked}</div>'
        summary = html.escape(shorten(plain, 120))
        return (
            f"<details><summary>{summary} <small>({len(plain):,} characters)</small></summary>"
            f'<div class="wb-text">{marked}</div></details>'
        )


def compare(
    data: Any,
    by: str | Sequence[str] | None = None,
    baseline: Any = None,
    *,
    fold_chars: int = FOLD_CHARS,
    diff: bool = True,
) -> Comparison:
    """Outputs side by side: a row per prompt, a column per combination of the ``by`` knobs.

    ``data`` is the runs: a DataFrame, a Sweep, an experiment name or run ids. ``by``
    defaults to the knobs (:data:`KNOBS`) that vary. ``baseline`` (default: the first
    column) names the column the others are diffed against: its label, a value (a tuple
    with several knobs), or a mapping such as ``{"temperature": 0}``. A cell shows each
    sample (request and sample index) that landed in it, its latest successful run (else
    its latest error); beyond :data:`SHOWN_SAMPLES` they are folded under a count.
    ``diff=False`` shows the outputs without marking the words that differ; outputs too
    different from the baseline to diff usefully are shown plainly, and say so.
    """
    df = runs_of(data, "wb.compare")
    if "kind" in df:
        df = df[df["kind"].eq("chat")]
    knobs = varying(df) if by is None else [by] if isinstance(by, str) else list(by)
    prompts, row_name = row_labels(df)
    codes, keys, columns = knob_columns(df, knobs)
    column_of = dict(zip(sorted(set(codes)), columns, strict=True))
    cells: dict[tuple[str, str], Cell] = {}
    by_sample: dict[tuple[str, str], dict[Any, Cell]] = {}
    for prompt, code, run in zip(prompts, codes, df.to_dict("records"), strict=True):
        place = (prompt, column_of[code])
        samples = by_sample.setdefault(place, {})
        sample = (run.get("request_hash"), run.get("sample_index"))
        cell = _cell(run, len(samples) + (sample not in samples))
        for shown in (cells.get(place), samples.get(sample)):
            if shown is not None and shown.output is not None and cell.output is None:
                cell = replace(shown, runs=cell.runs)  # an earlier success beats a failure
                break
        samples[sample] = cell
        cells[place] = cell  # otherwise the latest run wins its cell
    every = {place: list(found.values()) for place, found in by_sample.items()}
    chosen = columns[_baseline(baseline, knobs, keys, columns)] if columns else ""
    outputs = _outputs(prompts, row_name, columns, cells)
    return Comparison(outputs, chosen, cells, fold_chars, diff, every)


def _baseline(wanted: Any, knobs: list[str], keys: list[tuple[Any, ...]], labels: list[str]) -> int:
    """The column ``wanted`` names: a label, knob values by name (``{"temperature": 0}``,
    or a label read that way: ``temperature=0`` finds ``temperature=0.0``), or the values
    of the ``by`` knobs in order."""
    if wanted is None:
        return 0
    if isinstance(wanted, str) and wanted in labels:
        return labels.index(wanted)
    named: Mapping[str, Any] | None = wanted if isinstance(wanted, Mapping) else None
    if isinstance(wanted, str) and "=" in wanted:
        named = dict(part.partition("=")[::2] for part in wanted.split(" · "))
    if named is not None:
        for name in named:
            if name not in knobs:
                close = get_close_matches(name, knobs, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"baseline names {name!r}{hint}, which is not among by={knobs}")
        picks = [(knobs.index(name), value) for name, value in named.items()]
    else:
        values = tuple(wanted) if isinstance(wanted, (tuple, list)) else (wanted,)
        picks = list(enumerate(values)) if len(values) == len(knobs) else []
    for i, key in enumerate(keys):
        if picks and all(_same(key[at], value) for at, value in picks):
            return i
    raise ValueError(f"no column matches baseline={wanted!r}; the columns are {labels}")


def _same(value: Any, wanted: Any) -> bool:
    if missing(wanted):
        return value is NOT_SET
    return bool(value == wanted) or (sort_key(value)[0] == 0 and sort_key(value)[:2] ==
                                     sort_key(wanted)[:2])


def _cell(run: Mapping[str, Any], runs: int) -> Cell:
    def known(name: str) -> Any:
        value = run.get(name)
        return None if missing(value) else value

    ok = run.get("status", "ok") == "ok"
    return Cell(
        output=(known("output") or "") if ok else None,
        error=None if ok else known("error"),
        prompt_tokens=known("prompt_tokens"),
        completion_tokens=known("completion_tokens"),
        cost_usd=known("cost_usd"),
        latency_s=known("latency_s"),
        cache_hit=bool(known("cache_hit")),
        runs=runs,
        refusal=known("refusal"),
        scores=compact_row(run),
        finish_reason=known("finish_reason"),
    )


def _outputs(
    prompts: list[str], name: str, columns: list[str], cells: Mapping[tuple[str, str], Cell]
) -> pd.DataFrame:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    rows = list(dict.fromkeys(prompts))  # in the order they were first run
    values = [[getattr(cells.get((r, c)), "output", None) for c in columns] for r in rows]
    return pd.DataFrame(
        values, index=pd.Index(rows, name=name), columns=pd.Index(columns, name="knobs"),
        dtype=object,
    )


def _meta(cell: Cell) -> str:
    parts = []
    if cell.prompt_tokens is not None:
        parts.append(f"{cell.prompt_tokens}→{cell.completion_tokens or 0} tokens")
    if cell.cache_hit:
        parts.append("replayed")  # a replay's $0 and 0 s describe the store, not the model
    else:
        if cell.output is not None:  # a failed call is not billed: "cost unknown" misleads
            parts.append(format_cost(cell.cost_usd))
        if cell.latency_s is not None:
            parts.append(f"{cell.latency_s:.2f} s")
    if cell.scores:
        parts.append(cell.scores)
    return " · ".join(parts)
