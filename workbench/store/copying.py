"""Runs copied between stores: an export file, a SQLite store or a PostgreSQL one, into any
store, skipping run_ids already there (``wb.import_runs``, ``workbench store copy``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..frames import EXPORT_SUFFIXES, frame_to_rows, read_runs
from .migrations import one_line
from .target import is_postgres_url

__all__ = ["source_rows", "copy_runs", "copy_command", "CHUNK_ROWS"]

# Rows per transaction: a copy interrupted halfway keeps what it wrote, and a rerun skips it.
CHUNK_ROWS = 5_000

Rows = list[tuple[Any, ...]]


def source_rows(source: str | os.PathLike[str], *, into: object | None = None) -> Iterator[Rows]:
    """The runs of ``source`` in chunks of rows in ``record.COLUMNS`` order."""
    rows = _all_rows(source, into)
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]


def copy_runs(
    source: str | os.PathLike[str],
    target: Any,
    on_chunk: Callable[[int, int], None] | None = None,
) -> int:
    """Copy every run of ``source`` into the store ``target``; return how many were new.
    ``on_chunk(rows_read, rows_new)`` follows the progress."""
    added = 0
    for chunk in source_rows(source, into=target):
        new = int(target.add_rows(chunk))
        added += new
        if on_chunk is not None:
            on_chunk(len(chunk), new)
    return added


def copy_command(source: str, target: str, *, progress: bool = True) -> int:
    """``workbench store copy SOURCE TARGET``: every run of SOURCE (a SQLite store, an
    export, a ``postgresql://`` URL) into TARGET, with a progress bar; exit status."""
    import sys

    from tqdm import tqdm

    from . import open_store, store_label
    from .target import configured_target

    try:
        rows = _all_rows(source, None)
        password_env = configured_target(None)[1]
        with open_store(target, password_env=password_env) as store:
            added = 0
            with tqdm(
                total=len(rows), unit="run", desc="copying", disable=not progress, file=sys.stderr
            ) as bar:
                for start in range(0, len(rows), CHUNK_ROWS):
                    chunk = rows[start : start + CHUNK_ROWS]
                    added += int(store.add_rows(chunk))
                    bar.update(len(chunk))
    except StoreError as exc:
        print(f"workbench store copy: {exc}", file=sys.stderr)
        return 1
    print(
        f"copied {added} new runs of {len(rows)} from {store_label(source)} to"
        f" {store_label(target)} ({len(rows) - added} were there already)",
        file=sys.stderr,
    )
    return 0


def _all_rows(source: str | os.PathLike[str], into: object | None) -> Rows:
    from . import open_store

    text = os.fspath(source)
    if is_postgres_url(text):
        with open_store(text) as store:
            return frame_to_rows(store.runs())
    path = Path(text)
    if path.suffix.lower() in EXPORT_SUFFIXES:
        try:
            return frame_to_rows(read_runs(path))
        except ImportError as exc:
            raise StoreError(f"importing {path} needs pyarrow: pip install pyarrow") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except (ValueError, TypeError) as exc:
            raise StoreError(f"cannot import {path}: {one_line(exc)}") from exc
    if not path.is_file():
        raise StoreError(
            f"cannot import {path}: no such file (give an export ending in"
            f" {', '.join(EXPORT_SUFFIXES)}, a workbench SQLite store, or a postgresql:// URL)"
        )
    own = getattr(into, "path", None)
    if own is not None and Path(own).resolve() == path.resolve():
        raise StoreError(f"cannot import {path} into itself")
    from .sqlite import ExperimentStore

    with ExperimentStore(path) as store:
        return frame_to_rows(store.runs())
