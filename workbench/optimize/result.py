"""What ``wb.optimize`` returns: the best prompt, what the search spent, its candidates
as a table, the diff of the best against the start, a plot of score over spend, and the
validation on held-out cases (decided or not)."""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.figures import ThemedFigure, adopt
from workbench.core.money import format_money
from workbench.core.worddiff import diff_html
from workbench.optimize.lineage import stored_candidates

if TYPE_CHECKING:
    import pandas as pd

    from workbench.decide.paired import PairedComparison
    from workbench.optimize.plan import SearchPlan
    from workbench.optimize.search import Search
    from workbench.sweeps.sweep import Sweep

__all__ = ["OptimizeResult", "Validation", "TextDiff"]


@dataclass
class Validation:
    """The best candidate against the starting prompt on the validation cases."""

    comparison: PairedComparison | None
    baseline: Sweep | None
    candidate: Sweep | None
    decided: bool
    alpha: float
    note: str = ""

    def __str__(self) -> str:
        if self.comparison is None:
            return f"not compared: {self.note}"
        verdict = ("the improvement is decided" if self.decided
                   else "the improvement is not decided")
        return f"{verdict} (alpha {self.alpha:g}): {self.comparison}"


class TextDiff:
    """The best text with the words it added in <ins> and those it removed in <del>: the
    word diff ``wb.compare`` marks outputs with (:mod:`workbench.core.worddiff`)."""

    def __init__(self, before: str, after: str) -> None:
        self.before, self.after = before, after

    def _repr_html_(self) -> str:
        return ("<div class='wb-worddiff' style='white-space: pre-wrap; line-height: 1.45'>"
                f"{diff_html(self.before, self.after)}</div>")

    def __str__(self) -> str:
        return "\n".join(difflib.unified_diff(self.before.splitlines(),
                                              self.after.splitlines(), "start", "best",
                                              lineterm=""))

    __repr__ = __str__


@dataclass
class OptimizeResult:
    search: Search
    plan: SearchPlan
    validation: Validation
    starting: dict[str, str | None]
    parts: list[str]
    train: list[dict[str, Any]] = field(repr=False)
    held: list[dict[str, Any]] = field(repr=False)

    @property
    def best_prompt(self) -> str:
        return self.search.full(self.search.best().parts)[0]

    @property
    def best_system(self) -> str | None:
        return self.search.full(self.search.best().parts)[1]

    @property
    def best(self) -> str:
        """The best text of the part optimized (the system prompt when that was changed,
        else the user template): usable in ``%%chat`` and ``wb.sweep``."""
        return self.best_prompt if "prompt" in self.parts else str(self.best_system)

    @property
    def spent(self) -> Decimal:
        """Dollars this call spent: runs, the judge's calls and reflections (replays $0)."""
        return self.search.spent()

    @property
    def stop_reason(self) -> str | None:
        return self.search.stop_reason

    @property
    def candidates(self) -> pd.DataFrame:
        """One row per candidate: its texts, parent, status (seed, proposed, refused, and
        why refused), the reflection that proposed it, scores, cost and spend after it."""
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        best = self.search.best().id
        rows = []
        for c in self.search.candidates:
            rows.append({
                "candidate": c.id, "parent": c.parent, "status": c.status,
                **{part: c.parts.get(part) for part in self.parts},
                "train_score": c.train_score,
                "minibatch_score": c.minibatch_scores[-1] if c.minibatch_scores else None,
                "cost_usd": float(c.cost),
                "spent_usd": float(c.spent_after if c.scored_at is None else c.scored_at),
                "refused": c.refused, "reflection": c.reflection, "best": c.id == best,
                "candidate_id": c.key, "reflection_run": c.reflection_run,
            })
        frame = pd.DataFrame(rows)
        frame["parent"] = frame["parent"].astype("Int64")
        return frame

    def stored_candidates(self) -> pd.DataFrame:
        """The candidates evaluated, read back from the table (what another session on
        the same store sees): :func:`workbench.optimize.lineage.stored_candidates`."""
        return stored_candidates(self.search.experiment, store=self.search.session.store)

    def diff(self, part: str | None = None) -> TextDiff:
        """The best candidate's text against the starting one (the optimized part)."""
        part = part or self.parts[0]
        best = self.search.best().parts.get(part, self.starting.get(part)) or ""
        return TextDiff(str(self.starting.get(part) or ""), best)

    def plot(self, ax: Any = None) -> Any:
        """Score of each candidate over the dollars spent when it was scored; the best so
        far as a step line; refused candidates as crosses on the axis. Returns the Axes."""
        import matplotlib.pyplot as plt  # deferred: keeps import workbench light (~0.6 s)

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.2))
        frame = self.candidates
        free = not frame["spent_usd"].any()  # a free model: spend says nothing, order does
        if free:
            frame["spent_usd"] = frame["candidate"].astype(float)
        scored = frame[frame["train_score"].notna()]
        scored = scored.sort_values("spent_usd")
        tried = frame[frame["train_score"].isna() & frame["minibatch_score"].notna()]
        refused = frame[frame["status"].eq("refused")]
        ax.step(scored["spent_usd"], scored["train_score"].cummax(), where="post",
                color="tab:green", label="best so far")
        ax.scatter(scored["spent_usd"], scored["train_score"], color="tab:blue",
                   label="scored on training cases", zorder=3)
        if len(tried):
            ax.scatter(tried["spent_usd"], tried["minibatch_score"], color="tab:orange",
                       marker="s", label="minibatch only (not better)", zorder=3)
        if len(refused):
            ax.scatter(refused["spent_usd"], [0.0] * len(refused), color="tab:red",
                       marker="x", label="refused", zorder=3)
        for _, row in scored.iterrows():
            ax.annotate(f"#{row['candidate']}", (row["spent_usd"], row["train_score"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
        # Room for those labels: with the default 5 % a best score of 1 on the last
        # candidate drew its "#n" across the top-right corner of the frame.
        ax.margins(x=0.1, y=0.15)
        ax.set_xlabel("candidate (nothing was spent)" if free else "spent (USD)")
        ax.set_ylabel(f"score: {self.search.objective.name}")
        ax.set_title("candidates over spend")
        from matplotlib.ticker import MaxNLocator  # deferred: keeps import workbench light (~0.3 s)

        # Dollar ticks with many digits crowd; candidates are whole numbers (no "1.5").
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=free))
        ax.legend(loc="best", fontsize=8)
        return adopt(ax)  # follows the notebook's theme, shown bare or assigned

    def figure(self) -> Any:
        """:meth:`plot` as a figure readable in both notebook themes."""
        import matplotlib.pyplot as plt  # deferred: keeps import workbench light (~0.6 s)

        ax = self.plot()
        themed = ThemedFigure(ax.figure)
        plt.close(ax.figure)
        return themed

    def __str__(self) -> str:
        best = self.search.best()
        start = self.search.candidates[0]
        score = "n/a" if best.train_score is None else f"{best.train_score:.3f}"
        first = "n/a" if start.train_score is None else f"{start.train_score:.3f}"
        proposed = len(self.search.candidates) - 1
        return (f"optimize: {proposed} candidate{'s' if proposed != 1 else ''}, "
                f"best #{best.id} "
                f"(training {score} vs {first} at the start), spent "
                f"{format_money(self.spent)}; stopped: {self.stop_reason}\n"
                f"validation: {self.validation}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        lines = html.escape(str(self)).replace("\n", "<br>")
        return (f"<div>{lines}</div><div><b>best {self.parts[0]} against the start</b>"
                f"</div>{self.diff()._repr_html_()}")
