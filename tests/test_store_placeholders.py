"""No placeholder rewriting in the stores (issue 21 item 4): every statement is built in
its store's dialect with the driver's own placeholder (sqlite3 ``?``, psycopg ``%s``, ADBC
``$1, $2, ...``), nothing in workbench/ scans SQL text to replace ``?``, and text holding
``?`` or ``%`` is a bound value that comes back unchanged from both stores."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from store_backends import StoreMaker, chat_run, new_store, store, store_backend, store_maker

import workbench
from workbench.store import dialect as dialect_module
from workbench.store import queries
from workbench.store.batches import BATCH_COLUMNS, _select, _update
from workbench.store.common import run_filter
from workbench.store.copying import TABLES, copy_store
from workbench.store.datasets import insert_dataset_sql
from workbench.store.dialect import POSTGRES, POSTGRES_ADBC, SQLITE, Dialect
from workbench.store.scores import _statements

__all__ = ["store_backend", "new_store", "store", "store_maker"]

PACKAGE = Path(workbench.__file__).parent
# The names the rewriting helpers had (store/dialect.py before this change).
REWRITERS = {"psycopg_sql", "numbered_sql", "_placeholders", "_TOKEN"}
# Text a rewriter would have mangled: placeholders of every driver, a quote, a percent.
_REGEX_CALLS = {"compile", "sub", "subn", "findall", "finditer", "split", "search", "match"}
# A pattern matching a literal "?": escaped, or inside a character class.
_FINDS_A_MARK = re.compile(r"\\\?|\[[^]]*\?")
TRICKY = "why? 100% sure; ?? %s %% $1 :name %(x)s 'it''s' \"q?\" -- ? /* ? */"


# ---------------------------------------------------------------------- the source


def placeholder_rewrites(package: Path) -> list[str]:
    """Where a module under ``package`` defines or calls a placeholder rewrite: a
    function or name of the old helpers, ``.replace("?", ...)`` / ``.replace("%", ...)``,
    or, in store/ (the only package that sends SQL: test_store_sql_boundary.py), a
    regular expression that looks for ``?``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        name = str(path.relative_to(package))
        in_store = name.startswith("store/")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in REWRITERS:
                found.append(f"{name}:{node.lineno} defines {node.name}")
            elif isinstance(node, ast.Name | ast.alias):
                ident = node.id if isinstance(node, ast.Name) else node.name
                if ident in REWRITERS:
                    found.append(f"{name}:{node.lineno} names {ident}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                first = node.args[0] if node.args else None
                text = first.value if isinstance(first, ast.Constant) else None
                if not isinstance(text, str):
                    continue
                if node.func.attr == "replace" and text in ("?", "%"):
                    found.append(f"{name}:{node.lineno} .replace({text!r}")
                elif in_store and node.func.attr in _REGEX_CALLS and _FINDS_A_MARK.search(text):
                    found.append(f"{name}:{node.lineno} regex {text[:30]!r}")
    return sorted(found)


def test_nothing_in_workbench_rewrites_placeholders() -> None:
    assert placeholder_rewrites(PACKAGE) == []
    assert not REWRITERS & set(vars(dialect_module))


def test_the_check_finds_a_rewrite_where_there_is_one(tmp_path: Path) -> None:
    # The check itself can fail: the tokenizer this change removed, and a cruder rewrite.
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "dialect.py").write_text(
        "import re\n"
        "_TOKEN = re.compile(r\"'(?:[^']|'')*'|\\?|[^'?]+\")\n"
        "def psycopg_sql(sql):\n"
        "    return sql.replace('?', '%s')\n"
    )
    (tmp_path / "store" / "other.py").write_text(
        "import re\ndef numbered(sql):\n    return re.sub(r'\\?', '$1', sql)\n"
    )
    assert placeholder_rewrites(tmp_path) == [
        "store/dialect.py:2 names _TOKEN",
        "store/dialect.py:2 regex \"'(?:[^']|'')*'|\\\\?|[^'?]+\"",
        "store/dialect.py:3 defines psycopg_sql",
        "store/dialect.py:4 .replace('?'",
        "store/other.py:3 regex '\\\\?'",
    ]


# ---------------------------------------------------------------------- the statements


def statements(dialect: Dialect) -> dict[str, str]:
    """Every statement the stores' shared modules build, in ``dialect``."""
    built = {
        "find_ok": queries.find_ok_sql(dialect),
        "find_run": queries.find_run_sql(dialect),
        "upsert_price": queries.upsert_price_sql(dialect),
        "claim": queries.claim_sql(dialect),
        "release": queries.release_sql(dialect),
        "mean_tokens": queries.mean_tokens_query(dialect, "m", "e")[0],
    }
    wanted = run_filter("e", "s", "ok", "2026-01-31", "chat", "u")
    built["runs"] = wanted.select(dialect, limit=3)[0]
    built["count"] = wanted.count(dialect)[0]
    if dialect.numbered:  # the ADBC reader: only the runs filters
        return built
    built["dataset"] = insert_dataset_sql(dialect)
    built["batch_select"] = _select(dialect, "sweep_id")
    built["batch_update"] = _update(dialect, ("status", "total"))
    for field, sql in vars(_statements(dialect)).items():
        built[f"scores.{field}"] = sql
    for table in TABLES:
        built[f"copy.{table.name}"] = table.insert(dialect)
    return built


def test_psycopg_statements_hold_only_its_own_placeholder() -> None:
    for name, sql in statements(POSTGRES).items():
        assert "?" not in sql and "$" not in sql, name
        # psycopg reads every % as a placeholder's start: no literal % in its SQL.
        assert "%" not in sql.replace("%s", ""), name


def test_sqlite_statements_hold_only_question_marks() -> None:
    for name, sql in statements(SQLITE).items():
        assert "%" not in sql and "$" not in sql, name


def test_adbc_statements_number_their_parameters_in_order() -> None:
    for name, sql in statements(POSTGRES_ADBC).items():
        assert "?" not in sql and "%" not in sql, name
        numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
        assert numbers == list(range(1, len(numbers) + 1)), name
    wanted = run_filter("e", None, None, "2026-01-31", None)
    assert wanted.where(POSTGRES_ADBC) == ' WHERE "experiment" = $1 AND created_at >= $2'
    sql, params = wanted.select(POSTGRES_ADBC, limit=5)
    assert sql.endswith("LIMIT $3") and params[-1] == 5 and len(params) == 3


def test_placeholders_match_the_parameters_given() -> None:
    p = POSTGRES.mark
    assert queries.claim_sql(POSTGRES).count(p) == 6
    assert queries.upsert_price_sql(POSTGRES).count(p) == 5
    assert insert_dataset_sql(POSTGRES).count(p) == 5
    assert _update(POSTGRES, ("status", "total")).count(p) == 3
    sql, params = queries.mean_tokens_query(POSTGRES, "m", None)
    assert sql.count(p) == len(params) == 1
    for table in TABLES:
        assert table.insert(POSTGRES).count(p) == len(table.columns), table.name


# ---------------------------------------------------------------------- both stores


@pytest.fixture
def sent_sql(store: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Every (SQL, parameters) the PostgreSQL store hands psycopg, and every (SQL,
    parameters) its ADBC reader runs with the table it read; empty for SQLite."""
    seen: list[tuple[str, Any]] = []
    if store.dialect is POSTGRES:
        import psycopg

        from workbench.store.columnar import PostgresArrowReader

        def spy(method: Callable[..., Any], many: bool = False) -> Callable[..., Any]:
            def wrapped(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
                if isinstance(query, str):
                    rows = [] if params is None else list(params) if many else [params]
                    seen.append((query, rows))
                return method(self, query, params, **kw)

            return wrapped

        monkeypatch.setattr(psycopg.Connection, "execute", spy(psycopg.Connection.execute))
        monkeypatch.setattr(psycopg.Cursor, "execute", spy(psycopg.Cursor.execute))
        monkeypatch.setattr(
            psycopg.Cursor, "executemany", spy(psycopg.Cursor.executemany, many=True)
        )
        read = PostgresArrowReader._read

        def adbc(self: Any, dbapi: Any, sql: str, bound: list[Any]) -> Any:
            table = read(self, dbapi, sql, bound)
            seen.append((f"ADBC {sql}", (bound, table)))
            return table

        monkeypatch.setattr(PostgresArrowReader, "_read", adbc)
    yield seen


def test_text_with_question_marks_and_percents_round_trips(
    store: Any, store_maker: StoreMaker, store_backend: str, sent_sql: list[tuple[str, Any]],
    tmp_path: Path,
) -> None:
    exp = f"exp {TRICKY}"
    run = chat_run(1, experiment=exp, prompt=TRICKY, system=TRICKY, output=TRICKY,
                   template=TRICKY, model=f"m{TRICKY}", user=TRICKY)
    store.append(run)
    store.append(chat_run(2, experiment="other"))
    assert store.find_run(run.run_id).prompt == TRICKY
    assert store.find_ok(run.request_hash, 0).output == TRICKY
    assert store.find_ok_many([(run.request_hash, 0)])[(run.request_hash, 0)].system == TRICKY
    frame = store.runs(experiment=exp, user=TRICKY, since="2020-01-01", limit=5)
    assert frame["prompt"].tolist() == [TRICKY] and frame["template"].tolist() == [TRICKY]
    assert store.runs(experiment=exp)["output"].tolist() == [TRICKY]
    assert store.count(experiment=exp, kind="chat") == 1
    assert store.mean_completion_tokens(f"m{TRICKY}", exp) == run.completion_tokens
    assert store.run_texts([run.run_id]) == [(run.run_id, TRICKY, TRICKY)]

    assert store.claim(TRICKY, 0, TRICKY, 60.0) and store.renew_claim(TRICKY, 0, TRICKY)
    store.release(TRICKY, 0, TRICKY)
    store.set_price(TRICKY, Decimal("1.5"), Decimal("2"))
    assert store.prices()[TRICKY] == (Decimal("1.5"), Decimal("2"), None)
    store.put_embeddings(TRICKY, None, {TRICKY: [0.5, 1.0]})
    assert store.get_embeddings(TRICKY, None, [TRICKY]) == {TRICKY: [0.5, 1.0]}

    items = json.dumps([{"q": TRICKY}])
    store.put_dataset(TRICKY, TRICKY, TRICKY, items)
    assert store.get_dataset(TRICKY, TRICKY) == (TRICKY, TRICKY, items)
    assert store.datasets()["name"].tolist() == [TRICKY]

    now = datetime.now(timezone.utc).isoformat()
    score = (run.run_id, TRICKY, TRICKY, 0.5, 1, TRICKY, None, now)
    store.put_scores([score])
    assert [tuple(r) for r in store.score_rows(TRICKY)] == [score]
    assert store.score_count(TRICKY)[0] == 1 and store.score_values(TRICKY) == [
        (run.run_id, 0.5, 1)
    ]
    assert store.keep_score_history(TRICKY, run.run_id, TRICKY) == 1
    assert [tuple(r)[-1] for r in store.score_history_rows(run.run_id)] == [TRICKY]
    store.put_preference((run.run_id, run.run_id, "candidate", TRICKY, TRICKY, now))
    assert [tuple(r)[3:5] for r in store.preference_rows()] == [(TRICKY, TRICKY)]

    batch: dict[str, Any] = dict.fromkeys(BATCH_COLUMNS)
    batch.update(batch_id=TRICKY, provider="openai", sweep_id=TRICKY, experiment=exp,
                 input_file_id=TRICKY,
                 status="in_progress", created_at=now, custom_ids="[]", total=1)
    store.put_batch(batch)
    assert store.update_batch(TRICKY, {"message": TRICKY, "status": "completed"}) == 1
    (row,) = store.batch_rows(sweep_id=TRICKY)
    assert row[BATCH_COLUMNS.index("message")] == TRICKY

    # A copy reads each table with one SELECT and writes it with the target's dialect.
    other = store_maker.make(store_backend, "copy")
    copy_store(store_maker.target(store), other)
    assert other.find_run(run.run_id).prompt == TRICKY
    assert other.get_dataset(TRICKY) == store.get_dataset(TRICKY)
    assert [tuple(r) for r in other.score_rows(TRICKY)] == [score]
    export = store.export(tmp_path / "runs.jsonl", experiment=exp)
    assert export.is_file()

    if store_backend == "postgresql":
        _check_sent(sent_sql)


def _check_sent(sent: list[tuple[str, Any]]) -> None:
    """psycopg was handed only %s placeholders, one per parameter; ADBC $1..$n."""
    assert len(sent) > 20  # the spy saw the workload
    adbc = [(sql, extra) for sql, extra in sent if sql.startswith("ADBC ")]
    assert adbc, "the ADBC reader was not used"
    for sql, (bound, table) in adbc:
        assert table is not None, sql  # read column-wise, not the psycopg fallback
        assert "?" not in sql and "%" not in sql
        assert [int(n) for n in re.findall(r"\$(\d+)", sql)] == list(range(1, len(bound) + 1))
    for sql, params in sent:
        if sql.startswith("ADBC "):
            continue
        assert "?" not in sql, sql
        assert TRICKY not in sql  # values are bound, never in the text
        if not params:
            continue  # sent without parameters: psycopg leaves its % alone
        assert "%" not in sql.replace("%s", ""), sql
        for row in params:  # each execution's parameters
            assert sql.count("%s") == len(row), sql

