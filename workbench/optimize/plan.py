"""The price of a search before anything is sent: the starting prompt on every training
case, then per proposal one reflection, the parent and the child on a minibatch and, if
the child is better, the child on every training case; and the validation at the end."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.calls.budget.gate import refuse_above
from workbench.calls.single import estimate
from workbench.core.money import format_money

if TYPE_CHECKING:
    from workbench.optimize.search import Search

__all__ = ["SearchPlan", "price_search"]


@dataclass
class SearchPlan:
    """Worst-case (high) and expected dollars; None where a price is unknown."""

    candidates: int
    calls_high: int  # model calls at most: runs, judge calls counted by the sweeps, reflections
    seed_high: Decimal | None
    proposal_high: Decimal | None  # one reflection + minibatches + a full evaluation
    validation_high: Decimal
    total_high: Decimal | None
    total_expected: Decimal | None

    def affordable(self, budget: Decimal) -> int:
        """How many proposals the budget pays for at their worst case."""
        if self.seed_high is None or self.proposal_high is None:
            return 0
        left = budget - self.seed_high - self.validation_high
        if left < 0:
            return 0
        if self.proposal_high == 0:
            return self.candidates
        return min(self.candidates, int(left / self.proposal_high))

    def refuse_over(self, budget: Decimal) -> None:
        """Raise before anything is sent when the budget cannot pay for the starting
        prompt's evaluation and the validation, at their worst case."""
        floor = None if self.seed_high is None else self.seed_high + self.validation_high
        refuse_above("Optimization", floor, budget,
                     detail="of evaluating the starting prompt and validating at the end")

    def __str__(self) -> str:
        def money(value: Decimal | None) -> str:
            return "unknown" if value is None else format_money(value)

        return (f"at most {self.candidates} proposals, {self.calls_high} calls: expected "
                f"{money(self.total_expected)}, at most {money(self.total_high)} "
                f"(validation {money(self.validation_high)} kept back)")


def _sum(*values: Decimal | None) -> Decimal | None:
    known = [v for v in values if v is not None]
    return None if len(known) < len(values) else sum(known, Decimal(0))


def price_search(search: Search, held: list[dict[str, Any]], *, minibatch: int) -> SearchPlan:
    # deferred: keeps import workbench light (gepa.strategies.instruction_proposal ~82 ms)
    from gepa.strategies.instruction_proposal import InstructionProposalSignature


    seed = search.candidates[0].parts
    train = search.sweep_of(seed, search.train, budget=None).estimate()
    n = len(search.train)
    batch = min(minibatch, n)
    per_case_high = None if train.cost_high is None else train.cost_high / n
    per_case_expected = None if train.cost_expected is None else train.cost_expected / n
    valid = search.sweep_of(seed, held, budget=None).estimate()
    validation_high = (valid.cost_high or Decimal(0)) * 2
    # A reflection prompt as long as it can be: every output at its max_tokens.
    longest = "word " * int(search.sweep_options.get("max_tokens") or 256)
    records = [{"Inputs": case, "Generated Outputs": longest, "Feedback": "score 0.00"}
               for case in search.train[:batch]]
    prompt = InstructionProposalSignature.prompt_renderer({
        "current_instruction_doc": "\n".join(seed.values()),
        "dataset_with_feedback": records, "prompt_template": None})
    options = search.reflection_options
    reflection = estimate(search.session, str(prompt), model=options.get("model"),
                          max_tokens=options.get("max_tokens"))
    k = search.max_candidates
    per_proposal_runs = 2 * batch + n
    proposal_high = _sum(reflection.cost_high,
                         None if per_case_high is None else per_case_high * per_proposal_runs)
    proposal_expected = _sum(reflection.cost_expected, None if per_case_expected is None
                             else per_case_expected * (batch + 1))
    total_high = _sum(train.cost_high, None if proposal_high is None else proposal_high * k,
                      validation_high)
    total_expected = _sum(train.cost_expected,
                          None if proposal_expected is None else proposal_expected * k,
                          valid.cost_expected or Decimal(0))
    return SearchPlan(
        candidates=k, calls_high=n + k * (1 + per_proposal_runs) + 2 * len(held),
        seed_high=train.cost_high, proposal_high=proposal_high,
        validation_high=validation_high, total_high=total_high, total_expected=total_expected,
    )
