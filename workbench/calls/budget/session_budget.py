"""The session's :class:`Budget`: its limit (``wb.configure(budget=...)``) and what it has
spent, and the one place every path asks for an estimate, a check before sending, and a
charge after an answer: single calls, sweeps, the Batch API, embeddings and scorers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.calls.budget import estimate as estimates
from workbench.calls.budget import price
from workbench.calls.budget.charge import Spend
from workbench.calls.budget.gate import RAISE_SESSION, refuse_over_budget, refused, stopped
from workbench.core.money import format_money

if TYPE_CHECKING:
    from workbench.api.providers import Provider
    from workbench.calls.budget.estimate import Estimate, Pricing
    from workbench.calls.prepare import PreparedChat
    from workbench.core.record import RunRecord
    from workbench.core.usage import Usage

__all__ = ["Budget", "SessionBudget"]


class Budget:
    """The session's budget (USD, None: none) and what the session has spent; with
    ``pricing`` (the session: its store's earlier runs and prices), it also estimates.

    Charged from whichever thread an answer arrives on (a sweep's loop, a judge's
    thread), so the sums are kept under a lock.
    """

    def __init__(self, pricing: Pricing | None = None) -> None:
        self.pricing = pricing
        self.limit: Decimal | None = None
        self.spent = Decimal(0)
        # Calls answered at a price nobody knows: the spend is "$X + unknown" then.
        self.unpriced_calls = 0
        # With a budget set, a call whose cost cannot be known is refused unless this is
        # True: a budget that silently lets unpriced calls through is no budget.
        self.allow_unpriced = False
        self._lock = threading.Lock()

    # -- what is left ------------------------------------------------------------------

    def remaining(self) -> Decimal | None:
        return None if self.limit is None else self.limit - self.spent

    def keeps(self, own: Decimal | None = None) -> bool:
        """Whether there is any budget to keep (the work's own or the session's): without
        one nothing needs an estimate before sending."""
        return own is not None or self.limit is not None

    # -- estimate ----------------------------------------------------------------------

    def _pricing(self) -> Pricing:
        if self.pricing is None:
            raise RuntimeError("this budget was built without pricing: it cannot estimate")
        return self.pricing

    def estimate_messages(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> Estimate:
        """:func:`~.estimate.estimate_messages` priced by the session."""
        return estimates.estimate_messages(messages, session=self._pricing(), **kwargs)

    def estimate_prompt_tokens(self, prompt: int, **kwargs: Any) -> Estimate:
        """:func:`~.estimate.estimate_prompt_tokens` priced by the session."""
        return estimates.estimate_prompt_tokens(prompt, session=self._pricing(), **kwargs)

    def estimate_chat(self, prepared: PreparedChat, **kwargs: Any) -> Estimate:
        """The estimate of one prepared chat call (its model, provider, max_tokens)."""
        record = prepared.record
        kwargs.setdefault("experiment", record.experiment)
        return self.estimate_messages(
            prepared.body["messages"], model=record.model, provider=prepared.provider,
            max_tokens=record.max_tokens, **kwargs,
        )

    def estimate_embedding(
        self, texts: Sequence[str], *, model: str, provider: Provider
    ) -> Estimate:
        return estimates.estimate_embedding(
            texts, model=model, provider=provider, session=self._pricing()
        )

    # -- check -------------------------------------------------------------------------

    def refuse(
        self,
        what: str,
        estimate: Estimate,
        *,
        own: Decimal | None = None,
        own_name: str = "budget=...",
        strict: bool = False,
        batch: bool = False,
    ) -> None:
        """Raise, before sending ``what``, when ``estimate`` does not fit (see
        :func:`~.gate.refuse_over_budget`: the one wording of every refusal)."""
        refuse_over_budget(
            what, self, estimate, own=own, own_name=own_name, strict=strict, batch=batch
        )

    def check_call(self, prepared: PreparedChat, own: Decimal | None) -> None:
        """Refuse one chat call whose estimate is above its own or the session's budget."""
        if self.keeps(own):
            self.refuse("Call", self.estimate_chat(prepared), own=own)

    def check_embedding(self, texts: Sequence[str], *, model: str, provider: Provider) -> None:
        """Refuse one embedding call whose cost is above what the session has left."""
        if self.keeps():
            self.refuse("Embedding", self.estimate_embedding(texts, model=model, provider=provider))

    def check_not_spent(self, what: str, *, running: bool = False) -> None:
        """Raise once the session has spent its budget: nothing more goes out, whether its
        price is known or not."""
        remaining = self.remaining()
        if remaining is None or remaining >= 0:
            return
        if running:
            raise stopped(
                what,
                f"the session budget of {format_money(self.limit)} is spent; raise it with "
                f"{RAISE_SESSION} and run it again to finish the rest",
            )
        raise refused(
            what,
            f"the session budget of {format_money(self.limit)} is spent "
            f"({format_money(self.spent)}); raise it with {RAISE_SESSION}",
        )

    # -- charge ------------------------------------------------------------------------

    def charge(self, cost: Decimal | None) -> None:
        """Count one answered call; an unknown cost is counted as unknown, never as $0."""
        with self._lock:
            if cost is not None:
                self.spent += cost
            else:
                self.unpriced_calls += 1

    def charge_run(self, record: RunRecord, usage: Usage, provider: Provider) -> None:
        """Write ``usage`` and its price into ``record`` and charge the price."""
        custom = self._pricing().custom_prices()
        self.charge(price.price_into(record, usage, provider, custom))

    def spend(self, what: str, budget: Decimal | None, **kwargs: Any) -> Spend:
        """A piece of work's own spending, against ``budget`` and this session's."""
        return Spend(what, budget, self, **kwargs)


# The name it had: the session's budget.
SessionBudget = Budget
