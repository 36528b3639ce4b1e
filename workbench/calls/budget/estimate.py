"""Cost estimates before anything is sent: tokens counted offline, dollars from the table.

Prompt tokens are counted with tiktoken; completion tokens are bounded by ``max_tokens``
(worst case) and expected from the mean of earlier ok runs of the same model and
experiment. Estimates add up, so a sweep's estimate is the sum of its points' and its
judge's calls (counted apart: "32 runs + 32 judge calls").
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from workbench.core.money import format_money, money_html
from workbench.core.tokens import count_chat_tokens, count_embedding_tokens
from workbench.core.usage import Usage

if TYPE_CHECKING:
    from workbench.api.providers import Provider
    from workbench.core.pricing import CustomPrice, PriceQuote
    from workbench.store import AnyStore

__all__ = [
    "Estimate",
    "Pricing",
    "estimate_messages",
    "estimate_prompt_tokens",
    "estimate_embedding",
    "reserved_tokens",
    "DEFAULT_MAX_TOKENS",
]

# The worst case when no max_tokens is given: a long answer, but a bounded one, so that
# an estimate is still a number. Set max_tokens to make the worst case exact.
DEFAULT_MAX_TOKENS = 1024


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a + b


class Pricing(Protocol):
    """What an estimate needs of its caller (a session): the store's earlier runs and
    custom prices, and the price of a usage. A protocol, so that this module imports no
    session (it used to, and the session imported it back)."""

    @property
    def experiment(self) -> str: ...

    @property
    def store(self) -> AnyStore: ...

    def custom_prices(self) -> dict[str, CustomPrice]: ...

    def quote(
        self,
        model: str,
        usage: Usage,
        provider: Provider,
        *,
        custom: Mapping[str, CustomPrice] | None = None,
        batch: bool = False,
    ) -> PriceQuote: ...


@dataclass(frozen=True)
class Estimate:
    """Tokens and dollars for ``runs`` calls and ``judge_calls`` scorers' model calls (a
    judge's, paid for by the same work); costs are None when the price is unknown."""

    runs: int
    prompt_tokens: int
    completion_tokens_expected: int
    completion_tokens_max: int
    cost_low: Decimal | None
    cost_expected: Decimal | None
    cost_high: Decimal | None
    # The same calls through the Batch API (workbench.sweeps.batch); None where there is none.
    batch_cost_low: Decimal | None = None
    batch_cost_expected: Decimal | None = None
    batch_cost_high: Decimal | None = None
    # Why these calls could not be sent as things stand (no key set), or None.
    note: str | None = None
    # The models whose price is unknown: a refusal names them.
    unpriced_models: frozenset[str] = frozenset()
    # What the planned calls can tell apart, for a sweep's estimate ("with 40 cases x 2
    # repeats you can detect a difference of about 14 points ..."), or None. A remark
    # about the plan, not a quantity: two estimates of the same calls are equal without it.
    planning: str | None = field(default=None, compare=False)
    # Of the calls counted, those a scorer (a judge) makes about the runs: a progress bar
    # counts runs, so "64 runs" for 32 runs and their 32 judge calls misled.
    judge_calls: int = 0

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(
            runs=self.runs + other.runs,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens_expected=self.completion_tokens_expected
            + other.completion_tokens_expected,
            completion_tokens_max=self.completion_tokens_max + other.completion_tokens_max,
            cost_low=_add(self.cost_low, other.cost_low),
            cost_expected=_add(self.cost_expected, other.cost_expected),
            cost_high=_add(self.cost_high, other.cost_high),
            batch_cost_low=_add(self.batch_cost_low, other.batch_cost_low),
            batch_cost_expected=_add(self.batch_cost_expected, other.batch_cost_expected),
            batch_cost_high=_add(self.batch_cost_high, other.batch_cost_high),
            note=self.note or other.note,
            unpriced_models=self.unpriced_models | other.unpriced_models,
            planning=self.planning or other.planning,
            judge_calls=self.judge_calls + other.judge_calls,
        )

    def as_judge_calls(self) -> Estimate:
        """These calls counted as a scorer's about runs, not as runs of their own."""
        return replace(self, runs=0, judge_calls=self.judge_calls + self.runs)

    @classmethod
    def zero(cls) -> Estimate:
        zero = Decimal(0)
        return cls(0, 0, 0, 0, zero, zero, zero, zero, zero, zero)

    def __str__(self) -> str:
        # ``$0`` once, not "$0 expected ($0 to $0)": the local model is free.
        dollars = _dollars(self.cost_low, self.cost_expected, self.cost_high)
        if dollars is None:
            dollars = "cost unknown (set a price with wb.set_price)"
        batch = _dollars(self.batch_cost_low, self.batch_cost_expected, self.batch_cost_high)
        if batch is not None:
            dollars += f" · batch {batch}"
        note = f" · {self.note}" if self.note else ""
        note += f" · {self.planning}" if self.planning else ""
        answers = (  # an embedding answers no tokens: none to speak of
            f" · ~{self.completion_tokens_expected:,} completion tokens "
            f"(at most {self.completion_tokens_max:,})"
            if self.completion_tokens_max
            else ""
        )
        return f"{self.calls()} · {self.prompt_tokens:,} prompt tokens{answers} · {dollars}{note}"

    def calls(self) -> str:
        """``"32 runs"``, ``"32 runs + 32 judge calls"``, ``"3 judge calls"``."""
        runs = _count(self.runs, "run")
        if not self.judge_calls:
            return runs
        judged = _count(self.judge_calls, "judge call")
        return judged if not self.runs else f"{runs} + {judged}"

    def _repr_html_(self) -> str:
        # HTML, never Markdown: "$...$" in Markdown is typeset as maths.
        return f"<b>Estimate:</b> {money_html(str(self))}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _dollars(low: Decimal | None, mid: Decimal | None, high: Decimal | None) -> str | None:
    """``$0.12 expected ($0.0016 to $0.12)``; one amount when all three are the same
    (``$0``); None when unknown."""
    if mid is None or low is None or high is None:
        return None
    if low == mid == high:
        return format_money(mid)
    return f"{format_money(mid)} expected ({format_money(low)} to {format_money(high)})"


def _cost(
    session: Pricing,
    model: str,
    provider: Provider,
    prompt: int,
    completion: int,
    custom: Mapping[str, Any],
    batch: bool = False,
) -> Decimal | None:
    with warnings.catch_warnings():
        # The call itself warns about an unknown price; an estimate should not repeat it.
        warnings.simplefilter("ignore")
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
        return session.quote(model, usage, provider, custom=custom, batch=batch).cost_usd


def estimate_messages(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    provider: Provider,
    session: Pricing,
    max_tokens: int | None = None,
    repeats: int = 1,
    experiment: str | None = None,
    memo: dict[Any, Any] | None = None,
) -> Estimate:
    """Estimate ``repeats`` calls of one message list.

    ``memo`` (any dict, kept by the caller) keeps what the store said about prices and
    earlier runs across many estimates, e.g. of one sweep's points: those are queries,
    and the mean is a scan of the table.
    """
    prompt = count_chat_tokens(list(messages), model)
    return estimate_prompt_tokens(
        prompt, model=model, provider=provider, session=session, max_tokens=max_tokens,
        repeats=repeats, experiment=experiment, memo=memo,
    )


def estimate_prompt_tokens(
    prompt: int,
    *,
    model: str,
    provider: Provider,
    session: Pricing,
    max_tokens: int | None = None,
    repeats: int = 1,
    experiment: str | None = None,
    memo: dict[Any, Any] | None = None,
) -> Estimate:
    """:func:`estimate_messages` of ``repeats`` calls of ``prompt`` tokens each."""
    memo = {} if memo is None else memo
    worst = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    which = experiment or session.experiment
    if ("mean", model, which) not in memo:
        memo["mean", model, which] = session.store.mean_completion_tokens(model, which)
    mean = memo["mean", model, which]
    expected = worst if mean is None else min(worst, round(mean))
    if "custom" not in memo:
        memo["custom"] = session.custom_prices()
    custom = memo["custom"]

    def cost(completion: int, batch: bool = False) -> Decimal | None:
        # A sweep's points mostly share their token counts: quoting each of a 100,000-row
        # dataset's points six times took 5.9 of its 10 s estimate (profiled).
        key = ("cost", model, provider.identity, prompt, completion, batch)
        if key not in memo:
            memo[key] = _cost(session, model, provider, prompt, completion, custom, batch)
        quoted: Decimal | None = memo[key]
        return quoted

    low, mid, high = cost(0), cost(expected), cost(worst)
    n = Decimal(repeats)
    batch: list[Decimal | None] = [None, None, None]
    if not provider.local:  # the local model has no Batch API
        batch = [cost(tokens, batch=True) for tokens in (0, expected, worst)]
    return Estimate(
        runs=repeats,
        prompt_tokens=prompt * repeats,
        completion_tokens_expected=expected * repeats,
        completion_tokens_max=worst * repeats,
        cost_low=None if low is None else low * n,
        cost_expected=None if mid is None else mid * n,
        cost_high=None if high is None else high * n,
        batch_cost_low=None if batch[0] is None else batch[0] * n,
        batch_cost_expected=None if batch[1] is None else batch[1] * n,
        batch_cost_high=None if batch[2] is None else batch[2] * n,
        unpriced_models=frozenset() if mid is not None else frozenset({model}),
    )


def estimate_embedding(
    texts: Sequence[str], *, model: str, provider: Provider, session: Pricing
) -> Estimate:
    """One embedding call of ``texts``: its tokens are all prompt, so its cost is known
    exactly (no answer length to guess)."""
    tokens = count_embedding_tokens(list(texts), model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the call itself warns of an unknown price
        usage = Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens)
        cost = session.quote(model, usage, provider).cost_usd
    return Estimate(
        runs=1, prompt_tokens=tokens, completion_tokens_expected=0, completion_tokens_max=0,
        cost_low=cost, cost_expected=cost, cost_high=cost,
        unpriced_models=frozenset() if cost is not None else frozenset({model}),
    )


def reserved_tokens(messages: Sequence[dict[str, Any]], model: str, max_tokens: int | None) -> int:
    """What a call may spend of a token limit: its prompt and the most it may answer (as
    its estimate counts them)."""
    worst = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    return count_chat_tokens(list(messages), model) + worst
