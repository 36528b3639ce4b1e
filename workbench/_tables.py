"""The experiment table as the documented API reads and writes it: runs, datasets,
preferences, prices, exports. Each takes the session's store; ``wb.*`` passes it."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.checks import amount
from workbench.core.errors import InvalidInputError
from workbench.notebook.review.store import read_preferences
from workbench.notebook.runtable.grid import RunsBrowser
from workbench.scoring.datasets import load_dataset, save_dataset
from workbench.scoring.engine import runs_to_score
from workbench.store.copying import import_runs as _import_runs

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    import pandas as pd

    from workbench.calls.session import Session
    from workbench.scoring.datasets import Dataset
    from workbench.store import AnyStore

__all__ = [
    "runs", "preferences", "dataset", "datasets", "set_price", "export", "import_runs", "browse",
]


def runs(
    store: AnyStore,
    experiment: str | None = None,
    sweep_id: str | None = None,
    status: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = None,
    user: str | None = None,
) -> pd.DataFrame:
    """The experiment table as a DataFrame, oldest first (``limit``: the newest N;
    ``user``: only the runs of one person, as ``WORKBENCH_USER`` or the OS user named them),
    with a ``score:<name>`` column per scorer that has scored its runs (see ``wb.score``).

    Columns in reading order: time, experiment, model, knobs, prompt, output, tokens,
    cost, latency, status first; ids and JSON last (``wb.browse()`` to explore them).
    In a notebook it shows formatted, the answer and its cost first, without its empty
    columns; code sees the frame."""
    # Here, not at the top: each pulls in pandas, which `import workbench` does not pay for.
    from workbench.core.resultframe import result_frame
    from workbench.notebook.runtable import VIEW_FIRST, reading_order
    from workbench.scoring.columns import add_score_columns

    frame = store.runs(
        experiment=experiment, sweep_id=sweep_id, status=status, since=since, limit=limit,
        user=user,
    )
    frame = reading_order(add_score_columns(frame, store))
    return result_frame(frame, skip_empty=True, first=VIEW_FIRST)


def preferences(
    session: Session,
    baseline: Any = None,
    candidate: Any = None,
    *,
    rater: str | None = None,
    history: bool = False,
) -> pd.DataFrame:
    """The stored pairwise preferences (from ``wb.ReviewPanel(pairwise=...)``): one row per
    pair and rater, the latest (``history=True``: every one, oldest first). ``baseline`` and
    ``candidate`` (a Sweep, a runs DataFrame or an experiment name) keep the pairs of
    their runs. ``wb.win_rate(frame)`` summarises them."""
    frame = read_preferences(session.store, latest=not history)
    for column, data in (("baseline_run_id", baseline), ("candidate_run_id", candidate)):
        if data is not None:
            ids = set(runs_to_score(data, session)["run_id"].tolist())
            frame = frame[frame[column].isin(ids)]
    if rater is not None:
        frame = frame[frame["rater"].eq(rater)]
    return frame.reset_index(drop=True)


def export(
    store: AnyStore,
    path: str | os.PathLike[str],
    experiment: str | None = None,
    *,
    keep_formulas: bool = False,
) -> Path:
    """Write the table (or one experiment) to ``.parquet``, ``.csv`` or ``.jsonl``. In a
    CSV, a text cell a spreadsheet would run as a formula (leading ``=``, ``+``, ``-``,
    ``@``, tab, carriage return) gets a leading ``'``, unless ``keep_formulas=True``."""
    return store.export(path, experiment=experiment, keep_formulas=keep_formulas)


def import_runs(store: AnyStore, path: str | os.PathLike[str]) -> int:
    """Merge runs into the table by run_id: an exported file, a local SQLite store
    (``"experiments.db"``) or a ``postgresql://`` store; returns how many rows were new."""
    return _import_runs(store, path)


def dataset(
    store: AnyStore,
    name: str,
    data: Any = None,
    *,
    expected: str | None = None,
    version: str | None = None,
) -> Dataset:
    """A named set of test cases: rows of template variables, one column (``expected``, or
    the one named by ``expected=``) holding the reference answer. With ``data`` (a
    DataFrame, a list of dicts, a .csv/.jsonl/.parquet path) it is stored, versioned by its
    content; without, the latest stored version (or ``version``) is loaded.
    ``wb.sweep(..., vars=wb.dataset("capitals"))`` runs every case."""
    if data is None:
        if expected is not None:
            raise InvalidInputError(
                "expected= goes with rows to store: wb.dataset(name, rows, expected=...)"
            )
        return load_dataset(store, name, version=version)
    if version is not None:
        raise InvalidInputError(
            "version= picks a stored version: wb.dataset(name, version=...) without rows"
        )
    return save_dataset(store, name, data, expected=expected)


def datasets(store: AnyStore) -> pd.DataFrame:
    """The stored datasets, newest first: name, version, rows, expected, stored_at."""
    return store.datasets()


def set_price(
    store: AnyStore,
    model: str,
    *,
    input_per_mtok: float | Decimal,
    output_per_mtok: float | Decimal,
    cached_input_per_mtok: float | Decimal | None = None,
) -> None:
    """Price a model the price table does not know (USD per million tokens); kept in the
    store, and wins over the table."""
    def dec(value: float | Decimal) -> Decimal:
        return amount("a price per million tokens", value)

    store.set_price(
        model,
        dec(input_per_mtok),
        dec(output_per_mtok),
        None if cached_input_per_mtok is None else dec(cached_input_per_mtok),
    )


def browse(
    store: AnyStore, data: Any = None, *, experiment: str | None = None, limit: int | None = 1000
) -> Any:
    """The runs as a grid, newest first: sort by a header, search, filter, unfold texts.

    ``data``: a runs DataFrame or a Sweep (``.df``); None reads the table (the newest
    ``limit`` runs, of ``experiment`` when given)."""
    if data is None:
        df = runs(store, experiment=experiment, limit=limit)
    else:
        df = getattr(data, "df", data)
    return RunsBrowser(df)
