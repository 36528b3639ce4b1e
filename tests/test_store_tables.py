"""The tables the scoring, review and batch packages keep in the store (scores, datasets,
score_history, preferences, batches), on both backends: a real SQLite file and a real,
throw-away PostgreSQL server (tests/postgres_server.py). Each result is compared with the
SQLite store's, dtypes included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.record import RunRecord
from workbench.notebook.review.store import add_preference, rate, read_preferences, score_history
from workbench.scoring.datasets import load_dataset, save_dataset
from workbench.scoring.table import NewScores, known_scores, latest_ids, read_scores, write_scores
from workbench.store import SQLiteStore, open_store
from workbench.store.copying import import_runs
from workbench.store.frames import record_to_row
from workbench.sweeps.batch.api import BatchInfo
from workbench.sweeps.batch.ledger import BatchRow, Ledger

CASES = [{"city": "Paris", "expected": "France"}, {"city": "Rome", "expected": "Italy"}]


def opened(backend: str, request: pytest.FixtureRequest, folder: Path) -> Any:
    if backend == "sqlite":
        return SQLiteStore(folder / "tables.db")
    return open_store(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with opened(str(request.param), request, tmp_path) as store:
        yield store


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A SQLite store to compare results with."""
    with SQLiteStore(tmp_path / "reference.db") as store:
        yield store


def scores_of(scorer_id: str, run_ids: list[str], values: list[float | None],
              passed: list[bool | None]) -> NewScores:
    return NewScores(scorer=scorer_id.split(":")[0], scorer_id=scorer_id, run_ids=run_ids,
                     values=values, passed=passed, reasons=["why"] * len(run_ids),
                     judge_run_ids=[None] * len(run_ids))


def without_times(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_at")])


# ---------------------------------------------------------------- datasets


def test_datasets_round_trip_with_the_same_dtypes(
    store: Any, reference: SQLiteStore
) -> None:
    for target in (store, reference):
        first = save_dataset(target, "capitals", CASES)
        save_dataset(target, "capitals", [*CASES, {"city": "Lima", "expected": "Peru"}])
        save_dataset(target, "capitals", CASES)  # stored again: the latest once more
        assert load_dataset(target, "capitals").version == first.version
    frame, expected = store.datasets(), reference.datasets()
    assert list(frame["rows"]) == [2, 3]
    pd.testing.assert_frame_equal(without_times(frame), without_times(expected))
    assert frame.dtypes.to_dict() == expected.dtypes.to_dict()
    # (in the order stored on SQLite; PostgreSQL keeps no such order for updated rows)
    assert sorted(row[:4] for row in store.dataset_rows()) == sorted(
        row[:4] for row in reference.dataset_rows()
    )
    assert store.put_dataset_rows(reference.dataset_rows()) == 2  # upserts count as written


def test_an_export_brings_its_datasets_into_either_store(
    store: Any, reference: SQLiteStore, tmp_path: Path
) -> None:
    stored = save_dataset(reference, "capitals", CASES)
    record = RunRecord(kind="chat", provider="openai", model="m", experiment="geo",
                       request_hash="h", output="France")
    record.dataset, record.dataset_version = "capitals", stored.version
    reference.append(record)
    exported = reference.export(tmp_path / "geo.jsonl", experiment="geo")
    assert import_runs(store, exported) == 1
    assert load_dataset(store, "capitals").rows == CASES
    again = store.export(tmp_path / "again.parquet", experiment="geo")  # and out again
    sidecar = again.with_name(again.name + ".datasets.jsonl")
    assert json.loads(sidecar.read_text(encoding="utf-8"))["rows"] == CASES


# ---------------------------------------------------------------- scores


def test_scores_round_trip_and_replace_with_the_same_dtypes(
    store: Any, reference: SQLiteStore
) -> None:
    frames = []
    for target in (store, reference):
        write_scores(target, scores_of("contains:1", ["r1", "r2", "r3"], [1.0, 0.0, None],
                                       [True, False, None]))
        write_scores(target, scores_of("contains:1", ["r2"], [1.0], [True]))  # fresh=True
        write_scores(target, scores_of("judge:9", ["r1"], [4.0], [None]))
        frames.append(read_scores(target))
        assert latest_ids(target) == {"contains": "contains:1", "judge": "judge:9"}
    frame, expected = frames
    assert frame.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(without_times(frame), without_times(expected))
    by_run = frame[frame.scorer_id.eq("contains:1")].set_index("run_id")
    assert by_run.loc["r2", "value"] == 1.0 and by_run.loc["r2", "passed"]


def test_a_score_another_writer_replaced_is_read_again(
    request: pytest.FixtureRequest, tmp_path: Path, backend_name: str
) -> None:
    # Two stores on one database: two kernels. The count of scores stays the same when
    # one replaces a score (fresh=True); the other must still see the new value.
    with opened(backend_name, request, tmp_path) as mine:
        target = getattr(mine, "path", None) or mine.url.uri_with_password()
        with open_store(target) as theirs:
            write_scores(mine, scores_of("contains:1", ["r1", "r2"], [1.0, 0.0],
                                         [True, False]))
            frame, ids = known_scores(mine, "contains:1")
            assert ids == {"r1", "r2"}
            write_scores(theirs, scores_of("contains:1", ["r2"], [1.0], [True]))
            frame, _ = known_scores(mine, "contains:1")
            assert frame.set_index("run_id").loc["r2", "value"] == 1.0
            write_scores(theirs, scores_of("contains:1", ["r3"], [0.5], [None]))
            assert known_scores(mine, "contains:1")[1] == {"r1", "r2", "r3"}


@pytest.fixture(params=["sqlite", "postgres"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------- ratings and preferences


def test_ratings_history_and_preferences_with_the_same_dtypes(
    store: Any, reference: SQLiteStore
) -> None:
    results = []
    for target in (store, reference):
        rate(target, "r1", rater="ana", value=2.0, passed=False, reason="too short")
        rate(target, "r1", rater="ana", value=5.0, passed=True, reason="fine after all")
        add_preference(target, "b1", "c1", "baseline", rater="ana")
        add_preference(target, "b1", "c1", "candidate", rater="ana", reason="changed my mind")
        add_preference(target, "b2", "c2", "tie", rater="bo")
        results.append((read_scores(target), score_history(target, run_id="r1"),
                        read_preferences(target), read_preferences(target, latest=False)))
    for got, expected in zip(*results, strict=True):
        assert got.dtypes.to_dict() == expected.dtypes.to_dict()
        pd.testing.assert_frame_equal(without_times(got), without_times(expected))
    scores, history, latest, every = results[0]
    assert scores[["value", "reason"]].values.tolist() == [[5.0, "fine after all"]]
    assert history[["value", "passed", "reason"]].values.tolist() == [[2.0, False, "too short"]]
    assert latest["winner"].tolist() == ["candidate", "tie"]
    assert every["winner"].tolist() == ["baseline", "candidate", "tie"]  # in order given


# ---------------------------------------------------------------- Batch API batches


def test_the_ledger_keeps_batches(store: Any, reference: SQLiteStore) -> None:
    frames = []
    for target in (store, reference):
        ledger = Ledger(target)
        ledger.add(BatchRow(batch_id="batch_1", provider="openai", sweep_id="s1",
                            experiment="exp", input_file_id="file-1", status="validating",
                            created_at="2026-01-01T00:00:00.000000Z",
                            custom_ids=json.dumps(["h:0", "h:1"])))
        ledger.update(BatchInfo(id="batch_1", status="completed", input_file_id="file-1",
                                output_file_id="file-2", error_file_id=None, created_at=None,
                                ended_at=datetime(2026, 1, 1, 1, tzinfo=timezone.utc),
                                total=2, completed=2, failed=0, message=None))
        (row,) = ledger.for_sweep("s1")
        assert row.open and row.terminal and row.ids == ["h:0", "h:1"] and row.total == 2
        ledger.mark_collected("batch_1")
        assert not ledger.for_sweep("s1")[0].open and ledger.for_sweep("other") == []
        frames.append(ledger.frame("s1").drop(columns=["collected_at"]))
    pd.testing.assert_frame_equal(*frames)


# ---------------------------------------------------------------- through wb


@pytest.mark.usefixtures("backend")
def test_scores_agreement_and_passes_through_wb(start_api: Any) -> None:
    from loopback import chat_reply

    start_api(lambda request: chat_reply("Paris", prompt_tokens=5))
    s = wb.sweep("Capital of {{c}}?", vars={"c": ["France", "Italy"]}, model="gpt-4o-mini",
                 max_tokens=4, experiment="caps", scorers=[wb.scorers.contains("paris")])
    s.run(progress=False)
    verdicts = dict(zip(s.df.run_id, (True, False), strict=True))
    for run_id, verdict in verdicts.items():
        rate(get_session().store, run_id, rater="ana", value=float(verdict), passed=verdict)
    agreement = wb.agreement("contains", "human")
    assert agreement.n == 2
    assert agreement.disagreements[["output", "contains", "human"]].values.tolist() == [
        ["Paris", 1.0, 0.0]]
    runs = wb.runs(experiment="caps")
    assert dict(zip(runs.run_id, runs["score:human"], strict=True)) == {
        run_id: float(verdict) for run_id, verdict in verdicts.items()}


@pytest.mark.integration
def test_a_scored_dataset_sweep_on_the_local_model_against_postgres(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    from workbench.store.postgres import PostgresStore

    monkeypatch.setenv("WORKBENCH_STORE", pg_url)
    stored = wb.dataset("capitals", CASES)
    grade = wb.scorers.judge("Does the answer name {{expected}}?", max_tokens=40)

    def sweep() -> wb.Sweep:
        return wb.sweep("Answer with one word. {{city}} is the capital of which country?",
                        vars=wb.dataset("capitals"), seed=1, max_tokens=4, experiment="geo",
                        scorers=[wb.scorers.contains(), grade])

    df = sweep().run(progress=False)
    assert isinstance(get_session().store, PostgresStore)
    assert len(df) == 2 and (df.status == "ok").all() and (df.provider == "local").all()
    assert (df.dataset_version == stored.version).all()
    assert df["score:contains"].notna().all() and "score:judge" in df.columns
    scores = wb.scores()
    assert sorted(scores.scorer) == ["contains", "contains", "judge", "judge"]
    judged = wb.runs(experiment="geo:judge")
    assert set(scores.judge_run_id.dropna()) == set(judged.run_id)
    sent = int((~wb.runs().cache_hit).sum())

    # Scoring again, and the whole cell again, send nothing and store no new score.
    again = wb.score("geo", [wb.scorers.contains(), grade])
    columns = ["run_id", "scorer_id", "value", "reason"]
    pd.testing.assert_frame_equal(
        again.sort_values(columns[:2]).reset_index(drop=True)[columns],
        scores.sort_values(columns[:2]).reset_index(drop=True)[columns],
    )
    sweep().run(progress=False)
    assert int((~wb.runs().cache_hit).sum()) == sent
    assert len(wb.runs(experiment="geo:judge")) == len(judged) and len(wb.scores()) == 4

    panel = wb.ReviewPanel("geo", rater="ana")
    panel.rate("pass")
    panel.rate("fail")
    human = wb.scores(scorer="human")
    assert human[["scorer_id", "value", "passed"]].values.tolist() == [
        ["human:ana", 1.0, True], ["human:ana", 0.0, False]]
    assert sorted(wb.runs(experiment="geo")["score:human"].tolist()) == [0.0, 1.0]
    get_session().close_store()  # before the database is dropped


def test_the_stores_own_table_methods_on_both_backends(store: Any) -> None:
    # The protocol's methods for these tables, called as scoring, review and batches call
    # them (store/scores.py and store/batches.py, written once for both backends).
    assert store.claim("h" * 64, -1, "kernel-a", 600.0)
    assert store.renew_claim("h" * 64, -1, "kernel-a")
    assert not store.renew_claim("h" * 64, -1, "kernel-b")  # not its claim
    store.release("h" * 64, -1, "kernel-a")
    assert not store.renew_claim("h" * 64, -1, "kernel-a")  # released: nothing to renew

    # Text with the placeholder characters of either driver goes in and out unchanged.
    row = ("r1", "r2", "tie", "ann", "why? 100% %s $1", "2026-01-01T00:00:00+00:00")
    store.put_preference(row)
    assert [tuple(r) for r in store.preference_rows()] == [row]

    store.put_scores([("r1", "s", "s:1", 0.5, None, "?", None, "2026-01-01T00:00:00+00:00")])
    assert store.score_values("s:1") == [("r1", 0.5, None)]
    assert store.score_count("s:1") == (1, "2026-01-01T00:00:00+00:00")
    assert store.keep_score_history("s:1", "r1", "2026-01-02T00:00:00+00:00") == 1
    assert store.keep_score_history("s:1", "nope", "2026-01-02T00:00:00+00:00") == 0
    assert [r[-1] for r in store.score_history_rows("r1")] == ["2026-01-02T00:00:00+00:00"]

    with pytest.raises(ValueError, match="cannot set batch column"):
        store.update_batch("b", {"status = 'x' --": "y"})  # a name is never taken as SQL
    assert store.update_batch("no-such-batch", {"status": "failed"}) == 0


def test_run_texts_keep_the_order_asked_across_chunks(store: Any) -> None:
    records = [RunRecord(kind="chat", provider="p", model="m", prompt=f"p{i}", output=f"o{i}",
                         request_hash=f"{i:064x}") for i in range(1_203)]
    store.add_rows([record_to_row(r) for r in records])
    wanted = [r.run_id for r in reversed(records)] + ["missing"]
    texts = store.run_texts(wanted)
    assert [t[0] for t in texts] == wanted[:-1]
    assert texts[0][1:] == ("p1202", "o1202")
