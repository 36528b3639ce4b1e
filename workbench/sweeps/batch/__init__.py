"""The Batch API for large sweeps: a sweep's pending calls written as a JSONL file,
uploaded, run by the provider within 24 hours at its batch price, and collected as rows.

    s.run(mode="batch")    # submit, then poll with backoff until every batch has ended
    s.wait()               # later, or in a restarted kernel: poll and collect
    s.cancel()             # cancel the sweep's batches; what finished is kept

Modules: :mod:`.jsonl` (the file's lines and the answers' lines), :mod:`.api` (the Files
and Batches endpoints over HTTP), :mod:`.ledger` (the store's ``batches`` table, so a
restarted kernel finds its batches), :mod:`.runner` (submit, poll, cancel),
:mod:`.collect` (answers to rows, exactly once) and :mod:`.protocol` (what they need of a
sweep: the sweep imports this package, never the other way round).
"""

from __future__ import annotations

from workbench.sweeps.batch.api import BatchAPI, BatchInfo
from workbench.sweeps.batch.jsonl import MAX_BATCH_BYTES, MAX_BATCH_REQUESTS
from workbench.sweeps.batch.runner import SweepBatches

__all__ = ["BatchAPI", "BatchInfo", "SweepBatches", "MAX_BATCH_REQUESTS", "MAX_BATCH_BYTES"]
