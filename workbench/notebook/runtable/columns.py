"""The order a person reads the experiment table in: when, what, the answer, what it cost.

``record.COLUMNS`` is the table's storage order (SQL, exports, the store's readers rely on
it); only the frame handed to people is reordered, here, in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["READ_FIRST", "READ_LAST", "VIEW_FIRST", "reading_order"]

READ_FIRST: tuple[str, ...] = (
    "created_at", "experiment", "kind", "model",
    "temperature", "top_p", "seed", "max_tokens",  # the knobs
    "system", "prompt", "output",
    "prompt_tokens", "completion_tokens", "cost_usd", "latency_s", "status", "error",
)
# Ids and JSON: needed to join and to replay, rarely read.
READ_LAST: tuple[str, ...] = (
    "run_id", "sweep_id", "request_hash", "sample_index",
    "params", "messages", "template", "variables", "tool_calls",
)


# What wb.runs() shows first in a notebook (the frame keeps READ_FIRST's order): the
# answer in view at 1,400 px without scrolling sideways, then what it cost.
VIEW_FIRST: tuple[str, ...] = (
    "created_at", "model", "prompt", "output", "cost_usd", "latency_s", "status", "error",
)


def reading_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the columns people read first at the left, ids and JSON at the right;
    every other column (including ones added by later migrations) in between, in table
    order. Same rows, same dtypes."""
    first = [c for c in READ_FIRST if c in df.columns]
    last = [c for c in READ_LAST if c in df.columns]
    placed = set(first) | set(last)
    middle = [c for c in df.columns if c not in placed]
    return df[first + middle + last]
