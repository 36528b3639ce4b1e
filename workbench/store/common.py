"""What the two stores (:mod:`.sqlite`, :mod:`.postgres`) share line for line: the SQL both
run, written once with ``?`` placeholders (the PostgreSQL store turns them into ``%s``),
and the conversions of rows to results (the newest run per identity, prices, vectors).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.core.checks import choice
from workbench.core.errors import InvalidInputError, StoreError
from workbench.core.gcpause import gc_paused
from workbench.core.record import COLUMNS, current_user
from workbench.store.messages import one_line
from workbench.store.rows import EXPORT_SUFFIXES, iso_utc

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CLAIM_SQL",
    "RELEASE_SQL",
    "claim_params",
    "check_export_suffix",
    "text_key",
    "now_iso",
    "StoreBase",
    "runs_where",
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
    # pandas only where a frame is built: keeps a sweep's first request and opening a store light
    from workbench.store.frames import runs_frame

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
    import numpy as np  # only for embeddings: keeps opening a store and chat sweeps light

    return [
        (
            model,
            dimensions or 0,  # 0 = the model's default size, see migration 002
            text_key(text),
            np.asarray(vector, dtype=EMBEDDING_DTYPE).tobytes(),
            now,
        )
        for text, vector in vectors.items()
    ]


def vector_of(blob: bytes | memoryview) -> list[float]:
    import numpy as np  # only for embeddings: keeps opening a store and chat sweeps light

    return np.frombuffer(bytes(blob), dtype=EMBEDDING_DTYPE).tolist()  # type: ignore[no-any-return]


def runs_where(
    experiment: str | None,
    sweep_id: str | None,
    status: str | None,
    since: datetime | str | None,
    kind: str | None,
    user: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (``?`` placeholders, or "") and parameters of the runs filters
    both stores take; a bad ``status``, ``kind`` or ``since`` is one line."""
    choice("status", status, ("ok", "error"))  # a typo would quietly match no row
    choice("kind", kind, ("chat", "embed"))
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("experiment", experiment),
        ("sweep_id", sweep_id),
        ("status", status),
        ("kind", kind),
        ("user", user),
    ):
        if value is not None:
            # Quoted: "user" is a reserved word in PostgreSQL, which shares this clause.
            clauses.append(f'"{column}" = ?')
            params.append(value)
    if since is not None:
        # Stored timestamps share one ISO format, so comparing text compares times.
        clauses.append("created_at >= ?")
        try:
            params.append(iso_utc(since))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInputError(
                f"since must be a datetime or a date like '2026-01-31' or "
                f"'2026-01-31T12:00:00Z', got {since!r} ({one_line(exc)})"
            ) from None
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

# Portable SQL (SQLite >= 3.35 and PostgreSQL): a claim is taken when the point is free or
# its claim is stale (a kernel that died mid-call); RETURNING says whether we got it.
CLAIM_SQL = (
    "INSERT INTO claims (request_hash, sample_index, run_id, claimed_by, claimed_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_hash, sample_index) DO UPDATE"
    " SET run_id = excluded.run_id, claimed_by = excluded.claimed_by,"
    " claimed_at = excluded.claimed_at WHERE claims.claimed_at < ? RETURNING run_id"
)
RELEASE_SQL = "DELETE FROM claims WHERE request_hash = ? AND sample_index = ? AND run_id = ?"


def claim_params(
    request_hash: str, sample_index: int, run_id: str, stale_s: float
) -> tuple[Any, ...]:
    """The parameters of CLAIM_SQL: a claim older than ``stale_s`` seconds may be taken."""
    now = datetime.now(timezone.utc)
    stale = datetime.fromtimestamp(now.timestamp() - stale_s, timezone.utc)
    return (request_hash, sample_index, run_id, current_user(), iso_utc(now), iso_utc(stale))


def check_export_suffix(path: Path, verb: str) -> None:
    if path.suffix.lower() not in EXPORT_SUFFIXES:
        raise StoreError(f"cannot {verb} {path}: the name must end in {', '.join(EXPORT_SUFFIXES)}")


def text_key(text: str) -> str:
    """The embeddings cache's key of a text: its SHA-256."""
    # surrogatepass: a lone surrogate from a badly decoded file is still a cacheable text.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def now_iso() -> str:
    return iso_utc(datetime.now(timezone.utc))


_Store = TypeVar("_Store", bound="StoreBase")


class StoreBase:
    """What both stores share above their own SQL: ``with store:`` and ``count()``
    (through the portable ``select_rows``)."""

    def select_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # the store's

    def close(self) -> None:
        raise NotImplementedError  # the store's

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def count(
        self,
        experiment: str | None = None,
        sweep_id: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = None,
        kind: str | None = None,
        user: str | None = None,
    ) -> int:
        """How many rows ``runs()`` would return with the same filters."""
        where, params = runs_where(experiment, sweep_id, status, since, kind, user)
        total = int(self.select_rows(f"SELECT COUNT(*) FROM runs{where}", params)[0][0])
        return total if limit is None else min(total, max(limit, 0))

    def ok_identities(self, sweep_id: str) -> set[tuple[str, int]]:
        """(request_hash, sample_index) of the sweep's ``ok`` runs: what it has done already,
        read without a DataFrame (pandas is not loaded before a cold sweep's first call)."""
        where, params = runs_where(None, sweep_id, "ok", None, None)
        rows = self.select_rows(f"SELECT request_hash, sample_index FROM runs{where}", params)
        return {(str(request_hash), int(index)) for request_hash, index in rows}
