"""A sweep through the Batch API: submit its pending calls, poll with backoff, collect.

Each answer becomes a normal row of the sweep (``mode`` 'batch', priced at the batch
price, ``latency_s`` the time the batch took). Every batch is in the store's ``batches``
table from the moment it exists, so a restarted kernel collects it with ``s.wait()`` or
by running the cell again. Timing is a pure rule of an injectable clock and sleep, as in
:mod:`workbench.api.ratelimit`; tests drive both by hand.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from workbench.calls.dispatch import attempt_of
from workbench.calls.progress import ProgressBar, SweepProgress
from workbench.calls.session import PreparedChat, one_line
from workbench.core.errors import (
    APIError,
    APIStatusError,
    ConfigurationError,
    InvalidInputError,
    WorkbenchError,
)
from workbench.store.rows import iso_utc
from workbench.sweeps.batch import jsonl
from workbench.sweeps.batch.api import BatchAPI, BatchInfo
from workbench.sweeps.batch.collect import NEVER_RAN, BatchCollector, MissingAnswersWarning
from workbench.sweeps.batch.ledger import BatchRow, Ledger, now_iso

if TYPE_CHECKING:
    import pandas as pd

    from workbench.api.providers import Provider
    from workbench.sweeps.batch.protocol import BatchedSweep

__all__ = [
    "SweepBatches",
    "SharedBatchWarning",
    "MissingAnswersWarning",
    "poll_delay",
    "NEVER_RAN",
]

ProgressCallback = Callable[[SweepProgress], None]
ApiFactory = Callable[["Provider"], BatchAPI]

# Polling: soon at first (a small batch may finish in a minute), then every few minutes
# at most, since a batch takes up to 24 hours and each poll is a request.
POLL_FIRST_S = 2.0
POLL_FACTOR = 1.5
POLL_MAX_S = 300.0


class SharedBatchWarning(UserWarning):
    """A batch submitted on a shared store: points are not claimed, so a colleague running
    the same points at the same time may send them too."""


# Live sweeps claim each point in a shared store before sending it (dispatch.py), so two
# people running one grid send each point once. A batch holds its points for up to a day
# and is answered all at once; claiming them would lock colleagues (and this sweep's own
# live resume after an expired batch) out for that long, so it does not claim, and says so.
SHARED_BATCH_MESSAGE = (
    "Batch submitted on the shared store {store}: its points are not claimed, so anyone "
    "running the same points before it is collected sends them again (and pays for them). "
    "Run shared grids live (s.run()) when colleagues may run them too."
)


def poll_delay(polls: int) -> float:
    """Seconds to wait after the ``polls``-th poll (0-based) of batches not yet ended."""
    return float(min(POLL_FIRST_S * POLL_FACTOR**polls, POLL_MAX_S))


class SweepBatches:
    """The Batch API side of one sweep (a :class:`~.protocol.BatchedSweep`)."""

    def __init__(
        self,
        sweep: BatchedSweep,
        *,
        api_factory: ApiFactory | None = None,
        sleep: Callable[[float], object] | None = None,
        max_requests: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.sweep = sweep
        self.session = sweep.session
        self._api_factory = api_factory or self._default_api
        self._apis: dict[str, BatchAPI] = {}
        self._stop = threading.Event()
        self._failed: list[BatchRow] = []  # failed batches collected by the current wait
        self._sleep = sleep or self._stop.wait
        # None: the module's limits when used (tests lower them with monkeypatch).
        self.max_requests = max_requests
        self.max_bytes = max_bytes

    # -- what there is ------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        """The store's batches table (on SQLite or PostgreSQL)."""
        return Ledger(self.session.store)

    def rows(self) -> list[BatchRow]:
        return self.ledger.for_sweep(self.sweep.sweep_id)

    def open_rows(self) -> list[BatchRow]:
        return [row for row in self.rows() if row.open]

    def frame(self) -> pd.DataFrame:
        return self.ledger.frame(self.sweep.sweep_id)

    # -- running ------------------------------------------------------------------

    def run(
        self, *, progress: bool = True, on_progress: ProgressCallback | None = None
    ) -> pd.DataFrame:
        """Submit what is pending unless batches are still open, then wait for them all."""
        if self.sweep.running:  # its live calls would be sent a second time in a batch
            raise InvalidInputError(
                f"sweep {self.sweep.sweep_id} is running live: s.wait() for it, or s.stop()"
            )
        if not self.open_rows():
            self.submit()
        self.wait(progress=progress, on_progress=on_progress)
        return self.sweep.df

    def submit(self) -> list[BatchRow]:
        """Write, upload and create batches for the runs still missing; replay what the
        table already has. Refusals (local model, budget, no key) come before any upload."""
        sweep = self.sweep
        work = sweep._work()
        waiting = {i for row in self.open_rows() for i in jsonl.identities(row.ids)}
        jobs = [
            job
            for job in work.send
            if (job.prepared.record.request_hash, job.prepared.record.sample_index) not in waiting
        ]
        send = [job.prepared for job in jobs]
        self._check(send)
        # The one budget (calls/budget) refuses as for a live sweep, at the batch price: a
        # spent session budget, calls of unknown price, a cost above either budget.
        sweep._refuse_over_budget(replace(work, send=jobs), batch=True)
        if send:
            self.session.store.check_writable(p.record for p in send)
            for provider in {p.provider for p in send}:
                provider.api_key()  # a missing key fails now, naming its variable
        for prepared in work.replay:
            self.session.cached(attempt_of(prepared))
        submitted: list[BatchRow] = []
        for (provider, _endpoint), group in _by_provider(send).items():
            submitted += self._submit_group(provider, group)
        store = self.session.store
        if submitted and store.shared:
            warnings.warn(
                SHARED_BATCH_MESSAGE.format(store=store.label), SharedBatchWarning, stacklevel=4
            )
        return submitted

    def _check(self, send: Sequence[PreparedChat]) -> None:
        for provider in {p.provider for p in send}:
            if provider.local:
                raise InvalidInputError(
                    "The local model has no Batch API: run this sweep live (s.run(), or "
                    "%%chat without --batch)"
                )

    def _submit_group(self, provider: Provider, group: Sequence[PreparedChat]) -> list[BatchRow]:
        api = self._api(provider)
        ids = [jsonl.custom_id_of((p.record.request_hash, p.record.sample_index)) for p in group]
        lines = [jsonl.request_line(i, p.body) for i, p in zip(ids, group, strict=True)]
        files = jsonl.split_lines(
            lines,
            max_requests=self.max_requests or jsonl.MAX_BATCH_REQUESTS,
            max_bytes=self.max_bytes or jsonl.MAX_BATCH_BYTES,
        )
        rows = []
        start = 0
        for number, content in enumerate(files, 1):
            chunk_ids = ids[start : start + len(content)]
            start += len(content)
            name = f"sweep-{self.sweep.sweep_id}-{number}.jsonl"
            try:
                file_id = api.upload(name, b"".join(content))
            except APIStatusError as exc:
                if exc.status_code in (404, 405, 501):
                    raise ConfigurationError(
                        f"Provider {provider.name!r} has no Batch API (its /files answered "
                        f"HTTP {exc.status_code}): run this sweep live (s.run(), or %%chat "
                        "without --batch)"
                    ) from None
                raise
            # The input file's id names this submission: a create whose answer is lost is
            # found by it (and the metadata) instead of being sent twice (api.create).
            info = api.create(file_id, {"workbench_sweep": self.sweep.sweep_id},
                              api_endpoint=jsonl.endpoint_of(group[0].body))
            row = BatchRow(
                batch_id=info.id,
                provider=provider.name,
                sweep_id=self.sweep.sweep_id,
                experiment=self.sweep.experiment,
                input_file_id=file_id,
                status=info.status,
                created_at=iso_utc(info.created_at) if info.created_at else now_iso(),
                custom_ids=json.dumps(chunk_ids),
                total=info.total,
            )
            self.ledger.add(row)  # at once: a kernel that dies now still finds it
            rows.append(row)
        return rows

    def wait(
        self,
        *,
        progress: bool = True,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> bool:
        """Poll the open batches with backoff and collect each that has ended; True when
        none is left open. Ctrl-C (or :meth:`stop`) stops waiting, not the batches."""
        self._stop.clear()
        deadline = None if timeout is None else clock() + timeout
        shared = self.sweep._shared
        total = len(self.sweep)
        bar = ProgressBar(total, "batch") if progress else None
        shared.update(total=total, state="running", message="", sent=0, in_flight=0)
        polls = 0
        self._failed = []
        try:
            while True:
                still_open = self.poll()
                self._report(still_open, on_progress)
                if bar is not None:
                    bar.show(shared.snapshot())
                if not still_open:
                    self._raise_if_failed()
                    if self.sweep.scoring is not None:  # the sweep's scorers, as live runs get
                        self.sweep.scoring.finish(self.sweep._rows())
                    shared.update(state="done")
                    return True
                delay = poll_delay(polls)
                polls += 1
                if deadline is not None:
                    left = deadline - clock()
                    if left <= 0:
                        return False
                    delay = min(delay, left)
                self._sleep(delay)
                if self._stop.is_set():
                    shared.update(state="stopped", message=self._detached())
                    return False
        except KeyboardInterrupt:
            shared.update(state="stopped", message=self._detached())
            raise
        except WorkbenchError as exc:
            shared.update(state="failed", message=one_line(exc)[:300])
            raise
        finally:
            if bar is not None:
                bar.show(shared.snapshot())
                bar.close()

    def _raise_if_failed(self) -> None:
        """A batch the provider refused ran nothing: say so, once, in one line."""
        if self._failed:
            row = self._failed[0]
            raise APIError(
                f"batch {row.batch_id} failed ({row.message or 'no reason given'}): its "
                f"{len(row.ids)} runs were not sent; run again to submit them anew, or "
                "s.run() to send them live"
            )

    def _detached(self) -> str:
        return "the batch goes on: s.wait() (or the cell again) collects it"

    def stop(self) -> None:
        """Stop waiting (any thread); the batches go on at the provider."""
        self._stop.set()

    def poll(self) -> list[BatchRow]:
        """Ask the API about every open batch, collect those that have ended; the rows
        still open."""
        still_open = []
        for row in self.open_rows():
            if not row.terminal:
                info = self._api_for(row).retrieve(row.batch_id)
                self.ledger.update(info)
                row = _updated(row, info)
            if row.terminal and self.collect(row):
                if row.status == "failed":
                    self._failed.append(row)
            else:  # running, or being collected by another kernel: its rows are coming
                still_open.append(row)
        return still_open

    def cancel(self) -> list[BatchRow]:
        """Ask the API to cancel every batch of the sweep still running; what finished is
        collected by the next :meth:`wait`."""
        cancelled = []
        for row in self.open_rows():
            if not row.terminal:
                api = self._api_for(row)
                try:
                    info = api.cancel(row.batch_id)
                except APIStatusError as exc:
                    if exc.status_code != 409:
                        raise
                    info = api.retrieve(row.batch_id)  # it ended meanwhile: wait collects it
                self.ledger.update(info)
                cancelled.append(_updated(row, info))
        return cancelled

    # -- collecting -----------------------------------------------------------------

    def collect(self, row: BatchRow) -> bool:
        """Log every answer of an ended batch as a row of the sweep, once whoever collects
        (:mod:`.collect`); False while another kernel is collecting it."""
        return BatchCollector(self.sweep, self.ledger, self._api_for(row)).collect(row)

    # -- plumbing -------------------------------------------------------------------

    def _report(self, still_open: Sequence[BatchRow], on_progress: ProgressCallback | None) -> None:
        df = self.session.store.runs(sweep_id=self.sweep.sweep_id)
        ok_rows = df[df["status"] == "ok"]
        ok_count = len(set(zip(ok_rows["request_hash"], ok_rows["sample_index"], strict=True)))
        running = sum((r.completed or 0) + (r.failed or 0) for r in still_open)
        spent = float(ok_rows["cost_usd"].sum(skipna=True))
        snapshot = self.sweep._shared.update(
            done=min(ok_count + running, len(self.sweep)),
            ok=ok_count,
            errors=int((df["status"] == "error").sum()),
            in_flight=sum(len(r.ids) for r in still_open) - running,
            spent_usd=spent,
        )
        if on_progress is not None:
            on_progress(snapshot)

    def _default_api(self, provider: Provider) -> BatchAPI:
        return BatchAPI(
            provider.chat_base_url(),
            provider.api_key(),
            timeout=self.session.timeout,
            max_retries=self.session.max_retries,
            limits=self.session.limits,  # the one limits layer: 429s heard there
        )

    def _api(self, provider: Provider) -> BatchAPI:
        if provider.name not in self._apis:
            self._apis[provider.name] = self._api_factory(provider)
        return self._apis[provider.name]

    def _api_for(self, row: BatchRow) -> BatchAPI:
        for planned in self.sweep._plan:
            if planned.prepared.provider.name == row.provider:
                return self._api(planned.prepared.provider)
        provider, _ = self.session.resolve(None, row.provider)
        return self._api(provider)


def _by_provider(send: Sequence[PreparedChat]
                 ) -> dict[tuple[Provider, str], list[PreparedChat]]:
    # A batch has one endpoint: a sweep over both chat APIs is two batches per provider.
    groups: dict[tuple[Provider, str], list[PreparedChat]] = {}
    for prepared in send:
        key = (prepared.provider, jsonl.endpoint_of(prepared.body))
        groups.setdefault(key, []).append(prepared)
    return groups


def _updated(row: BatchRow, info: BatchInfo) -> BatchRow:
    return replace(
        row,
        status=info.status,
        output_file_id=info.output_file_id,
        error_file_id=info.error_file_id,
        total=info.total,
        completed=info.completed,
        failed=info.failed,
        ended_at=None if info.ended_at is None else iso_utc(info.ended_at),
        message=info.message,
    )
