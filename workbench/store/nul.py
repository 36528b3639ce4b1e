"""The one character PostgreSQL's ``text`` cannot hold: NUL (``\\x00``).

PostgreSQL refuses a NUL in any text value ("invalid byte sequence for encoding UTF8:
0x00"); SQLite stores it. So on PostgreSQL a request whose text holds one is refused
before it is sent (else it is paid, refused by the table, and paid again on every re-run),
an answer holding one (already paid) is kept with each NUL shown as U+2400 (␀), and a
copy skips the rows that hold one and names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from workbench.core.errors import InvalidInputError
from workbench.core.record import COLUMNS, RunRecord

__all__ = [
    "NUL",
    "SHOWN_NUL",
    "ANSWER_COLUMNS",
    "nul_columns",
    "refuse_nul_requests",
    "answer_without_nul",
    "split_nul_rows",
]

NUL = "\x00"
SHOWN_NUL = "\u2400"  # SYMBOL FOR NULL: visible, and not a character PostgreSQL refuses
# What the server sends back: known only after the call is paid, so never refused.
ANSWER_COLUMNS = frozenset(
    {
        "output", "tool_calls", "refusal", "error", "notes", "finish_reason",
        "response_model", "system_fingerprint", "logprobs", "service_tier",
    }
)


def nul_columns(names: Sequence[str], row: Sequence[Any]) -> list[str]:
    """The columns of ``row`` whose text holds a NUL."""
    return [
        name
        for name, value in zip(names, row, strict=False)
        if isinstance(value, str) and NUL in value
    ]


def refuse_nul_requests(records: Iterable[RunRecord], store_label: str) -> None:
    """Raise one line naming the column if a request's text holds a NUL (before sending)."""
    for record in records:
        for name in COLUMNS:
            value = getattr(record, name, None)
            if name not in ANSWER_COLUMNS and isinstance(value, str) and NUL in value:
                raise InvalidInputError(
                    f"the {name} of this request holds a NUL character (\\x00), which the"
                    f" PostgreSQL store {store_label} cannot keep: remove it (e.g."
                    " text.replace('\\x00', '')) before sending; nothing was sent"
                )


def answer_without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` (``record.COLUMNS`` order) with each NUL of an answer column shown as ␀."""
    if not any(isinstance(value, str) and NUL in value for value in row):
        return row
    return tuple(
        value.replace(NUL, SHOWN_NUL)
        if name in ANSWER_COLUMNS and isinstance(value, str)
        else value
        for name, value in zip(COLUMNS, row, strict=True)
    )


def split_nul_rows(
    names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> tuple[list[tuple[Any, ...]], list[tuple[tuple[Any, ...], list[str]]]]:
    """(rows without a NUL, [(row, its NUL columns)])."""
    kept: list[tuple[Any, ...]] = []
    refused: list[tuple[tuple[Any, ...], list[str]]] = []
    for row in rows:
        columns = nul_columns(names, row)
        if columns:
            refused.append((row, columns))
        else:
            kept.append(row)
    return kept, refused
