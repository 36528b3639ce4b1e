"""What a sweep's run has to do and what it may cost: the points still to send or to
replay, their estimate, and the budget's refusal before anything is sent (through
:mod:`workbench.calls.budget`). Part of :class:`~workbench.sweeps.sweep.Sweep`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.calls.budget.estimate import Estimate
from workbench.calls.dispatch import Job
from workbench.core.tokens import encoding_name_for, get_encoding
from workbench.sweeps.hooks import estimate_notes

if TYPE_CHECKING:
    from workbench.calls.session import PreparedChat, Session
    from workbench.calls.warmup import WarmUp
    from workbench.scoring.live import LiveScoring
    from workbench.sweeps.plan import PlannedRun, Shape

__all__ = ["SweepCosting"]


@dataclass(frozen=True)
class _Work:
    """What one run of a sweep has to do, decided before anything is sent."""

    replay: list[PreparedChat]
    send: list[Job]
    already: int
    cost: Estimate  # of the calls to send (zero when not priced)
    priced: bool = True  # False: no budget to keep, so the calls were not priced
    planned: Sequence[PlannedRun] = ()  # the points of ``send``, in its order


class SweepCosting:
    """Estimates and budget of :class:`~workbench.sweeps.sweep.Sweep` (a mixin)."""

    session: Session
    sweep_id: str
    experiment: str
    budget: Decimal | None
    strict: bool
    fresh: bool
    scoring: LiveScoring | None
    _plan: list[PlannedRun]
    _warm: WarmUp  # the store, prices and tokenizers: loaded before the plan returned

    def estimate(self, *, remaining: bool = False) -> Estimate:
        """Tokens and low/expected/high dollars of every run or, with ``remaining=True``,
        of the runs that :meth:`run` would send now. Sends nothing."""
        if remaining:
            return self._work().cost
        total = self._plan_estimate()
        if self.scoring is not None:
            total = total + self._scoring_estimate([p.prepared for p in self._plan])
        # The layers above add what the plan can tell apart (workbench.sweeps.hooks).
        return replace(total, planning=" · ".join(estimate_notes(self)) or None)

    def _plan_estimate(self) -> Estimate:
        """The estimate of every planned run, counted per shape (knob combination): its
        prompt tokens are the shape's plus each prompt's own, encoded in one batch, and
        the runs with the same count are priced once (a million rows: ~8 s at a load of
        6-8 on 2 cores; one estimate a point took 18-38 s for 100,000)."""
        by_shape: dict[int, tuple[Shape, list[str]]] = {}
        one_by_one: list[PreparedChat] = []
        for planned in self._plan:
            shape = planned.shape
            if not shape.counted:
                one_by_one.append(planned.prepared)
                continue
            entry = by_shape.get(id(shape))
            if entry is None:
                entry = by_shape[id(shape)] = (shape, [])
            entry[1].append(planned.prompt)
        total = sum(self._estimates(one_by_one), Estimate.zero())
        memo: dict[Any, Any] = {}
        for shape, texts in by_shape.values():
            encoding = get_encoding(encoding_name_for(shape.model))
            base = shape.base_tokens()
            # One by one: encode_ordinary_batch makes a thread-pool future per text, which
            # took 11 of 15 s for 100,000 prompts (profiled); this loop takes ~0.5 s.
            encode = encoding.encode_ordinary
            counts = Counter(len(encode(text)) for text in texts)
            record = shape.prototype.record
            for tokens, runs in sorted(counts.items()):
                total = total + self.session.spend.estimate_prompt_tokens(
                    base + tokens,
                    model=record.model,
                    provider=shape.provider,
                    max_tokens=record.max_tokens,
                    repeats=runs,
                    experiment=self.experiment,
                    memo=memo,
                )
        return total

    def _scoring_estimate(self, prepared: Sequence[PreparedChat]) -> Estimate:
        """The scorers' model calls (a judge's) for these runs: one per run and scorer."""
        if self.scoring is None:
            return Estimate.zero()
        return self.scoring.estimate(prepared) or Estimate.zero()

    def _estimates(self, prepared: Sequence[PreparedChat]) -> list[Estimate]:
        # Points that differ only in seed or temperature cost the same: count them once.
        cache: dict[str, Estimate] = {}
        memo: dict[Any, Any] = {}  # the store's prices and means, asked once per sweep
        out = []
        for each in prepared:
            record, messages = each.record, each.body["messages"]
            key = json.dumps([each.provider.name, record.model, record.max_tokens, messages])
            if key not in cache:
                cache[key] = self.session.spend.estimate_messages(
                    messages,
                    model=record.model,
                    provider=each.provider,
                    max_tokens=record.max_tokens,
                    experiment=self.experiment,
                    memo=memo,
                )
            out.append(cache[key])
        return out

    def _work(self, priced: bool = True) -> _Work:
        """``priced=False``: no cost estimate (only a budget needs one before sending;
        pricing 1,000 prompts of different lengths took 1-2 s before the first call)."""
        store = self.session.store
        done = store.ok_identities(self.sweep_id)  # no frame: pandas may not be loaded yet
        todo = [p for p in self._plan if p.identity not in done]
        elsewhere = {} if self.fresh else store.find_ok_many(p.identity for p in todo)
        replay = [p.prepared for p in todo if p.identity in elsewhere]
        planned = [p for p in todo if p.identity not in elsewhere]
        total = Estimate.zero()
        if priced:
            sending = [p.prepared for p in planned]
            estimates = self._estimates(sending)
            reserved = [e.prompt_tokens + e.completion_tokens_max for e in estimates]
            total = sum(estimates, self._scoring_estimate(sending))
            jobs = [Job(p, tokens) for p, tokens in zip(sending, reserved, strict=True)]
        else:
            # Each call built (and counted, if a limit needs it) by the worker about to
            # send it: the first goes without waiting for the others' (issue 21).
            jobs = [_job_of(p) for p in planned]
        return _Work(replay, jobs, len(self._plan) - len(todo), total, priced, planned)

    def _budget_limits(self) -> list[Decimal]:
        return [b for b in (self.budget, self.session.spend.remaining()) if b is not None]

    def _refuse_over_budget(self, work: _Work, *, batch: bool = False) -> None:
        """The one budget's refusal (calls/budget), of the runs to send and their judge's
        calls (either model may be the one without a price); ``batch``: at the Batch
        API's price, as a ``"Batch"``."""
        if not work.send:  # answered from the table: nothing to pay
            return
        self.session.spend.refuse(
            "Batch" if batch else "Sweep", work.cost, own=self.budget, strict=self.strict,
            batch=batch,
        )


def _job_of(planned: PlannedRun) -> Job:
    """A job that builds ``planned``'s call when it is about to be sent."""
    return Job.later(lambda: planned.prepared, planned.shape.provider, planned.model)
