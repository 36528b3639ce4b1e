"""What the two stores (:mod:`.sqlite`, :mod:`.postgres`) share line for line: the SQL both
run, written once with ``?`` placeholders (the PostgreSQL store turns them into ``%s``),
and the conversions of rows to results (the newest run per identity, prices, vectors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from ..frames import runs_frame
from ..record import COLUMNS
from .columnar import gc_paused

__all__ = [
    "EMBEDDING_DTYPE",
    "FIND_OK_SQL",
    "FIND_RUN_SQL",
    "UPSERT_PRICE_SQL",
    "PRICES_SQL",
    "mean_tokens_query",
    "newest_by_identity",
    "frame_of_rows",
    "price_texts",
    "prices_from_rows",
    "embedding_rows",
    "vector_of",
]

EMBEDDING_DTYPE = "<f4"  # float32, little-endian whatever the machine: files travel

# Quoted: "user" is a reserved word in PostgreSQL (SQLite takes it either way).
COLUMN_LIST = ", ".join(f'"{name}"' for name in COLUMNS)
_IDENTITY = itemgetter(COLUMNS.index("request_hash"), COLUMNS.index("sample_index"))
_RUN_ID = itemgetter(COLUMNS.index("run_id"))

FIND_OK_SQL = (
    f"SELECT {COLUMN_LIST} FROM runs"
    " WHERE request_hash = ? AND sample_index = ? AND status = 'ok'"
    " ORDER BY created_at DESC, run_id DESC LIMIT 1"
)
FIND_RUN_SQL = f"SELECT {COLUMN_LIST} FROM runs WHERE run_id = ?"
UPSERT_PRICE_SQL = (
    "INSERT INTO prices (model, input_per_mtok, output_per_mtok,"
    " cached_input_per_mtok, updated_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok,"
    " output_per_mtok = excluded.output_per_mtok,"
    " cached_input_per_mtok = excluded.cached_input_per_mtok,"
    " updated_at = excluded.updated_at"
)
PRICES_SQL = (
    "SELECT model, input_per_mtok, output_per_mtok, cached_input_per_mtok"
    " FROM prices ORDER BY model"
)


def mean_tokens_query(model: str, experiment: str | None) -> tuple[str, list[Any]]:
    """The query behind ``mean_completion_tokens``: cache hits are left out (they repeat
    an earlier run's numbers and would weight a replayed notebook twice)."""
    sql = (
        "SELECT AVG(completion_tokens) FROM runs WHERE kind = 'chat' AND status = 'ok'"
        " AND cache_hit = 0 AND completion_tokens IS NOT NULL AND model = ?"
    )
    params: list[Any] = [model]
    if experiment is not None:
        sql += " AND experiment = ?"
        params.append(experiment)
    return sql, params


def newest_by_identity(
    rows: Iterable[Sequence[Any]], wanted: set[tuple[str, int]]
) -> dict[tuple[str, int], Sequence[Any]]:
    """The newest row of each wanted (request_hash, sample_index), from rows oldest first."""
    newest: dict[tuple[str, int], Sequence[Any]] = {}
    for row in rows:  # oldest first, so the newest row of an identity wins
        key = _IDENTITY(row)
        if key in wanted:
            newest[key] = row
    return newest


def frame_of_rows(rows_of: Callable[[], list[Any]], newest_first: bool) -> pd.DataFrame:
    """The row-by-row reader both stores fall back to: ``rows_of()`` runs the query (its
    rows newest first under a limit); the frame is ordered by run_id, oldest first."""
    with gc_paused():
        rows = rows_of()
        if newest_first:
            rows.reverse()
        else:
            # Table order is append order, nearly run_id order already; sorting here
            # costs one pass where ORDER BY in SQL walked the primary-key index.
            rows.sort(key=_RUN_ID)
        columns = zip(*rows, strict=True) if rows else ((),) * len(COLUMNS)
        return runs_frame(dict(zip(COLUMNS, columns, strict=True)))


def price_texts(prices: Sequence[Decimal | None]) -> list[str | None]:
    """Prices as stored (exact decimal text), refusing anything but non-negative Decimals."""
    for price in prices:
        if price is not None and (not isinstance(price, Decimal) or not price >= 0):
            raise ValueError(f"prices are non-negative Decimals, not {price!r}")
    return [None if price is None else str(price) for price in prices]


def prices_from_rows(
    rows: Iterable[Sequence[Any]],
) -> dict[str, tuple[Decimal, Decimal, Decimal | None]]:
    return {
        model: (Decimal(inp), Decimal(out), None if cached is None else Decimal(cached))
        for model, inp, out, cached in rows
    }


def embedding_rows(
    model: str,
    dimensions: int | None,
    vectors: Mapping[str, Sequence[float]],
    now: str,
) -> list[tuple[Any, ...]]:
    """``embeddings`` rows: vectors as float32 bytes, keyed by the text's SHA-256."""
    from .sqlite import _text_key

    return [
        (
            model,
            dimensions or 0,  # 0 = the model's default size, see migration 002
            _text_key(text),
            np.asarray(vector, dtype=EMBEDDING_DTYPE).tobytes(),
            now,
        )
        for text, vector in vectors.items()
    ]


def vector_of(blob: bytes | memoryview) -> list[float]:
    return np.frombuffer(bytes(blob), dtype=EMBEDDING_DTYPE).tolist()  # type: ignore[no-any-return]
