"""One search's state: its candidates (text, parent, the reflection that produced it,
scores, cost), its money (the search's budget, counted from the session's spend so the
sweeps' runs, the judge's calls and the reflections all count), and the two kinds of
calls gepa's adapter makes through it: a sweep per evaluation, a chat per reflection."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.errors import BudgetExceededError
from workbench.core.money import format_money
from workbench.optimize.lineage import candidate_key

if TYPE_CHECKING:
    from workbench.calls.session import Session
    from workbench.scoring.base import Scorer
    from workbench.sweeps.sweep import Sweep

__all__ = ["Candidate", "Search", "PARTS"]

PARTS = ("prompt", "system")  # what a candidate may change: the user template, the system


@dataclass
class Candidate:
    """One prompt the search proposed (or started from)."""

    id: int
    parts: dict[str, str]  # the optimized parts' texts
    parent: int | None = None
    reflection: str | None = None  # the reflection model's answer that proposed it
    status: str = "proposed"  # seed, proposed, refused
    refused: str | None = None  # why it was not evaluated
    minibatch_scores: list[float] = field(default_factory=list)  # mean of each minibatch
    train_score: float | None = None  # mean over every training case, when evaluated so
    cost: Decimal = Decimal(0)  # its reflection and evaluations (judge included)
    spent_after: Decimal = Decimal(0)  # the search's spend when it was last evaluated
    scored_at: Decimal | None = None  # the search's spend when train_score was had
    key: str = ""  # its short id in the table's candidate column (lineage.candidate_key)
    reflection_run: str | None = None  # the run id(s) of the reflection call(s) proposing it


class Search:
    """What gepa's adapter calls back into; see the module docstring."""

    def __init__(
        self,
        session: Session,
        *,
        seed: Mapping[str, str],
        fixed_parts: Mapping[str, str | None],
        train: Sequence[Mapping[str, Any]],
        expected: str | None,
        scorers: list[Scorer],
        experiment: str,
        budget: Decimal | None,
        reserve: Decimal,
        variables: set[str],
        keep: Sequence[str],
        sweep_options: Mapping[str, Any],
        reflection_options: Mapping[str, Any],
        max_candidates: int,
        on_change: Callable[[Search], None] | None = None,
    ) -> None:
        self.session = session
        self.fixed_parts = dict(fixed_parts)
        self.train = list(train)
        self.expected = expected
        self.scorers = scorers
        self.objective = scorers[0]
        # The objective's best value: a judge's top grade (5 on 1-5), else 1.0.
        scale = getattr(self.objective, "scale", None)
        self.perfect = float(scale[1]) if scale else 1.0
        self.experiment = experiment
        self.budget = budget
        self.reserve = reserve  # kept back for the validation at the end
        self.variables = variables
        self.keep = list(keep)
        self.sweep_options = dict(sweep_options)
        self.reflection_options = dict(reflection_options)
        self.max_candidates = max_candidates
        self.on_change = on_change
        self.start = session.spend.spent
        self.candidates: list[Candidate] = [
            Candidate(0, dict(seed), status="seed", key=self.key_of(seed))]
        self.sweeps: list[Sweep] = []
        self.reflections = 0  # reflection calls tried (the bound max_candidates counts)
        self.stop_reason: str | None = None
        self.failed_reflections: list[str] = []  # why a reflection call failed, each time
        self._reflection_cost = Decimal(0)  # paid since the last candidate was added
        self._reflection_runs: list[str] = []  # run ids of the reflections since then

    # -- money ------------------------------------------------------------------------

    def spent(self) -> Decimal:
        """What this search has spent so far (sweeps, judge, reflections; replays are $0)."""
        return self.session.spend.spent - self.start

    def remaining(self) -> Decimal | None:
        """What the search may still spend, the validation's share kept back."""
        if self.budget is None:
            return None
        return self.budget - self.reserve - self.spent()

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def should_stop(self, _state: Any = None) -> bool:
        """gepa's stop condition, asked before each iteration."""
        if self.stop_reason is not None:
            return True
        best = self.best().train_score
        if self.reflections >= self.max_candidates:
            self.stop(f"max_candidates={self.max_candidates} proposals made")
        elif best is not None and best >= self.perfect:
            self.stop(f"a candidate scored {self.perfect:g} on every training case")
        # gepa skips a reflection when a minibatch is all right: bound the iterations too,
        # or such a search never stops (its replays cost nothing).
        elif getattr(_state, "i", 0) >= 3 * self.max_candidates:
            self.stop(f"{3 * self.max_candidates} iterations without enough proposals")
        return self.stop_reason is not None

    # -- candidates -------------------------------------------------------------------

    def candidate_id(self, parts: Mapping[str, str]) -> int:
        for candidate in self.candidates:
            if candidate.refused is None and candidate.parts == dict(parts):
                return candidate.id
        raise KeyError("gepa evaluated a candidate the search did not propose")

    def add_candidate(self, parts: Mapping[str, str], *, parent: int, reflection: str,
                      refused: str | None) -> Candidate:
        cost = self._reflection_cost
        self._reflection_cost = Decimal(0)
        runs, self._reflection_runs = " ".join(self._reflection_runs) or None, []
        status = "refused" if refused else "proposed"
        if refused is None and any(c.parts == dict(parts) for c in self.candidates):
            # gepa evaluates it as the earlier one (the same texts): its scores are there.
            status = f"same as #{self.candidate_id(parts)}"
        candidate = Candidate(len(self.candidates), dict(parts), parent=parent,
                              reflection=reflection, refused=refused, cost=cost,
                              status=status, spent_after=self.spent(),
                              key=self.key_of(parts), reflection_run=runs)
        self.candidates.append(candidate)
        self._changed()
        return candidate

    def key_of(self, parts: Mapping[str, str]) -> str:
        """The candidate's id in the table (its texts' short hash)."""
        return candidate_key(*self.full(parts))

    def full(self, parts: Mapping[str, str]) -> tuple[str, str | None]:
        """The user template and system prompt a candidate sends."""
        whole = {**self.fixed_parts, **parts}
        return str(whole.get("prompt") or ""), whole.get("system")

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # -- calls ------------------------------------------------------------------------

    def sweep_of(self, parts: Mapping[str, str], cases: Sequence[Mapping[str, Any]],
                 *, budget: Decimal | None, lineage: Candidate | None = None) -> Sweep:
        """A sweep of the candidate on ``cases``; with ``lineage`` (a training evaluation)
        its rows carry the candidate's id, its parent's and its reflection's run id."""
        from workbench.sweeps.sweep import sweep  # sweeps pull in pandas: not at import

        template, system = self.full(parts)
        s = sweep(template, system=system, vars=list(cases), expected=self.expected,
                  experiment=self.experiment, scorers=self.scorers, budget=budget,
                  strict=budget is not None, session=self.session, **self.sweep_options)
        if lineage is not None:
            parent = None if lineage.parent is None else self.candidates[lineage.parent].key
            s.mark(candidate=lineage.key, parent=parent, reflection=lineage.reflection_run)
        return s

    def evaluate(self, parts: Mapping[str, str], indices: Sequence[int]) -> list[dict[str, Any]]:
        """Run the candidate on the training cases ``indices`` (a sweep: replayed when it
        was run before) and return, per case, its variables, output, score and reason."""
        candidate = self.candidates[self.candidate_id(parts)]
        before = self.spent()
        # gepa pads a minibatch with repeats; a sweep takes each case once.
        unique = list(dict.fromkeys(indices))
        s = self.sweep_of(parts, [self.train[i] for i in unique], budget=self.remaining(),
                          lineage=candidate)
        self.sweeps.append(s)
        try:
            s.run(progress=False)
        except BudgetExceededError as exc:
            self.stop(f"the budget: {exc}")
            raise
        finally:
            candidate.cost += self.spent() - before
        by_case = dict(zip(unique, self._scored(s, unique), strict=True))
        scored = [by_case[i] for i in indices]
        mean = sum(r["score"] for r in scored) / max(len(scored), 1)
        if sorted(set(indices)) == list(range(len(self.train))):
            candidate.train_score = mean
            candidate.scored_at = self.spent()
        else:
            candidate.minibatch_scores.append(mean)
        candidate.spent_after = self.spent()
        self._changed()
        return scored

    def _scored(self, s: Sweep, indices: Sequence[int]) -> list[dict[str, Any]]:
        from workbench.scoring.table import read_scores  # pandas: not at import

        df = s.df
        column = "score:" + self.objective.name
        reasons: dict[str, str] = {}
        if "run_id" in df:
            frame = read_scores(self.session.store, run_ids=df["run_id"].tolist())
            frame = frame[frame["scorer_id"].eq(self.objective.id)]
            reasons = {r: str(t) for r, t in zip(frame["run_id"], frame["reason"], strict=True)
                       if t}
        rows = {int(row["point"]): row for row in df.to_dict("records") if "point" in row}
        scored = []
        for point, index in enumerate(indices):
            row = rows.get(point, {})
            value = row.get(column)
            ok = row.get("status") == "ok" and value is not None and value == value
            case = self.train[index]
            scored.append({
                "variables": {k: v for k, v in case.items() if k != self.expected},
                "expected": case.get(self.expected) if self.expected else None,
                "output": str(row.get("output") or ""),
                "score": float(value) if ok else 0.0,
                "reason": reasons.get(str(row.get("run_id")), ""),
                "error": row.get("error") if row.get("status") == "error" else None,
            })
        return scored

    def reflect(self, prompt: str) -> str | None:
        """The reflection model's answer to ``prompt`` (a logged call, replayed when it was
        asked before); None, with the search stopped, when the budget cannot pay for it,
        or None when the call fails (the search goes on)."""
        from workbench.calls.single import chat, estimate  # the client: not at import

        self.reflections += 1
        options = self.reflection_options
        remaining = self.remaining()
        if remaining is not None:
            est = estimate(self.session, prompt, model=options.get("model"),
                           max_tokens=options.get("max_tokens"))
            high = est.cost_high
            if high is None or high > remaining:
                priced = "of unknown price" if high is None else f"up to {format_money(high)}"
                self.stop(f"the budget: a reflection {priced} does not fit in the "
                          f"{format_money(max(remaining, Decimal(0)))} left")
                return None
        before = self.spent()
        try:
            answer = chat(self.session, prompt, experiment=self.experiment, budget=remaining,
                          **options)
        except BudgetExceededError as exc:
            self.stop(f"the budget: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a failed reflection is one lost proposal
            self._reflection_cost += self.spent() - before
            self.failed_reflections.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return None
        self._reflection_cost += self.spent() - before
        self._reflection_runs.append(answer.record.run_id)
        return answer.text

    def best(self) -> Candidate:
        """The candidate with the highest score over every training case (the earliest
        of equals: the starting prompt wins a tie)."""
        scored = [c for c in self.candidates if c.train_score is not None]
        if not scored:
            return self.candidates[0]
        return max(scored, key=lambda c: (c.train_score, -c.id))
