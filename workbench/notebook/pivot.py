"""The prompt x knobs pivot: one row per prompt (its template variables), one column per
knob combination (``temperature=0.7 · seed=1``).

From stored runs (:func:`knob_columns`, :func:`row_labels`): which knobs vary, the order
of a knob's values (numbers by value, "not set" last); ``wb.compare``, the plots and the
score figures group and label runs through these, so a column of one is a group of the
others. A sweep's own pivot, from its plan, is :func:`workbench.sweeps.sidebyside.side_by_side`.
"""

from __future__ import annotations

import json
import math
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from workbench.core.selection import runs_frame
from workbench.sweeps.grid import knob_label
from workbench.sweeps.sidebyside import NOT_SET
from workbench.sweeps.sidebyside import column_label as knobs_label

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["KNOB_COLUMNS", "NOT_SET", "runs_of", "column", "groups",
           "sort_key", "varying", "row_labels", "column_label", "unique_labels", "knob_columns",
           "missing"]

KNOB_COLUMNS: tuple[str, ...] = ("model", "system", "temperature", "top_p", "seed", "max_tokens",
                          "reasoning_effort", "api", "sample_index")
"""The columns ``by`` defaults to: those of these that take more than one value."""



def runs_of(data: Any, what: str = "wb.plots") -> pd.DataFrame:
    """The runs ``data`` names (a runs DataFrame, a Sweep, an experiment name, run ids:
    :class:`~workbench.core.selection.RunsSelection`); names are read from the session's
    store, opened only for them."""
    from workbench.calls.session import get_session  # looked up at call time: the tests patch it

    return runs_frame(data, lambda: get_session().store, what)


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """The column ``name``, or a KeyError with the closest name (a misspelt knob)."""
    if name not in df.columns:
        close = get_close_matches(name, [str(c) for c in df.columns], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"no column {name!r} in the runs{hint}")
    return df[name]


def groups(df: pd.DataFrame, name: str) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """Each row's group number and the groups' values: numbers in numeric order, then the
    runs where the knob was not sent, as ``NOT_SET`` (NaN equals nothing, not even NaN)."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    values = column(df, name)
    order = sorted(values.dropna().unique(), key=sort_key)
    codes = values.map({value: i for i, value in enumerate(order)})
    # numpy numbers become Python's: labels then show 7, not the JSON string "7".
    groups = [value.item() if hasattr(value, "item") else value for value in order]
    if values.isna().any():
        codes = codes.fillna(len(order))
        groups.append(NOT_SET)
    return codes.to_numpy(dtype=np.int64), groups


def sort_key(value: Any) -> tuple[int, float, str]:
    # Numbers, and text that reads as one (from JSON columns), by value: 10 after 9.
    if not isinstance(value, bool):
        try:
            return (0, float(value), str(value))
        except (TypeError, ValueError):
            pass
    return (1, 0.0, str(value))


def varying(df: pd.DataFrame) -> list[str]:
    return [k for k in KNOB_COLUMNS if k in df and df[k].astype(str).nunique(dropna=False) > 1]


def row_labels(df: pd.DataFrame) -> tuple[list[str], str]:
    """Each run's row label and what the labels are: the template's variables
    (``topic=cats``) where they tell the prompts apart, else the prompt text."""
    texts = [
        p if isinstance(p, str) else m if isinstance(m, str) else ""  # messages: no prompt
        for p, m in zip(values_of(df, "prompt"), values_of(df, "messages"), strict=True)
    ]
    names = [variables_label(v) for v in values_of(df, "variables")]
    pairs = set(zip(texts, names, strict=True))
    if names and all(names) and len(pairs) == len(set(names)) == len(set(texts)):
        return [str(name) for name in names], "variables"
    return texts, "prompt"


def values_of(df: pd.DataFrame, column: str) -> list[Any]:
    return df[column].tolist() if column in df else [None] * len(df)


def variables_label(text: Any) -> str | None:
    variables = json.loads(text) if isinstance(text, str) and text else None
    return knob_label(variables) if isinstance(variables, dict) and variables else None


def column_label(knobs: list[str], key: tuple[Any, ...]) -> str:
    # The sweep table's own labelling (one function), so a sweep's runs get the same
    # columns here as in Sweep.table(); NOT_SET is a group here, None there.
    values = (None if v is NOT_SET else v for v in key)
    return knobs_label(dict(zip(knobs, values, strict=True))) or "output"


def unique_labels(labels: list[str]) -> list[str]:
    # Labels shorten long values (a system prompt): two may read alike but stay two columns.
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def missing(value: Any) -> bool:
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def knob_columns(
    df: pd.DataFrame, knobs: list[str]
) -> tuple[list[tuple[int, ...]], list[tuple[Any, ...]], list[str]]:
    """Each run's column (a combination of the knobs' group numbers), and per column in
    order its knob values and its label. Columns sort as each knob's groups do."""
    found = [groups(df, name) for name in knobs]
    codes: list[tuple[int, ...]] = (
        list(zip(*(c for c, _ in found), strict=True)) if knobs else [()] * len(df)
    )
    order = sorted(set(codes))
    keys = [tuple(values[i] for (_, values), i in zip(found, code, strict=True))
            for code in order]
    return codes, keys, unique_labels([column_label(knobs, key) for key in keys])
