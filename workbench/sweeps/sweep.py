"""Parameter sweeps: a grid of chat calls, estimated and budgeted before anything is sent,
run concurrently, and resumable: running a sweep again sends only what is still missing.

    s = wb.sweep("Translate {{word}} to French.", vars={"word": ["cat", "dog"]},
                 grid={"temperature": [0, 1], "seed": [1, 2]}, max_tokens=20)
    s.estimate()        # before any request; says what difference its cases can detect
    s.run()             # one row per point, in the experiment table
    s.table()           # one row per prompt, one column per knob combination

Identity. The sweep_id is a hash of the experiment and of every planned run's identity
(request hash + sample index), so the same sweep defined again (a notebook re-run) is the
same sweep. A point already answered *in this sweep* is neither sent nor logged again:
one row per point per sweep. A point answered elsewhere (another sweep, a single call) is
replayed as a cache-hit row of this sweep, at no cost. ``fresh=True`` ignores answers from
elsewhere and makes a new sweep each time it is defined. A call that errored stays in the
table as history; the next run sends it again. A call cut off by a stop leaves no row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from workbench.calls.background import BackgroundLoop
from workbench.calls.budget.charge import SweepSpend
from workbench.calls.dispatch import Dispatcher, attempt_of
from workbench.calls.progress import ProgressBar, SharedProgress, SweepProgress
from workbench.calls.session import Session
from workbench.calls.warmup import WarmUp
from workbench.core.checks import amount, choice, seconds
from workbench.core.errors import InvalidInputError, SweepInterrupted
from workbench.core.knobs import check as check_knob
from workbench.core.knobs import checked as checked_knobs
from workbench.core.record import LINEAGE_COLUMNS
from workbench.scoring.datasets import as_dataset
from workbench.scoring.live import LiveScoring
from workbench.sweeps.batch import SweepBatches
from workbench.sweeps.cost import SweepCosting, _Work
from workbench.sweeps.hooks import stopping_rule
from workbench.sweeps.plan import (
    plan_runs,
    points_frame,
    requests_to_check,
    stamp_marks,
    stamp_sweep_id,
    sweep_id_of,
)
from workbench.sweeps.results import SweepResults

if TYPE_CHECKING:
    import os

    import pandas as pd

    from workbench.scoring.datasets import Dataset

    # What vars= takes: value lists per name (a product), or test cases (one point a row).
    VarsInput: TypeAlias = (
        Mapping[str, Sequence[Any]]
        | Dataset
        | pd.DataFrame
        | Sequence[Mapping[str, Any]]
        | str
        | os.PathLike[str]
        | None
    )

__all__ = ["sweep", "Sweep"]

ProgressCallback = Callable[[SweepProgress], None]


def sweep(
    template: str,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    vars: VarsInput = None,  # noqa: A002 - the issue's name
    expected: str | None = None,
    repeats: int = 1,
    system: str | None = None,
    experiment: str | None = None,
    concurrency: int = 8,
    budget: float | Decimal | None = None,
    fresh: bool = False,
    strict: bool = False,
    context: Mapping[str, Any] | None = None,
    deadline: float | None = None,
    scorers: Any = None,
    session: Session,
    **fixed_params: Any,
) -> Sweep:
    """Plan a sweep: the cartesian product of ``vars`` (template variables) and ``grid``
    (request parameters: model, temperature, top_p, seed, max_tokens, system, ...), times
    ``repeats``. Nothing is sent until :meth:`Sweep.run`.

    ``vars`` is a dict of value lists, or test cases: a DataFrame, a list of dicts, a
    .csv/.jsonl/.parquet path or ``wb.dataset(name)``. Each case (row) is one set of
    template variables, not a product; ``expected`` names the column with the reference
    answer (by default a column called ``expected``), which runs record for scorers.

    ``fixed_params`` are sent with every call (``max_tokens=50``, ``model=...``);
    ``context`` holds template variables that do not vary (e.g. a notebook's namespace).
    ``budget`` (USD) refuses the sweep when its expected cost (worst case with
    ``strict=True``) is above it or above what is left of the session budget.
    ``deadline`` (seconds) bounds each call instead of the session's deadline.
    ``scorers`` (``wb.scorers.*`` or functions) score each run as it finishes; the
    estimate and the budget include a judge's calls.
    """
    return Sweep(
        template,
        grid=grid,
        variables=vars,
        expected=expected,
        repeats=repeats,
        system=system,
        experiment=experiment,
        concurrency=concurrency,
        budget=budget,
        fresh=fresh,
        strict=strict,
        context=context,
        fixed=fixed_params,
        deadline=deadline,
        scorers=scorers,
        session=session,
    )


def _listed(values: Any) -> Any:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return values
    return list(values)


def _knob_values(name: str, values: Any) -> Any:
    """Every value of one swept knob, checked as ``wb.chat`` checks one (the table in
    :mod:`workbench.core.knobs`) and made plain, before any point is planned or sent."""
    listed = _listed(values)
    if not isinstance(listed, list):
        return listed  # the grid's own "needs a list" error says it better
    return [check_knob(name, value) for value in listed]


class Sweep(SweepCosting, SweepResults):
    """A planned grid of chat calls; see :func:`sweep` and the module docstring."""

    def __init__(
        self,
        template: str,
        *,
        grid: Mapping[str, Sequence[Any]] | None = None,
        variables: VarsInput = None,
        expected: str | None = None,
        repeats: int = 1,
        system: str | None = None,
        experiment: str | None = None,
        concurrency: int = 8,
        budget: float | Decimal | None = None,
        fresh: bool = False,
        strict: bool = False,
        context: Mapping[str, Any] | None = None,
        fixed: Mapping[str, Any] | None = None,
        session: Session,
        deadline: float | None = None,
        scorers: Any = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number, 1 or more: {concurrency!r}")
        self.template = template
        # A string is left as it is, for the grid's own "needs a list" error: list("0.5")
        # would make three points out of one value.
        self.grid = {name: _knob_values(name, values) for name, values in (grid or {}).items()}
        self.dataset: Dataset | None = None  # the test cases, when vars= gave some
        if variables is not None and not isinstance(variables, Mapping):
            self.dataset, variables = as_dataset(variables, expected=expected), None
        elif expected is not None:
            raise InvalidInputError(
                f"expected={expected!r} names the answer column of test cases: give vars= a "
                "DataFrame, a list of dicts, a file or wb.dataset(...), not a dict of lists"
            )
        self.variables = {name: _listed(values) for name, values in (variables or {}).items()}
        self.fixed = checked_knobs(fixed or {})
        self.repeats = repeats
        self.system = system
        self.concurrency = concurrency
        self.budget = None if budget is None else amount("budget", budget)
        self.deadline = None if deadline is None else seconds("deadline", deadline)
        self.fresh = fresh
        self.strict = strict
        self.session = session
        self.experiment = experiment or self.session.experiment
        self.scoring: LiveScoring | None = None
        if scorers is not None:
            # checked before any call; slow scorers and judge calls at the sweep's concurrency
            self.scoring = LiveScoring(scorers, self.session, concurrency=concurrency)
        self._plan = plan_runs(
            self.session,
            template,
            grid=self.grid,
            variables=self.variables,
            fixed=self.fixed,
            repeats=repeats,
            system=system,
            experiment=self.experiment,
            context=context,
            dataset=self.dataset,
        )
        # The store, transport, prices and tokenizers load now, not in s.run() (the estimate
        # needs them anyway), so a run at once starts warm: ~1 s off a cold sweep's first
        # calls (issue 21). pandas, for the result frame, waits for the run's first answers.
        session = self.session
        self._warm = WarmUp({p.shape.model: None for p in self._plan}, lambda: session.store)
        self._warm.wait()
        self.sweep_id = sweep_id_of(self.experiment, self._plan, fresh=fresh)
        stamp_sweep_id(self._plan, self.sweep_id)
        self._shared = SharedProgress()
        self._runner: BackgroundLoop | None = None
        self._batch: SweepBatches | None = None  # the Batch API side, made on first use
        self._active = False  # from a run's start until its end, in whichever thread
        self.decision: Any = None  # what run(until="decided") decided (decide.sequential)

    def __len__(self) -> int:
        return len(self._plan)

    def __repr__(self) -> str:
        axes = [f"{name}×{len(values)}" for name, values in {**self.variables, **self.grid}.items()]
        if self.dataset is not None:
            axes.insert(0, f"{self.dataset.name or 'cases'}×{len(self.dataset)}")
        shape = " · ".join(axes + ([f"repeats×{self.repeats}"] if self.repeats > 1 else []))
        return f"<Sweep {self.sweep_id}: {len(self)} runs ({shape or 'one point'})>"

    def mark(self, **columns: str | None) -> Sweep:
        """Stamp lineage columns (``candidate``, ``parent``, ``reflection``: how
        ``wb.optimize`` came to evaluate this prompt) on every row this sweep writes,
        replays included; they are not part of any run's identity. Returns the sweep."""
        unknown = sorted(set(columns) - set(LINEAGE_COLUMNS))
        if unknown:
            raise InvalidInputError(f"Sweep.mark takes {', '.join(LINEAGE_COLUMNS)}, not "
                                    f"{', '.join(unknown)}")
        stamp_marks(self._plan, columns)
        return self

    @property
    def points(self) -> pd.DataFrame:
        """The planned runs in order: point, variables, knobs, sample_index, provider,
        model, prompt, request_hash (shown formatted in a notebook; a DataFrame to code)."""
        from workbench.core.resultframe import result_frame  # imports pandas: not at the top

        return result_frame(points_frame(self._plan))

    # -- running ----------------------------------------------------------------------

    def _begin(self) -> _Work:
        if self._active:
            raise RuntimeError(f"sweep {self.sweep_id} is already running")
        work = self._work(priced=bool(self._budget_limits()))
        if self.batch.open_rows():  # sending those calls live too would pay for them twice
            raise InvalidInputError(
                f"sweep {self.sweep_id} has a batch in progress: s.wait() collects it, "
                "s.cancel() cancels it"
            )
        self._refuse_over_budget(work)  # here, in the caller's thread, before any call
        if work.send:  # a sweep answered from a read-only store sends nothing to lose
            # A read-only store would lose every answer; PostgreSQL refuses a NUL in text,
            # checked without building every call (each is built as it is sent).
            self.session.store.check_writable(requests_to_check(work.planned))
        for provider in {job.provider for job in work.send}:
            provider.api_key()  # a missing key fails here too, naming the variable to set
        self._active = True
        self._shared.update(
            total=len(self._plan),
            done=work.already,
            ok=work.already,
            errors=0,
            replayed=0,
            already=work.already,
            sent=0,
            in_flight=0,
            spent_usd=0.0,
            unpriced=0,
            rate_limited=0,
            to_score=0,
            scored=0,
            state="running",
            message="",
        )
        return work

    async def _execute(self, work: _Work, on_progress: ProgressCallback | None) -> None:
        scoring = self.scoring
        # This run's calls and its scorers' model calls, against its budget and the session's.
        spend = SweepSpend(self.budget, self.session.spend)
        if scoring is not None:
            scoring.spend, scoring.progress = spend, self._shared
        try:
            for prepared in work.replay:
                replayed = self.session.cached(attempt_of(prepared))
                if scoring is not None and replayed is not None:
                    scoring.add(replayed.record)
                snapshot = self._shared.add(done=1, ok=1, replayed=1)
                if on_progress is not None:
                    on_progress(snapshot)
            dispatcher = Dispatcher(
                self.session,
                self._shared,
                concurrency=self.concurrency,
                budget=self.budget,
                # pandas loads once two waves of calls (or half of a short run's) are back
                on_progress=self._warm.after_first_answers(
                    on_progress, min(2 * self.concurrency, len(work.send) // 2 + 1)
                ),
                deadline=self.deadline,
                claims=not self.fresh,
                on_row=None if scoring is None else scoring.add,
                spend=spend,
            )
            try:
                await dispatcher.run(work.send)
            except Exception:
                if scoring is not None:  # the scores under way are kept, the rest dropped
                    await asyncio.to_thread(scoring.settle)
                raise
            if scoring is not None:
                # Off the event loop: a judge's calls block. The last pass scores the runs
                # of earlier runs of this sweep too.
                await asyncio.to_thread(scoring.finish, self._rows())
        except asyncio.CancelledError:
            if scoring is not None:
                scoring.cancel()
            self._shared.update(state="stopped", message="run it again to resume")
            raise
        except BaseException as exc:
            why = self._shared.snapshot().message  # e.g. "5 calls failed in a row"
            message = f"{why}: {exc}" if why else str(exc)
            self._shared.update(state="failed", message=message[:300])
            raise
        finally:
            self._active = False
            self._warm.release()
        self._shared.update(state="done")

    @property
    def progress(self) -> SweepProgress:
        """A snapshot of how far the current (or last) run got."""
        return self._shared.snapshot()

    @property
    def running(self) -> bool:
        return self._active

    @property
    def batch(self) -> SweepBatches:
        """The sweep's Batch API side (:mod:`workbench.sweeps.batch`)."""
        if self._batch is None:
            self._batch = SweepBatches(self)
        return self._batch

    @property
    def batches(self) -> pd.DataFrame:
        """The sweep's batches as the store keeps them: id, status, counts, file ids."""
        return self.batch.frame()

    def cancel(self) -> pd.DataFrame:
        """Cancel the sweep's batches still running; the answers they finished are kept
        (collected by :meth:`wait`), and the rest can be resumed live or in a new batch."""
        self.batch.cancel()
        return self.batches

    def start(
        self,
        *,
        mode: str = "live",
        on_progress: ProgressCallback | None = None,
        on_done: Callable[[Sweep], None] | None = None,
    ) -> None:
        """Run in a background thread with its own event loop, and return at once.

        Works whether or not the caller's thread runs an event loop (Jupyter's does).
        Refusals (budget) raise here; a later failure is raised by :meth:`wait`.
        ``on_progress`` and ``on_done`` are called from the sweep's thread.
        ``mode="batch"``: submit through the Batch API and wait for it there.
        """
        if choice("mode", mode, ("live", "batch")) == "batch":
            self._start_batch(on_progress, on_done)
            return
        work = self._begin()

        def settle() -> None:
            # A stop that comes before the coroutine started leaves no trace in it.
            if self._shared.snapshot().state == "running":
                self._shared.update(state="stopped", message="stopped before it began")
            self._active = False
            if on_done is not None:
                on_done(self)

        self._runner = BackgroundLoop(
            lambda: self._execute(work, on_progress), name=f"sweep-{self.sweep_id}", on_done=settle
        )
        self._runner.start()

    def _start_batch(
        self, on_progress: ProgressCallback | None, on_done: Callable[[Sweep], None] | None
    ) -> None:
        if self._active:
            raise RuntimeError(f"sweep {self.sweep_id} is already running")
        batch = self.batch
        if not batch.open_rows():
            batch.submit()  # refusals raise here, in the caller's thread
        self._active = True

        def settle() -> None:
            self._active = False
            if on_done is not None:
                on_done(self)

        async def waiting() -> None:
            await asyncio.to_thread(batch.wait, progress=False, on_progress=on_progress)

        self._runner = BackgroundLoop(waiting, name=f"batch-{self.sweep_id}", on_done=settle)
        self._runner.start()

    def stop(self) -> None:
        """Cancel the calls in flight; finished runs stay in the table. Any thread.
        Batches go on at the provider: only the waiting for them stops."""
        if self._batch is not None:
            self._batch.stop()
        if self._runner is not None:
            self._runner.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a started run to end; True when it has. Raises what made it fail.
        With no run started here, polls and collects the sweep's open batches (a kernel
        restarted since ``run(mode="batch")`` finds them in the store)."""
        runner = self._runner
        if runner is None and self.batch.open_rows():
            return self.batch.wait(timeout=timeout)
        if runner is None or not runner.wait(timeout):
            return runner is None
        if runner.error is not None:
            error, runner.error = runner.error, None
            raise error
        return True

    def run(
        self,
        *,
        mode: str = "live",
        progress: bool = True,
        on_progress: ProgressCallback | None = None,
        until: str | None = None,
        **decide: Any,
    ) -> pd.DataFrame:
        """Send what is missing, wait, and return :attr:`df`.

        ``until="decided"`` (with ``baseline=``, ``scorer=``, ``alpha=``, ``margin=``)
        sends the cases in waves and stops once each variant is decided against the
        baseline: see :mod:`workbench.decide.sequential`; the verdict is :attr:`decision`.

        ``mode="batch"`` sends it through the provider's Batch API (half price on
        OpenAI, answers within 24 hours; see :mod:`workbench.sweeps.batch`). The batch id is in
        the store at once: Ctrl-C stops the waiting, not the batch, and running again (or
        :meth:`wait`, in this kernel or a new one) collects it.

        ``progress`` shows a bar (a widget in a notebook, text in a terminal). Ctrl-C
        (KeyboardInterrupt) cancels the calls in flight, keeps the finished rows and is
        raised again, so a notebook stops there; running the sweep again resumes it.
        ``on_progress`` gets a :class:`SweepProgress` from the sweep's thread.
        """
        if until is not None or decide:  # a sequential run: its waves are runs of this
            until = until or "decided"
            # The rule lives above sweeps (decide/), registered in sweeps.hooks.
            return stopping_rule(until)(self, until=until, mode=mode, progress=progress,
                                        on_progress=on_progress, **decide)
        if choice("mode", mode, ("live", "batch")) == "batch":
            return self.batch.run(progress=progress, on_progress=on_progress)
        self.start(on_progress=on_progress)
        bar = ProgressBar(len(self._plan)) if progress else None
        try:
            while not self.wait(0.1):
                if bar is not None:
                    bar.show(self.progress)
        except KeyboardInterrupt:
            self.stop()
            assert self._runner is not None
            self._runner.wait()
            # One line on how to resume, shown after the bar's last state (finally).
            raise SweepInterrupted(len(self._rows()), len(self), "call .run() again") from None
        finally:
            if bar is not None:
                bar.show(self.progress)
                bar.close()
        return self.df

    async def arun(self, *, on_progress: ProgressCallback | None = None) -> pd.DataFrame:
        """Run in the current event loop (``await sweep.arun()``); cancelling it stops it."""
        await self._execute(self._begin(), on_progress)
        return self.df
