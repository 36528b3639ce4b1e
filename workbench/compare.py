"""Outputs side by side (``wb.compare``): one row per prompt, one column per knob combination,
with the words that differ from a baseline column marked, and each cell's cost in small print.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher, get_close_matches
from typing import TYPE_CHECKING, Any

from .display import format_cost, shorten
from .finish import finish_note
from .grid import knob_label
from .money import NO_MATHS_CLASS
from .scoring.live import compact_row

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["compare", "Comparison", "Cell", "KNOBS"]

KNOBS: tuple[str, ...] = ("model", "system", "temperature", "top_p", "seed", "max_tokens",
                          "reasoning_effort", "sample_index")
"""The columns ``by`` defaults to: those of these that take more than one value."""

NOT_SET = "not set"  # the group of the runs where a knob was not sent (a null in the table)
FOLD_CHARS = 500  # longer outputs are folded into <details>, all of their text kept
_FOLD_LINES = 10
_WORDS = re.compile(r"\w+|\s+|[^\w\s]+")  # words, spaces and punctuation each a token

SIMILAR_ENOUGH = 0.4  # below this share of shared text, a diff is word soup: shown plainly
SHOWN_SAMPLES = 3  # samples shown open in a cell; the rest are folded, and counted

# Colours only from JupyterLab's variables, so both themes read well; inserted and deleted
# text are tinted (not recoloured) and kept apart by a margin, so "the" + "twilight's"
# never reads as "thetwilight's". Left-aligned: JupyterLab right-aligns table cells.
_STYLE = """<style>
.wb-scroll {overflow-x: auto; max-width: 100%}
table.wb-compare {border-collapse: collapse; table-layout: auto}
table.wb-compare td, table.wb-compare th {vertical-align: top; text-align: left !important;
  min-width: 14em; max-width: 36em; padding: .4em .6em;
  border: 1px solid var(--jp-border-color2); color: var(--jp-content-font-color1)}
table.wb-compare thead th {background: var(--jp-layout-color2); white-space: nowrap}
table.wb-compare tbody th {background: var(--jp-layout-color1); font-weight: normal;
  position: sticky; left: 0; z-index: 1}
.wb-compare .wb-text {white-space: pre-wrap; line-height: 1.45}
.wb-compare ins {text-decoration: none; border-radius: 2px; padding: 0 .15em; margin: 0 .1em;
  background: color-mix(in srgb, var(--jp-success-color1) 28%, transparent)}
.wb-compare del {text-decoration: line-through; border-radius: 2px; padding: 0 .15em;
  margin: 0 .1em; color: var(--jp-content-font-color2);
  background: color-mix(in srgb, var(--jp-error-color1) 22%, transparent)}
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
        head = "".join(
            f"<th>{html.escape(c)}{' <small>(baseline)</small>' if c == self.baseline else ''}"
            "</th>"
            for c in columns
        )
        body = []
        for row in self.df.index:
            base = self.cells.get((row, self.baseline))
            cells = "".join(
                self._cell_html(
                    self.cells.get((row, c)), None if c == self.baseline else base, row, c
                )
                for c in columns
            )
            body.append(f"<tr><th>{self._fold(html.escape(row), row)}</th>{cells}</tr>")
        corner = html.escape(str(self.df.index.name or ""))
        note = "" if self.diff else '<div class="wb-label">diff off</div>'
        return (
            f'{_STYLE}<div class="wb-scroll {NO_MATHS_CLASS}"><table class="wb-compare">'
            f"<thead><tr><th>{corner}</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>{note}"
        )

    def _samples(self, row: str, column: str) -> list[Cell]:
        if self.samples is not None and (row, column) in self.samples:
            return self.samples[(row, column)]
        cell = self.cells.get((row, column))
        return [] if cell is None else [cell]

    def _cell_html(self, cell: Cell | None, base: Cell | None, row: str = "",
                   column: str = "") -> str:
        if cell is None:
            return "<td>—</td>"
        samples = self._samples(row, column) or [cell]
        if len(samples) == 1:
            return f"<td>{self._sample_html(samples[0], base)}</td>"
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
        return f"<td>{''.join(opened)}{more}</td>"

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
                    marked = _diff(compared, cell.output)
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

    ``data`` is the runs DataFrame or a Sweep. ``by`` defaults to the knobs (:data:`KNOBS`)
    that vary. ``baseline`` (default: the first column) names the column the others are
    diffed against: its label, a value (a tuple with several knobs), or a mapping such as
    ``{"temperature": 0}``. A cell shows each sample (request and sample index) that
    landed in it, its latest successful run (else its latest error); beyond
    :data:`SHOWN_SAMPLES` they are folded under a count. ``diff=False`` shows the outputs
    without marking the words that differ; outputs too different from the baseline to
    diff usefully are shown plainly, and say so.
    """
    df = _frame(data)
    if "kind" in df:
        df = df[df["kind"].eq("chat")]
    knobs = _varying(df) if by is None else [by] if isinstance(by, str) else list(by)
    groups = [_groups(df, name) for name in knobs]
    prompts, row_name = _rows(df)
    # A column is a combination of group numbers, so columns sort as each knob's groups do.
    codes = list(zip(*(c for c, _ in groups), strict=True)) if knobs else [()] * len(df)
    order = sorted(set(codes))
    keys = [tuple(values[i] for (_, values), i in zip(groups, code, strict=True)) for code in order]
    columns = _unique([_column_label(knobs, key) for key in keys])
    column_of = dict(zip(order, columns, strict=True))
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


# ---------------------------------------------------------------------- runs by knob
# (shared with workbench.plots, whose groups are ordered and labelled the same way)


def _frame(data: Any) -> pd.DataFrame:
    """The runs DataFrame itself, or the ``.df`` of a Sweep (or anything holding one)."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else getattr(data, "df", None)
    if not isinstance(frame, pd.DataFrame):
        kind = type(data).__name__
        raise TypeError(f"expected the runs DataFrame (wb.runs()) or a Sweep, not {kind}")
    return frame


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df.columns:
        close = get_close_matches(name, [str(c) for c in df.columns], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"no column {name!r} in the runs{hint}")
    return df[name]


def _groups(df: pd.DataFrame, column: str) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """Each row's group number and the groups' values: numbers in numeric order, then the
    runs where the knob was not sent, as ``NOT_SET`` (NaN equals nothing, not even NaN)."""
    import numpy as np

    values = _column(df, column)
    order = sorted(values.dropna().unique(), key=_sort_key)
    codes = values.map({value: i for i, value in enumerate(order)})
    # numpy numbers become Python's: labels then show 7, not the JSON string "7".
    groups = [value.item() if hasattr(value, "item") else value for value in order]
    if values.isna().any():
        codes = codes.fillna(len(order))
        groups.append(NOT_SET)
    return codes.to_numpy(dtype=np.int64), groups


def _sort_key(value: Any) -> tuple[int, float, str]:
    # Numbers, and text that reads as one (from JSON columns), by value: 10 after 9.
    if not isinstance(value, bool):
        try:
            return (0, float(value), str(value))
        except (TypeError, ValueError):
            pass
    return (1, 0.0, str(value))


def _varying(df: pd.DataFrame) -> list[str]:
    return [k for k in KNOBS if k in df and df[k].astype(str).nunique(dropna=False) > 1]


def _rows(df: pd.DataFrame) -> tuple[list[str], str]:
    """Each run's row label and what the labels are: the template's variables
    (``topic=cats``) where they tell the prompts apart, else the prompt text."""
    texts = [
        p if isinstance(p, str) else m if isinstance(m, str) else ""  # messages: no prompt
        for p, m in zip(_values(df, "prompt"), _values(df, "messages"), strict=True)
    ]
    names = [_variables(v) for v in _values(df, "variables")]
    pairs = set(zip(texts, names, strict=True))
    if names and all(names) and len(pairs) == len(set(names)) == len(set(texts)):
        return [str(name) for name in names], "variables"
    return texts, "prompt"


def _values(df: pd.DataFrame, column: str) -> list[Any]:
    return df[column].tolist() if column in df else [None] * len(df)


def _variables(text: Any) -> str | None:
    variables = json.loads(text) if isinstance(text, str) and text else None
    return knob_label(variables) if isinstance(variables, dict) and variables else None


def _column_label(knobs: list[str], key: tuple[Any, ...]) -> str:
    # The table holds every temperature as a float: show 0 as a person types it (and as
    # Sweep.table() does), not as 0.0.
    values = (int(v) if isinstance(v, float) and v.is_integer() else v for v in key)
    return knob_label(dict(zip(knobs, values, strict=True))) or "output"


def _unique(labels: list[str]) -> list[str]:
    # Labels shorten long values (a system prompt): two may read alike but stay two columns.
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


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
    if _missing(wanted):
        return value is NOT_SET
    return bool(value == wanted) or (_sort_key(value)[0] == 0 and _sort_key(value)[:2] ==
                                     _sort_key(wanted)[:2])


def _cell(run: Mapping[str, Any], runs: int) -> Cell:
    def known(name: str) -> Any:
        value = run.get(name)
        return None if _missing(value) else value

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
    import pandas as pd

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


def similarity(base: str, text: str) -> float:
    """The share of words the two texts have in common (0 to 1, by difflib's ratio)."""
    # Spaces shared by any two texts do not count.
    old, new = ([w for w in _WORDS.findall(t) if not w.isspace()] for t in (base, text))
    return SequenceMatcher(None, old, new, autojunk=False).ratio()


def _word_diff(base: str, text: str) -> list[tuple[int, str]]:
    """diff-match-patch's diff of the two texts word by word (each word, space and mark
    encoded as one character, as its line mode does with lines), with its semantic
    clean-up: changes grow to whole phrases instead of scattered shared words."""
    from diff_match_patch import diff_match_patch  # type: ignore[import-untyped]

    codes: dict[str, str] = {}
    words: list[str] = []

    def encode(value: str) -> str:
        out = []
        for word in _WORDS.findall(value):
            if word not in codes:
                codes[word] = chr(0xE000 + len(words)) if len(words) < 6400 else chr(
                    0x10000 + len(words))
                words.append(word)
            out.append(codes[word])
        return "".join(out)

    engine = diff_match_patch()
    engine.Diff_Timeout = 1.0
    diffs = engine.diff_main(encode(base), encode(text), False)
    engine.diff_cleanupSemantic(diffs)
    decode = {code: word for word, code in codes.items()}
    return [(op, "".join(decode[c] for c in chunk)) for op, chunk in diffs]


def _diff(base: str, text: str) -> str:
    """``text`` as HTML, with words not in ``base`` in <ins> and words of ``base`` missing
    from it in <del>; changes of spacing alone are not marked."""
    marked = []
    for op, chunk in _word_diff(base, text):
        if op == 0 or not chunk.strip():
            if op != -1:  # equal text, or spacing added: shown as it is
                marked.append(html.escape(chunk))
        elif op == -1:
            marked.append(f"<del>{html.escape(chunk.strip())}</del>")
        else:
            lead = chunk[: len(chunk) - len(chunk.lstrip())]
            trail = chunk[len(chunk.rstrip()):]
            marked.append(f"{html.escape(lead)}<ins>{html.escape(chunk.strip())}</ins>"
                          f"{html.escape(trail)}")
    return "".join(marked)
