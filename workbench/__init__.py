"""Prompt Workbench: a prompt laboratory for Jupyter and any OpenAI-compatible API.

    import workbench as wb
    wb.chat("Name three primes", temperature=0.7, seed=1)
    wb.runs()            # every call so far, one row each, with tokens and cost

With no OPENAI_API_KEY / OPENAI_BASE_URL set, calls go to a small local model.
Heavy libraries (pandas, tiktoken, genai-prices, the model server) load on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

# plots and compare load matplotlib, numpy and pandas only when they draw. compare is bound
# here, not lazily: importing its submodule later would replace the function with it.
from . import plots
from .compare import compare
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    CallInterrupted,
    ConfigurationError,
    DeadlineExceededError,
    InvalidInputError,
    LocalModelError,
    RateLimitError,
    StoreError,
    SweepInterrupted,
    TruncatedStreamError,
    WorkbenchError,
    debug,
)
from .estimate import Estimate
from .results import ChatResponse, EmbedResponse
from .session import Message, get_session
from .usage import Usage

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    import pandas as pd

    from .review import ReviewPanel
    from .runtable.grid import RunsBrowser
    from .scoring import scorers
    from .scoring.agreement import Agreement
    from .scoring.datasets import Dataset
    from .scoring.finetune import FinetuneExport
    from .scoring.paired import PairedComparison
    from .sweeps import Sweep, sweep
    from .widgets import Playground, SweepPanel

__version__ = "0.1.0"

__all__ = [
    "chat",
    "achat",
    "embed",
    "aembed",
    "runs",
    "browse",
    "experiment",
    "configure",
    "estimate",
    "export",
    "import_runs",
    "dataset",
    "datasets",
    "Dataset",
    "set_price",
    "expand_json",
    "compare",
    "plots",
    "score",
    "scores",
    "scorers",
    "check",
    "compare_runs",
    "stability",
    "agreement",
    "export_finetune",
    "sweep",
    "Sweep",
    "SweepPanel",
    "Playground",
    "ReviewPanel",
    "preferences",
    "win_rate",
    "ChatResponse",
    "EmbedResponse",
    "Estimate",
    "Usage",
    "WorkbenchError",
    "ConfigurationError",
    "InvalidInputError",
    "LocalModelError",
    "BudgetExceededError",
    "StoreError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "DeadlineExceededError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "RateLimitError",
    "TruncatedStreamError",
    "CallInterrupted",
    "SweepInterrupted",
    "debug",
    "__version__",
]


def chat(
    prompt: str | Sequence[Message],
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    provider: str | None = None,
    experiment: str | None = None,
    fresh: bool = False,
    budget: float | None = None,
    on_delta: Callable[[str], None] | None = None,
    deadline: float | None = None,
    **params: Any,
) -> ChatResponse:
    """Send one chat call (or answer it from the experiment table) and log it as a row.

    Parameters left as None are not sent. ``model`` may be ``"provider:model"``. Extra
    keyword arguments (``stop``, ``response_format``, ``tools``, ...) are sent as given.
    ``fresh=True`` asks the API even when an identical run is already in the table.
    ``deadline`` (seconds) bounds this call, retries included, instead of the session's.
    Ctrl-C ends it with the partial answer, its footer and one line: the row is stored.
    """
    try:
        return get_session().chat(
            prompt,
            model=model,
            system=system,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            max_tokens=max_tokens,
            stream=stream,
            provider=provider,
            experiment=experiment,
            fresh=fresh,
            budget=budget,
            on_delta=on_delta,
            deadline=deadline,
            **params,
        )
    except CallInterrupted as exc:
        from .notebook.interrupts import show_partial_answer

        show_partial_answer(exc, streamed=on_delta is not None)
        raise


async def achat(
    prompt: str | Sequence[Message],
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    provider: str | None = None,
    experiment: str | None = None,
    fresh: bool = False,
    budget: float | None = None,
    on_delta: Callable[[str], None] | None = None,
    deadline: float | None = None,
    **params: Any,
) -> ChatResponse:
    """The async twin of :func:`chat`."""
    try:
        return await get_session().achat(
            prompt,
            model=model,
            system=system,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            max_tokens=max_tokens,
            stream=stream,
            provider=provider,
            experiment=experiment,
            fresh=fresh,
            budget=budget,
            on_delta=on_delta,
            deadline=deadline,
            **params,
        )
    except CallInterrupted as exc:
        from .notebook.interrupts import show_partial_answer

        show_partial_answer(exc, streamed=on_delta is not None)
        raise


def embed(
    texts: str | Sequence[str],
    *,
    model: str | None = None,
    dimensions: int | None = None,
    provider: str | None = None,
    experiment: str | None = None,
    fresh: bool = False,
) -> EmbedResponse:
    """Embed texts (one row per call); texts already embedded are read from the table."""
    from .embedding import embed as _embed

    return _embed(
        get_session(),
        texts,
        model=model,
        dimensions=dimensions,
        provider=provider,
        experiment=experiment,
        fresh=fresh,
    )


async def aembed(
    texts: str | Sequence[str],
    *,
    model: str | None = None,
    dimensions: int | None = None,
    provider: str | None = None,
    experiment: str | None = None,
    fresh: bool = False,
) -> EmbedResponse:
    """The async twin of :func:`embed`."""
    from .embedding import aembed as _aembed

    return await _aembed(
        get_session(),
        texts,
        model=model,
        dimensions=dimensions,
        provider=provider,
        experiment=experiment,
        fresh=fresh,
    )


def runs(
    experiment: str | None = None,
    sweep_id: str | None = None,
    status: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = None,
    user: str | None = None,
) -> pd.DataFrame:
    """The experiment table as a DataFrame, oldest first (``limit``: the newest N;
    ``user``: only the runs of one person, as ``WORKBENCH_USER`` or the OS user named them),
    with a ``score:<name>`` column per scorer that has scored its runs (see :func:`score`).

    Columns in reading order: time, experiment, model, knobs, prompt, output, tokens,
    cost, latency, status first; ids and JSON last (``wb.browse()`` to explore them)."""
    from .runtable import reading_order
    from .scoring.columns import add_score_columns

    store = get_session().store
    frame = store.runs(
        experiment=experiment, sweep_id=sweep_id, status=status, since=since, limit=limit,
        user=user,
    )
    return reading_order(add_score_columns(frame, store))


def score(
    data: Any,
    scorers: Any,
    *,
    fresh: bool = False,
    budget: float | Decimal | None = None,
) -> pd.DataFrame:
    """Score the runs of a Sweep, a runs DataFrame or an experiment (by name) with one
    scorer or a list (``wb.scorers.*`` or functions); return the scores, one row per run
    and scorer. Scores already stored are not computed again (``fresh=True`` forces it);
    outputs are never generated again. ``budget`` (USD) caps a judge's calls."""
    from .scoring.engine import score as _score

    return _score(data, scorers, fresh=fresh, budget=budget)


def scores(experiment: str | None = None, *, scorer: str | None = None) -> pd.DataFrame:
    """Every stored score (one row per run and scorer definition), oldest first."""
    from .scoring.engine import scores as _scores

    return _scores(experiment, scorer=scorer)


def preferences(baseline: Any = None, candidate: Any = None, *, rater: str | None = None,
                history: bool = False) -> pd.DataFrame:
    """The stored pairwise preferences (from ``wb.ReviewPanel(pairwise=...)``): one row per
    pair and rater, the latest (``history=True``: every one, oldest first). ``baseline`` and
    ``candidate`` (a Sweep, a runs DataFrame or an experiment name) keep the pairs of
    their runs. ``wb.win_rate(frame)`` summarises them."""
    from .review.store import read_preferences
    from .scoring.engine import runs_to_score
    from .session import get_session

    session = get_session()
    frame = read_preferences(session.store, latest=not history)
    for column, data in (("baseline_run_id", baseline), ("candidate_run_id", candidate)):
        if data is not None:
            ids = set(runs_to_score(data, session)["run_id"].tolist())
            frame = frame[frame[column].isin(ids)]
    if rater is not None:
        frame = frame[frame["rater"].eq(rater)]
    return frame.reset_index(drop=True)


def win_rate(preferences: pd.DataFrame) -> Any:
    """The candidate's win rate in rows of ``wb.preferences()``: wins, losses, ties, the
    rate (a tie counts half a win) and its 95 % Wilson interval (``.low``, ``.high``)."""
    from .review.store import win_rate as _win_rate

    return _win_rate(preferences)


def check(
    candidate: Any,
    *,
    scorer: str,
    baseline: Any = None,
    min_score: float | None = None,
    max_drop: float | None = None,
) -> None:
    """A regression gate: raise AssertionError (one line: means, difference, interval)
    when ``candidate`` (a Sweep, runs DataFrame or experiment name) has a mean
    ``score:<scorer>`` below ``min_score``, or more than ``max_drop`` below ``baseline``."""
    from .scoring.gate import check as _check

    _check(candidate, scorer=scorer, baseline=baseline, min_score=min_score, max_drop=max_drop)


def browse(
    data: Any = None, *, experiment: str | None = None, limit: int | None = 1000
) -> RunsBrowser:
    """The runs as a grid, newest first: sort by a header, search, filter, unfold texts.

    ``data``: a runs DataFrame or a Sweep (``.df``); None reads the table (the newest
    ``limit`` runs, of ``experiment`` when given)."""
    from .runtable.grid import RunsBrowser

    df = runs(experiment=experiment, limit=limit) if data is None else getattr(data, "df", data)
    return RunsBrowser(df)


def compare_runs(baseline: Any, candidate: Any, *, scorer: str) -> PairedComparison:
    """Compare two sets of runs (Sweeps, runs DataFrames or experiment names) on
    ``score:<scorer>``, paired on test case and ``sample_index``: both means, the mean
    paired difference with a 95 % bootstrap interval, a paired permutation-test p-value,
    the pairs, the flipped cases and the unpaired runs (``.df``: one row per pair)."""
    from .scoring.paired import compare_runs as _compare_runs

    return _compare_runs(baseline, candidate, scorer=scorer)


def stability(data: Any, *, scorer: str | None = None, k: int | None = None) -> pd.DataFrame:
    """One row per knob combination with repeats: pass@k and pass^k (with ``scorer``),
    the share of distinct answers, the spread of scores, and ``drift`` when the
    ``system_fingerprint`` changed between repeats."""
    from .scoring.stability import stability as _stability

    return _stability(data, scorer=scorer, k=k)


def agreement(a: str = "judge", b: str = "human", *, data: Any = None) -> Agreement:
    """Cohen's kappa between scorers ``a`` and ``b`` (quadratic-weighted for grades),
    their confusion matrix and the runs where they disagree."""
    from .scoring.agreement import agreement as _agreement

    return _agreement(a, b, data=data)


def export_finetune(
    data: Any,
    path: str | os.PathLike[str],
    *,
    where: str = "human == pass",
    threshold: float | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    epochs: int = 3,
) -> FinetuneExport:
    """Write the runs chosen by ``where`` (``"human == pass"``, ``"judge >= 4"``, or a
    scorer name with ``threshold=``) as chat-format fine-tuning JSONL, checked line by
    line; print the examples, their tokens and an estimated training cost."""
    from .scoring.finetune import export_finetune as _export_finetune

    return _export_finetune(data, path, where=where, threshold=threshold, model=model,
                            epochs=epochs)


class experiment(AbstractContextManager["experiment"]):  # noqa: N801 - reads as a verb
    """Set the current experiment; as a context manager, only inside the block.

    wb.experiment("haiku")              # from now on
    with wb.experiment("haiku-v2"):     # just here
        wb.chat(...)
    """

    def __init__(self, name: str) -> None:
        if not name or not name.strip():
            raise ValueError("An experiment needs a non-empty name")
        session = get_session()
        self.name = name
        self._previous = session._experiment
        session.experiment = name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        get_session().experiment = self._previous

    def __repr__(self) -> str:
        return f"experiment({self.name!r})"


def configure(
    *,
    store: str | os.PathLike[str] | None = None,
    provider: str | None = None,
    experiment: str | None = None,
    budget: float | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    deadline: float | None = None,
    allow_unpriced: bool | None = None,
) -> None:
    """Session settings: the store file, the default provider, experiment, budget (USD).

    ``timeout`` is per network read; ``deadline`` (seconds, default 900) bounds a whole
    call, retries and their waits included. Under a budget, calls to a model with no
    known price are refused unless ``allow_unpriced=True``. None leaves a setting as is.
    """
    get_session().configure(
        store=store,
        provider=provider,
        experiment=experiment,
        budget=budget,
        timeout=timeout,
        max_retries=max_retries,
        deadline=deadline,
        allow_unpriced=allow_unpriced,
    )


def estimate(
    prompt_or_messages: str | Sequence[Message],
    *,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    repeats: int = 1,
    provider: str | None = None,
) -> Estimate:
    """Tokens and low / expected / high dollars for ``repeats`` calls, sending nothing."""
    from dataclasses import replace

    from .checks import whole
    from .errors import ConfigurationError
    from .estimate import estimate_messages
    from .knobs import check
    from .providers import route

    whole("repeats", repeats, low=1)
    max_tokens = check("max_tokens", max_tokens)
    session = get_session()
    # A hosted model with no key set is priced at its price, with a note: only a name
    # that cannot be sent anywhere (a typo) is refused.
    routed = route(model, provider, default_provider=session.default_provider)
    if routed.refusal is not None and routed.missing_key is None and model:
        raise ConfigurationError(routed.refusal)
    chosen, model_name = routed.provider, session.chat_model_for(routed.provider, routed.model)
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    if isinstance(prompt_or_messages, str):
        messages.append({"role": "user", "content": prompt_or_messages})
    else:
        messages.extend(dict(m) for m in prompt_or_messages)
    estimated = estimate_messages(
        messages,
        model=model_name,
        provider=chosen,
        session=session,
        max_tokens=max_tokens,
        repeats=repeats,
    )
    if routed.missing_key is None:
        return estimated
    return replace(estimated, note=f"no {routed.missing_key} is set: set it to send these calls")


def export(path: str | os.PathLike[str], experiment: str | None = None) -> Path:
    """Write the table (or one experiment) to ``.parquet``, ``.csv`` or ``.jsonl``."""
    return get_session().store.export(path, experiment=experiment)


def import_runs(path: str | os.PathLike[str]) -> int:
    """Merge runs into the table by run_id: an exported file, a local SQLite store
    (``"experiments.db"``) or a ``postgresql://`` store; returns how many rows were new."""
    return get_session().store.import_runs(path)


def dataset(
    name: str, data: Any = None, *, expected: str | None = None, version: str | None = None
) -> Dataset:
    """A named set of test cases: rows of template variables, one column (``expected``, or
    the one named by ``expected=``) holding the reference answer. With ``data`` (a
    DataFrame, a list of dicts, a .csv/.jsonl/.parquet path) it is stored, versioned by its
    content; without, the latest stored version (or ``version``) is loaded.
    ``wb.sweep(..., vars=wb.dataset("capitals"))`` runs every case."""
    from .scoring.datasets import load_dataset, save_dataset
    store = get_session().store
    if data is None:
        if expected is not None:
            raise InvalidInputError(
                "expected= goes with rows to store: wb.dataset(name, rows, expected=...)"
            )
        return load_dataset(store, name, version=version)
    if version is not None:
        raise InvalidInputError(
            "version= picks a stored version: wb.dataset(name, version=...) without rows"
        )
    return save_dataset(store, name, data, expected=expected)


def datasets() -> pd.DataFrame:
    """The stored datasets, newest first: name, version, rows, expected, stored_at."""
    return get_session().store.datasets()


def set_price(
    model: str,
    *,
    input_per_mtok: float | Decimal,
    output_per_mtok: float | Decimal,
    cached_input_per_mtok: float | Decimal | None = None,
) -> None:
    """Price a model the price table does not know (USD per million tokens); kept in the
    store, and wins over the table."""

    from .checks import amount

    def dec(value: float | Decimal) -> Decimal:
        return amount("a price per million tokens", value)

    get_session().store.set_price(
        model,
        dec(input_per_mtok),
        dec(output_per_mtok),
        None if cached_input_per_mtok is None else dec(cached_input_per_mtok),
    )


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench``: register %%chat, %%embed and %workbench."""
    from .magics import register

    register(ipython)


def expand_json(df: pd.DataFrame, column: str = "params") -> pd.DataFrame:
    """Expand a JSON column of ``wb.runs()`` (params, variables, ...) into columns."""
    from .store import expand_json as _expand

    return _expand(df, column)


# Sweeps pull in asyncio and jinja2, the panels ipywidgets: each loads on first use, so
# `import workbench` stays quick. The engine's module is `sweeps`, not `sweep`: importing a
# submodule sets it as an attribute of the package, which would replace wb.sweep.
_LAZY = {
    "sweep": "sweeps",
    "Sweep": "sweeps",
    "SweepPanel": "widgets",
    "Playground": "widgets",
    "ReviewPanel": "review",
    "Dataset": "scoring.datasets",
}


def __getattr__(name: str) -> Any:
    if name == "scorers":  # a module of scorer constructors: wb.scorers.contains(...)
        from .scoring import scorers as scorer_module

        globals()[name] = scorer_module
        return scorer_module
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value
