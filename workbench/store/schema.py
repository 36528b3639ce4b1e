"""The store's schema, written once for both databases: each named migration as a list of
dialect-neutral steps (create a table, add a column, create an index), rendered as SQLite
DDL (:func:`sqlite_statements`) or PostgreSQL DDL (:func:`postgres_statements`).

Migrations are frozen in time: once released, a migration never changes, even when
RunRecord grows. A new column is a new migration, so that a store created last year and
one created today end up with the same schema. Types: ``text``, ``int``, ``real`` and
``blob`` are SQLite's TEXT, INTEGER, REAL, BLOB and PostgreSQL's TEXT, BIGINT, DOUBLE
PRECISION, BYTEA; flags stay 0/1 integers on both. ``sorts_as_bytes`` marks text that must
sort as SQLite sorts it, byte by byte (ids, ISO times): COLLATE "C" on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Column",
    "CreateTable",
    "AddColumn",
    "CreateIndex",
    "TrackFilledColumns",
    "Step",
    "SCHEMA",
    "FILLED_COLUMNS",
    "FILLED_TABLE",
    "sqlite_statements",
    "postgres_statements",
]

ColumnType = Literal["text", "int", "real", "blob"]
Dialect = Literal["sqlite", "postgresql"]

_TYPES: dict[Dialect, dict[ColumnType, str]] = {
    "sqlite": {"text": "TEXT", "int": "INTEGER", "real": "REAL", "blob": "BLOB"},
    "postgresql": {"text": "TEXT", "int": "BIGINT", "real": "DOUBLE PRECISION", "blob": "BYTEA"},
}
_RESERVED = {"user"}  # a reserved word in PostgreSQL: quoted on both


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    not_null: bool = False
    primary_key: bool = False
    sorts_as_bytes: bool = False
    check: str | None = None  # a boolean SQL expression both dialects read alike
    default: str | None = None  # an SQL literal

    def ddl(self, dialect: Dialect) -> str:
        parts = [_name(self.name), _TYPES[dialect][self.type]]
        if self.sorts_as_bytes and dialect == "postgresql":
            parts.append('COLLATE "C"')
        if self.not_null:
            parts.append("NOT NULL")
        if self.primary_key:
            parts.append("PRIMARY KEY")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.check is not None:
            parts.append(f"CHECK ({self.check})")
        return " ".join(parts)


@dataclass(frozen=True)
class CreateTable:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    # SQLite only: the rows clustered by their primary key (PostgreSQL has no such table).
    without_rowid: bool = False


@dataclass(frozen=True)
class AddColumn:
    table: str
    column: Column


@dataclass(frozen=True)
class CreateIndex:
    name: str
    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TrackFilledColumns:
    """SQLite only: the one-row table ``name`` whose ``mask`` has bit i set when
    ``columns[i]`` of ``table`` holds a value in some row, counted from the rows there when
    the migration runs. The workbench's writers keep it after that, and the column-wise
    reader checks it as it reads (see :mod:`workbench.store.filled`). ``columns`` is
    frozen with the migration (bit i must keep its meaning); a column added later is not
    tracked, so always read. PostgreSQL renders nothing: its reader is another path."""

    table: str
    name: str
    columns: tuple[str, ...]

    def sqlite(self) -> tuple[str, ...]:
        if len(self.columns) > 63:  # bits of SQLite's signed 64-bit integer
            raise ValueError("track at most 63 columns in one mask")
        found = " | ".join(f"((COUNT({_name(c)}) > 0) << {i})" for i, c in enumerate(self.columns))
        return (
            # One row only (id 0): no second row can stand in for the one kept.
            f"CREATE TABLE {self.name} (id INTEGER PRIMARY KEY CHECK (id = 0),"
            " mask INTEGER NOT NULL)",
            f"INSERT INTO {self.name} (id, mask) SELECT 0, {found} FROM {self.table}",
        )


Step = CreateTable | AddColumn | CreateIndex | TrackFilledColumns


def _name(name: str) -> str:
    return f'"{name}"' if name in _RESERVED else name


def _statements(step: Step, dialect: Dialect) -> tuple[str, ...]:
    if isinstance(step, TrackFilledColumns):
        return step.sqlite() if dialect == "sqlite" else ()
    return (_statement(step, dialect),)


def _statement(step: CreateTable | AddColumn | CreateIndex, dialect: Dialect) -> str:
    if isinstance(step, CreateTable):
        lines = [column.ddl(dialect) for column in step.columns]
        if step.primary_key:
            lines.append(f"PRIMARY KEY ({', '.join(step.primary_key)})")
        body = ",\n    ".join(lines)
        rowid = " WITHOUT ROWID" if step.without_rowid and dialect == "sqlite" else ""
        return f"CREATE TABLE {step.name} (\n    {body}\n){rowid}"
    if isinstance(step, AddColumn):
        return f"ALTER TABLE {step.table} ADD COLUMN {step.column.ddl(dialect)}"
    columns = ", ".join(_name(name) for name in step.columns)
    return f"CREATE INDEX {step.name} ON {step.table} ({columns})"


def sqlite_statements(steps: Sequence[Step]) -> tuple[str, ...]:
    return tuple(sql for step in steps for sql in _statements(step, "sqlite"))


def postgres_statements(steps: Sequence[Step]) -> tuple[str, ...]:
    return tuple(sql for step in steps for sql in _statements(step, "postgresql"))


def table_columns(schema: Sequence[tuple[str, Sequence[Step]]], table: str) -> tuple[str, ...]:
    """The columns ``table`` has once ``schema``'s migrations have run, in order."""
    columns: list[str] = []
    for _, steps in schema:
        for step in steps:
            if isinstance(step, CreateTable) and step.name == table:
                columns.extend(column.name for column in step.columns)
            elif isinstance(step, AddColumn) and step.table == table:
                columns.append(step.column.name)
    return tuple(columns)


def _text(name: str, **flags: bool | str | None) -> Column:
    return Column(name, "text", **flags)  # type: ignore[arg-type]


def _int(name: str, **flags: bool | str | None) -> Column:
    return Column(name, "int", **flags)  # type: ignore[arg-type]


def _real(name: str) -> Column:
    return Column(name, "real")


_FLAG = "{} IN (0, 1)"
# What a score row holds: in scores (one per run and scorer) and in score_history.
_SCORE_COLUMNS = (
    _text("run_id", not_null=True, sorts_as_bytes=True),
    _text("scorer", not_null=True),
    _text("scorer_id", not_null=True),
    _real("value"),
    _int("passed", check=_FLAG.format("passed")),
    _text("reason", not_null=True),
    _text("judge_run_id"),
    _text("created_at", not_null=True, sorts_as_bytes=True),
)

_SCHEMA_TO_M013: tuple[tuple[str, tuple[Step, ...]], ...] = (
    (
        "m001_create_runs",
        (
            # The column order is the order of RunRecord's fields (record.COLUMNS); a test
            # holds the two together. Required fields are NOT NULL so a half-filled row
            # cannot land. created_at is ISO-8601 UTC with microseconds: it sorts as text.
            CreateTable(
                "runs",
                (
                    _text("kind", not_null=True),
                    _text("provider", not_null=True),
                    _text("model", not_null=True),
                    _text("run_id", not_null=True, primary_key=True, sorts_as_bytes=True),
                    _text("created_at", not_null=True, sorts_as_bytes=True),
                    _text("experiment", not_null=True),
                    _text("sweep_id"),
                    _text("response_model"),
                    _real("temperature"),
                    _real("top_p"),
                    _int("seed"),
                    _int("max_tokens"),
                    _text("params", not_null=True),  # JSON
                    _text("system"),
                    _text("prompt"),
                    _text("messages"),  # JSON
                    _text("template"),
                    _text("variables"),  # JSON
                    _text("output"),
                    _text("finish_reason"),
                    _text("tool_calls"),  # JSON
                    _int("prompt_tokens"),
                    _int("completion_tokens"),
                    _int("cached_tokens"),
                    _int("reasoning_tokens"),
                    _int("total_tokens"),
                    _int("tokens_counted", not_null=True, check=_FLAG.format("tokens_counted")),
                    _real("cost_usd"),
                    _text("price_source"),
                    _real("latency_s"),
                    _real("ttft_s"),
                    _text("system_fingerprint"),
                    _text("request_hash", not_null=True, sorts_as_bytes=True),
                    _int("sample_index", not_null=True),
                    _int("cache_hit", not_null=True, check=_FLAG.format("cache_hit")),
                    _text("status", not_null=True),
                    _text("error"),
                    _int("retries", not_null=True),
                ),
            ),
            # Cache and replay look a run up by its identity on every call.
            CreateIndex("idx_runs_identity", "runs", ("request_hash", "sample_index")),
            # run_id as the second key lets "WHERE experiment = ? ORDER BY run_id" (and the
            # same for a sweep) walk the index in order instead of sorting afterwards.
            CreateIndex("idx_runs_experiment", "runs", ("experiment", "run_id")),
            CreateIndex("idx_runs_sweep", "runs", ("sweep_id", "run_id")),
            CreateIndex("idx_runs_created_at", "runs", ("created_at",)),
        ),
    ),
    (
        "m002_create_embeddings",
        (
            # dimensions is 0 for "the model's default": NULL would not be equal to itself
            # in the primary key, and the same text could then be cached twice. vector:
            # float32, little-endian.
            CreateTable(
                "embeddings",
                (
                    _text("model", not_null=True),
                    _int("dimensions", not_null=True),
                    _text("text_sha256", not_null=True),
                    Column("vector", "blob", not_null=True),
                    _text("created_at", not_null=True),
                ),
                primary_key=("model", "dimensions", "text_sha256"),
            ),
        ),
    ),
    (
        "m003_create_prices",
        (
            # Prices are Decimal text: a REAL would turn $0.15 into 0.1499999999999999944...
            CreateTable(
                "prices",
                (
                    _text("model", not_null=True, primary_key=True),
                    _text("input_per_mtok", not_null=True),
                    _text("output_per_mtok", not_null=True),
                    _text("cached_input_per_mtok"),
                    _text("updated_at", not_null=True),
                ),
            ),
        ),
    ),
    # Reply values that could not be stored (dropped as NULL) are noted here, per row.
    ("m004_add_runs_notes", (AddColumn("runs", _text("notes")),)),
    (
        "m005_response_fields",
        (
            # What the API returns that the table dropped (refusals, logprobs as compact
            # JSON, service tier), and how many requests an embedding call took once split
            # within the API's limits.
            AddColumn("runs", _text("refusal")),
            AddColumn("runs", _text("logprobs")),
            AddColumn("runs", _text("service_tier")),
            AddColumn("runs", _int("requests")),
        ),
    ),
    (
        "m006_datasets",
        (
            # Which test case a run answered and its reference answer, on the run itself:
            # scorers, exports and replays need no join. All NULL outside datasets.
            AddColumn("runs", _text("dataset")),
            AddColumn("runs", _text("dataset_version")),
            AddColumn("runs", _text("item_id")),
            AddColumn("runs", _text("expected")),
            # Runs of the same test case pair up across sweeps by item_id.
            CreateIndex("idx_runs_item", "runs", ("item_id",)),
            # A named dataset's rows, one version per content hash (of rows + expected
            # column): the same rows stored again are the same version. items: JSON list
            # of row objects in the dataset's order; stored_at: the latest is the newest.
            CreateTable(
                "datasets",
                (
                    _text("name", not_null=True),
                    _text("version", not_null=True),
                    _text("expected"),
                    _text("items", not_null=True),
                    _text("stored_at", not_null=True, sorts_as_bytes=True),
                ),
                primary_key=("name", "version"),
            ),
        ),
    ),
    (
        "m007_scores",
        (
            # One score per run per scorer definition (scorer_id: the name plus a hash of
            # the definition). WITHOUT ROWID on SQLite: rows clustered by (scorer_id,
            # run_id), the question "is this run scored yet?". No second index on run_id:
            # it made writing 100,000 scores ~40 % slower (bench/scoring.py).
            CreateTable(
                "scores",
                _SCORE_COLUMNS,
                primary_key=("scorer_id", "run_id"),
                without_rowid=True,
            ),
        ),
    ),
    (
        "m008_runs_mode_and_batches",
        (
            # Issue 15, the Batch API. Every older row was sent live.
            AddColumn("runs", _text("mode", not_null=True, default="'live'")),
            # One row per batch, written the moment the API has created it: a kernel that
            # restarts finds its batches here. No key, no URL: the provider's name only.
            # custom_ids: JSON list of request_hash:sample_index; total, completed, failed:
            # request_counts as the API last said; collected_at: its answers are runs.
            CreateTable(
                "batches",
                (
                    _text("batch_id", not_null=True, primary_key=True),
                    _text("provider", not_null=True),
                    _text("sweep_id", not_null=True),
                    _text("experiment", not_null=True),
                    _text("input_file_id", not_null=True),
                    _text("status", not_null=True),
                    _text("created_at", not_null=True, sorts_as_bytes=True),
                    _text("custom_ids", not_null=True),
                    _text("output_file_id"),
                    _text("error_file_id"),
                    _int("total"),
                    _int("completed"),
                    _int("failed"),
                    _text("ended_at"),
                    _text("collected_at"),
                    _text("message"),
                ),
            ),
            CreateIndex("idx_batches_sweep", "batches", ("sweep_id", "created_at")),
        ),
    ),
    # Who ran it (WORKBENCH_USER or the OS user), so a shared store can be filtered by person.
    ("m009_add_runs_user", (AddColumn("runs", _text("user")),)),
    (
        "m010_create_claims",
        (
            # A point of a sweep is claimed before it is sent: two people sweeping the same
            # grid at once send each (request_hash, sample_index) once; the other replays.
            CreateTable(
                "claims",
                (
                    _text("request_hash", not_null=True, sorts_as_bytes=True),
                    _int("sample_index", not_null=True),
                    _text("run_id", not_null=True),
                    _text("claimed_by"),
                    _text("claimed_at", not_null=True, sorts_as_bytes=True),
                ),
                primary_key=("request_hash", "sample_index"),
            ),
        ),
    ),
    (
        "m011_reviews",
        (
            # A changed rating replaces its row in scores; the replaced row is copied here
            # first, with the time it was replaced. Pairwise preferences are appended, never
            # updated: the latest row per (baseline, candidate, rater) counts.
            CreateTable(
                "score_history",
                (*_SCORE_COLUMNS, _text("replaced_at", not_null=True, sorts_as_bytes=True)),
            ),
            CreateIndex("idx_score_history_run", "score_history", ("run_id",)),
            CreateTable(
                "preferences",
                (
                    _text("baseline_run_id", not_null=True),
                    _text("candidate_run_id", not_null=True),
                    _text(
                        "winner",
                        not_null=True,
                        check="winner IN ('baseline', 'candidate', 'tie')",
                    ),
                    _text("rater", not_null=True),
                    _text("reason", not_null=True),
                    _text("created_at", not_null=True, sorts_as_bytes=True),
                ),
            ),
        ),
    ),
    (
        "m012_runs_api",
        (
            # Issue 23: which API a chat call went to (every older row: Chat Completions),
            # and the reasoning summaries the Responses API returns.
            AddColumn("runs", _text("api", not_null=True, default="'chat'")),
            AddColumn("runs", _text("reasoning_summary")),
        ),
    ),
    (
        "m013_runs_lineage",
        (
            # Issue 25: a prompt search's lineage on each evaluation run: the candidate (a
            # short hash of its texts), its parent's, and the reflection call's run id.
            AddColumn("runs", _text("candidate")),
            AddColumn("runs", _text("parent")),
            AddColumn("runs", _text("reflection")),
        ),
    ),
)

FILLED_TABLE = "runs_filled"
FILLED_COLUMNS = table_columns(_SCHEMA_TO_M013, "runs")
"""The runs columns whose filled bits ``runs_filled.mask`` keeps, bit i for the i-th:
those of m001-m013, frozen (a later column is not tracked and is always read)."""

SCHEMA: tuple[tuple[str, tuple[Step, ...]], ...] = (
    *_SCHEMA_TO_M013,
    ("m014_runs_filled", (TrackFilledColumns("runs", FILLED_TABLE, FILLED_COLUMNS),)),
)
"""Every migration in the order it must run, by the name recorded in the database."""
