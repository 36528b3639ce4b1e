"""Scoring speed: 100,000 stored runs scored by contains, regex and is_json, scores written.

Figures: ``wb.score`` of the runs (scores computed and stored in the scores table) as a
ratio to a bare Python loop applying the same three functions to the same outputs
(target ≤ 3 x, store writes included); and a re-score of the same runs with the same
scorers, which finds every score stored (target: under 5 % of the first scoring).

    .venv/bin/python bench/scoring.py [--rows 100000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from common import print_profile, record

import workbench as wb
from workbench.core.record import COLUMNS, RunRecord, new_run_id
from workbench.store.frames import record_to_row


def output_of(i: int) -> str:
    """A third JSON, the rest prose; some name Paris, some carry a year."""
    if i % 3 == 0:
        return json.dumps({"city": "Paris" if i % 2 else "Lyon", "rank": i})
    return f"Answer {i}: the capital is {'Paris' if i % 5 else 'Rome'}, since {1800 + i % 200}."


def fill(store_path: Path, rows: int) -> None:
    wb.configure(store=store_path)
    from workbench.calls.session import get_session

    store = get_session().store
    insert = f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    batch = []
    for i in range(rows):
        run = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini", experiment="bench",
                        run_id=new_run_id(), prompt=f"Question {i}", output=output_of(i),
                        request_hash=f"{i:064x}")
        batch.append(record_to_row(run))
    store._write(lambda conn: conn.executemany(insert, batch))


def bare_loop(outputs: list[str]) -> list[tuple[bool, bool, bool]]:
    """The floor: the same three tests, no workbench, nothing stored."""
    pattern = re.compile(r"\b1[89]\d\d\b")
    verdicts = []
    for text in outputs:
        try:
            json.loads(text)
            parsed = True
        except ValueError:
            parsed = False
        verdicts.append(("paris" in text.casefold(), pattern.search(text) is not None, parsed))
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the first scoring")
    args = parser.parse_args()
    scorers = [wb.scorers.contains("paris"), wb.scorers.regex(r"\b1[89]\d\d\b"),
               wb.scorers.is_json()]

    with tempfile.TemporaryDirectory() as scratch:
        fill(Path(scratch) / "scoring.db", args.rows)
        runs = wb.runs(experiment="bench")
        outputs = runs["output"].tolist()
        assert len(runs) == args.rows

        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        floor = bare_loop(outputs)
        bare = time.perf_counter() - start
        bare_cpu = time.process_time() - cpu

        # The floor with writes: the same verdicts stored by a bare executemany, so a
        # missed target can be told apart into "scoring overhead" and "SQLite's cost".
        conn = sqlite3.connect(Path(scratch) / "floor.db", isolation_level=None)
        conn.execute("CREATE TABLE scores (run_id TEXT NOT NULL, scorer TEXT NOT NULL,"
                     " scorer_id TEXT NOT NULL, value REAL, passed INTEGER, reason TEXT NOT NULL,"
                     " judge_run_id TEXT, created_at TEXT NOT NULL,"
                     " PRIMARY KEY (scorer_id, run_id)) WITHOUT ROWID")
        run_ids = runs["run_id"].tolist()
        gc.collect()
        start = time.perf_counter()
        verdicts = bare_loop(outputs)
        conn.execute("BEGIN")
        for k, name in enumerate(("contains", "regex", "is_json")):
            conn.executemany(
                "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                ((rid, name, name + ":0", float(v[k]), int(v[k]), "r", "t")
                 for rid, v in zip(run_ids, verdicts, strict=True)),
            )
        conn.execute("COMMIT")
        floor_with_writes = time.perf_counter() - start
        conn.close()

        gc.collect()
        profiler = cProfile.Profile() if args.profile else None
        start, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        first = wb.score(runs, scorers)
        if profiler is not None:
            profiler.disable()
        scoring = time.perf_counter() - start
        scoring_cpu = time.process_time() - cpu
        assert len(first) == 3 * args.rows
        by_scorer = first.pivot(index="run_id", columns="scorer", values="passed")
        by_scorer = by_scorer.loc[runs["run_id"]]
        mine = list(zip(by_scorer["contains"], by_scorer["regex"], by_scorer["is_json"],
                        strict=True))
        assert [tuple(bool(v) for v in row) for row in mine] == floor  # same verdicts

        gc.collect()
        start = time.perf_counter()
        again = wb.score(runs, scorers)
        rescoring = time.perf_counter() - start
        assert len(again) == 3 * args.rows
        wb.configure(store=Path(scratch) / "other.db")  # let the temporary folder go

    ratio = scoring / bare
    share = rescoring / scoring
    # CPU time too: on a machine shared with other jobs, waiting for a core inflates the
    # wall-clock figures of either side unevenly; the target is on wall-clock time.
    cpu_ratio = scoring_cpu / bare_cpu
    print(f"bare loop {bare:.3f} s (with bare sqlite3 writes {floor_with_writes:.3f} s); "
          f"wb.score {scoring:.3f} s ({ratio:.2f} x); "
          f"re-score {rescoring:.3f} s ({share:.1%} of the first); "
          f"CPU time {scoring_cpu:.3f} s / {bare_cpu:.3f} s = {cpu_ratio:.2f} x")
    record(
        "scoring",
        f"{args.rows:,} runs x 3 scorers (contains, regex, is_json): wb.score {scoring:.2f} s"
        f" = {ratio:.2f} x a bare Python loop ({bare:.3f} s), scores stored (target ≤ 3 x: "
        f"{'met' if ratio <= 3 else 'MISSED'}); the loop plus a bare sqlite3 executemany of"
        f" the same rows {floor_with_writes:.2f} s = {floor_with_writes / bare:.2f} x;"
        f" re-score {rescoring:.3f} s = {share:.1%} of"
        f" the first (target < 5 %: {'met' if share < 0.05 else 'MISSED'}); CPU time"
        f" {scoring_cpu:.2f} s / {bare_cpu:.2f} s = {cpu_ratio:.2f} x",
    )
    if profiler is not None:
        print_profile(profiler)


if __name__ == "__main__":
    main()
