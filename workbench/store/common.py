"""What the two stores (:mod:`.sqlite`, :mod:`.postgres`) share line for line: the runs
filters (checked here, turned into SQL in each store's dialect by :mod:`.queries`) and the
conversions of rows to results (the newest run per identity, prices, vectors).
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
from workbench.store.dialect import Dialect
from workbench.store.messages import one_line
from workbench.store.queries import RunFilter
from workbench.store.rows import EXPORT_SUFFIXES, iso_utc

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "claim_params",
    "check_export_suffix",
    "text_key",
    "now_iso",
    "StoreBase",
    "run_filter",
    "EMBEDDING_DTYPE",
    "newest_by_identity",
    "frame_of_rows",
    "price_texts",
    "prices_from_rows",
    "embedding_rows",
    "vector_of",
]

EMBEDDING_DTYPE = "<f4"  # float32, little-endian whatever the machine: files travel

_IDENTITY = itemgetter(COLUMNS.index("request_hash"), COLUMNS.index("sample_index"))
_RUN_ID = itemgetter(COLUMNS.index("run_id"))

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


def run_filter(
    experiment: str | None,
    sweep_id: str | None,
    status: str | None,
    since: datetime | str | None,
    kind: str | None,
    user: str | None = None,
) -> RunFilter:
    """The runs filters both stores take, as a :class:`~.queries.RunFilter` (SQL only in
    the dialect that runs it); a bad ``status``, ``kind`` or ``since`` is one line."""
    choice("status", status, ("ok", "error"))  # a typo would quietly match no row
    choice("kind", kind, ("chat", "embed"))
    conditions: list[tuple[str, str]] = []
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
            conditions.append((f'"{column}"', "="))
            params.append(value)
    if since is not None:
        # Stored timestamps share one ISO format, so comparing text compares times.
        conditions.append(("created_at", ">="))
        try:
            params.append(iso_utc(since))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInputError(
                f"since must be a datetime or a date like '2026-01-31' or "
                f"'2026-01-31T12:00:00Z', got {since!r} ({one_line(exc)})"
            ) from None
    return RunFilter(tuple(conditions), tuple(params))


def claim_params(
    request_hash: str, sample_index: int, run_id: str, stale_s: float
) -> tuple[Any, ...]:
    """The parameters of ``queries.claim_sql``: a claim older than ``stale_s`` seconds may
    be taken."""
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
    (built in the store's dialect, run through its ``select_rows``)."""

    dialect: Dialect

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
        sql, params = run_filter(experiment, sweep_id, status, since, kind, user).count(
            self.dialect
        )
        total = int(self.select_rows(sql, params)[0][0])
        return total if limit is None else min(total, max(limit, 0))

    def ok_identities(self, sweep_id: str) -> set[tuple[str, int]]:
        """(request_hash, sample_index) of the sweep's ``ok`` runs: what it has done already,
        read without a DataFrame (pandas is not loaded before a cold sweep's first call)."""
        chosen = run_filter(None, sweep_id, "ok", None, None)
        rows = self.select_rows(
            f"SELECT request_hash, sample_index FROM runs{chosen.where(self.dialect)}",
            list(chosen.params),
        )
        return {(str(request_hash), int(index)) for request_hash, index in rows}
