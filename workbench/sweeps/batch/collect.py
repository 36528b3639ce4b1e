"""Collecting an ended batch: its answer lines become rows of the sweep, exactly once.

The collection is claimed in the store first, so two kernels waiting on one batch (a
colleague's, a restarted one) log each answer once. A line that cannot be read, or a
request a completed batch has no line for, becomes an error row (sent again by the next
run) and every readable answer is kept; of two lines for one request, an answer wins.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from workbench.api.chat_api import chat_route
from workbench.api.wire import Endpoint, Reply
from workbench.calls.dispatch import attempt_of
from workbench.calls.session import PreparedChat, one_line
from workbench.core.errors import APIStatusError, WorkbenchError
from workbench.core.record import new_run_id
from workbench.sweeps.batch import jsonl
from workbench.sweeps.batch.ledger import BatchRow, Ledger

if TYPE_CHECKING:
    from workbench.sweeps.batch.api import BatchAPI
    from workbench.sweeps.batch.protocol import BatchedSweep
    from workbench.sweeps.plan import PlannedRun

__all__ = ["BatchCollector", "MissingAnswersWarning", "NEVER_RAN"]

# Error-file codes of requests an expired or cancelled batch never ran: no call was made,
# so no row; the point stays pending and the next run sends it.
NEVER_RAN = frozenset({"batch_expired", "batch_cancelled"})
# Collecting a batch is claimed in the store's claims table (as live sweeps claim points),
# under a key no request hash can take, so two kernels waiting on one batch log each
# answer once. The claim is renewed every COLLECT_RENEW answers; one older than
# COLLECT_STALE_S is a kernel that died while collecting, and is taken over.
COLLECT_INDEX = -1
COLLECT_STALE_S = 600.0
COLLECT_RENEW = 500


class MissingAnswersWarning(UserWarning):
    """A batch ended without a usable answer for some of its requests (absent from its
    files, or on a line that cannot be read): they are error rows, sent again next run."""


def _seconds_between(start: str, end: str | None, clock_now: datetime) -> float:
    begun = datetime.fromisoformat(start)
    ended = clock_now if end is None else datetime.fromisoformat(end)
    return max((ended - begun).total_seconds(), 0.0)


class BatchCollector:
    """Collects one ended batch of one sweep."""

    def __init__(self, sweep: BatchedSweep, ledger: Ledger, api: BatchAPI) -> None:
        self.sweep = sweep
        self.session = sweep.session
        self.ledger = ledger
        self.api = api

    def collect(self, row: BatchRow) -> bool:
        """Log every answer of an ended batch as a row of the sweep, once whoever collects:
        the collection is claimed in the store first. False while another kernel holds
        the claim (its rows are coming); True once the batch is collected."""
        store = self.session.store
        key, token = f"batch:{row.batch_id}", new_run_id()
        if not store.claim(key, COLLECT_INDEX, token, COLLECT_STALE_S):
            return False
        try:
            current = self.ledger.get(row.batch_id)
            if current is None or not current.open:
                return True  # collected by the kernel that held the claim before us
            if not self._collect_claimed(row, key, token):
                return False  # our claim went stale and was taken over: theirs now
            self.ledger.mark_collected(row.batch_id)
            return True
        finally:
            with contextlib.suppress(Exception):  # a stale claim is taken over anyway
                store.release(key, COLLECT_INDEX, token)

    def _collect_claimed(self, row: BatchRow, key: str, token: str) -> bool:
        answers, unreadable = self._read_files(row)
        best = jsonl.best_answers(answers)
        plan = {p.identity: p for p in self.sweep._plan}
        done = self._logged(row)
        latency = _seconds_between(row.created_at, row.ended_at, datetime.now().astimezone())
        endpoint = Endpoint("POST", f"batch {row.batch_id}")
        missing: list[PlannedRun] = []
        for count, custom_id in enumerate(row.ids, 1):
            if count % COLLECT_RENEW == 0 and not self.session.store.renew_claim(
                key, COLLECT_INDEX, token
            ):
                return False
            identity = jsonl.identity_of(custom_id)
            planned = plan.get(identity) if identity is not None else None
            if planned is None or planned.identity in done:
                continue  # not this sweep's plan, or logged by a collection cut short
            answer = best.get(custom_id)
            if answer is None:
                # A completed batch ran every request: one with no answer in its files is
                # named and sent again. Expired or cancelled ones may never have run it.
                if row.status == "completed":
                    missing.append(planned)
                    self._log_error(
                        attempt_of(planned.prepared),
                        f"batch {row.batch_id}: its output has no answer for this request "
                        f"({custom_id}); run the sweep again to send it",
                        latency,
                    )
                continue
            if answer.error_code in NEVER_RAN:
                continue
            if answer.error_code == jsonl.UNREADABLE:
                missing.append(planned)
            self._log(planned, answer, latency, endpoint, row)
        if missing or unreadable:
            self._warn_missing(row, missing, unreadable)
        return True

    def _read_files(self, row: BatchRow) -> tuple[list[jsonl.Answer], list[str]]:
        """The answers of the batch's output and error files; what could not be read."""
        api = self.api
        answers: list[jsonl.Answer] = []
        unreadable: list[str] = []
        for file_id in (row.output_file_id, row.error_file_id):
            if not file_id:
                continue
            try:
                text = api.content(file_id)
            except APIStatusError as exc:
                if exc.status_code != 404:  # 404: gone (deleted, or past retention)
                    raise
                unreadable.append(f"file {file_id} is gone (HTTP 404)")
                continue
            found, bad = jsonl.read_answers(text)
            answers += found
            unreadable += [f"file {file_id}: {problem}" for problem in bad]
        return answers, unreadable

    def _warn_missing(
        self, row: BatchRow, missing: Sequence[PlannedRun], unreadable: Sequence[str]
    ) -> None:
        named = ", ".join(repr((p.prepared.record.prompt or "")[:40]) for p in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        problems = f" ({'; '.join(unreadable[:3])})" if unreadable else ""
        message = (
            f"batch {row.batch_id} {row.status} without a usable answer for "
            f"{len(missing)} of {len(row.ids)} requests{problems}"
            + (f": {named}{more}" if missing else "")
            + "; they are error rows now, and the next run of the sweep sends them again"
        )
        self.sweep._shared.update(message=message[:300])
        warnings.warn(message, MissingAnswersWarning, stacklevel=2)

    def _logged(self, row: BatchRow) -> set[tuple[str, int]]:
        """Points of the sweep with an answer, or with an error row from this batch."""
        runs = self.session.store.runs(sweep_id=self.sweep.sweep_id)
        if runs.empty:
            return set()
        ours = runs["error"].fillna("").astype(str).str.startswith(f"batch {row.batch_id}:")
        kept = runs[(runs["status"] == "ok") | ours]
        return set(zip(kept["request_hash"], kept["sample_index"].astype(int), strict=True))

    def _log(
        self,
        planned: PlannedRun,
        answer: jsonl.Answer,
        latency: float,
        endpoint: Endpoint,
        row: BatchRow,
    ) -> None:
        prepared = attempt_of(planned.prepared)
        prepared.record.mode = "batch"
        if answer.ok and answer.body is not None:
            try:
                reply = Reply(endpoint, answer.body, {}, 0)  # read as its API answers
                result = chat_route(prepared.body).result(reply, latency_s=latency)
            except WorkbenchError as exc:
                self._log_error(prepared, f"batch {row.batch_id}: {one_line(exc)}", latency)
                return
            self.session.finish_ok(prepared, result)
            return
        self._log_error(prepared, f"batch {row.batch_id}: {answer.error}", latency)

    def _log_error(self, prepared: PreparedChat, message: str, latency: float) -> None:
        prepared.record.mode = "batch"
        record = prepared.record
        record.status = "error"
        record.error = message[:500]
        record.latency_s = latency
        self.session.save(record)  # a row the store refuses is kept beside it, with a warning
