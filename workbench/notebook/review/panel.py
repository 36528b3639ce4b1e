"""``wb.ReviewPanel``: rate outputs one at a time (pass/fail or a grade), or prefer one of
two outputs for the same test case, by key or click, stored the moment they are given.

The logic is plain Python over a list of cases (:class:`Case`); the widget
(:mod:`workbench.notebook.review.widget`) only shows ``card`` and sends actions, which
:meth:`ReviewPanel.handle` applies, so tests drive the panel without a browser.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.calls.session import Session, get_session, one_line
from workbench.core.errors import InvalidInputError
from workbench.core.selection import TAKES, RunsSelectionError
from workbench.decide.paired import readable_case
from workbench.notebook.review.store import (
    HUMAN,
    WinRate,
    add_preference,
    default_rater,
    rate,
    read_preferences,
    win_rate,
)
from workbench.notebook.review.widget import ReviewWidget
from workbench.scoring.engine import expected_for, runs_to_score
from workbench.scoring.table import read_scores

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["ReviewPanel", "Case", "pair_key", "blind_swap"]

FILTERS = ("all", "unrated", "disagree")


@dataclass
class Case:
    """One thing to review: a run, or a (baseline, candidate) pair of runs."""

    run: dict[str, Any]
    other: dict[str, Any] | None = None  # the candidate's run, in pairwise mode
    swapped: bool = False  # pairwise and blind: the candidate is shown on the left

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])


def pair_key(run: dict[str, Any]) -> tuple[str, int]:
    """What pairs a baseline run with a candidate run: the test case (item_id), else the
    template variables, and the sample index (repeat)."""
    item = run.get("item_id")
    if item is None or item != item:  # None or NaN
        variables = run.get("variables")
        item = "vars:" + (variables if isinstance(variables, str) else json.dumps(variables))
    sample = run.get("sample_index")
    return str(item), int(sample) if sample is not None and sample == sample else 0


def blind_swap(baseline_run_id: str, candidate_run_id: str) -> bool:
    """Whether the candidate goes left: a hash of the two run ids, so the sides of a case
    are random across cases but the same every time the panel is opened."""
    digest = hashlib.sha256(f"{baseline_run_id}|{candidate_run_id}".encode()).digest()
    return bool(digest[0] & 1)


def _scale(scale: Any) -> str | tuple[int, int]:
    if scale == "pass/fail":
        return "pass/fail"
    if (isinstance(scale, (tuple, list)) and len(scale) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
            and 0 <= scale[0] < scale[1] <= 9):
        return (scale[0], scale[1])
    raise InvalidInputError(
        f'scale must be "pass/fail" or a (low, high) pair of digits like (1, 5), not {scale!r}'
    )


def _text(value: Any) -> str:
    if value is None or value != value:
        return ""
    return value if isinstance(value, str) else str(value)


def _knob(value: Any) -> str | None:
    if value is None or value != value:  # None or NaN: not sent
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def variant_of(run: dict[str, Any]) -> str:
    """The variant a run is of, as one line: ``gpt-4o-mini · temperature 0.7 · seed 1``."""
    parts = [_text(run.get("model"))]
    for name in ("temperature", "top_p", "seed"):
        shown = _knob(run.get(name))
        if shown is not None:
            parts.append(f"{name} {shown}")
    return " · ".join(p for p in parts if p)


def _verdict(row: Any) -> str:
    """Another scorer's score of a run, as one line: ``judge: fail (0) · too long``."""
    passed = row["passed"]
    word = "" if passed is None or passed != passed else ("pass" if passed else "fail")
    value = _knob(row["value"])
    said = f"{word} ({value})" if word and value is not None else word or value or "no score"
    reason = _text(row["reason"]).strip()
    return f"{row['scorer']}: {said}" + (f" · {reason}" if reason else "")


class ReviewPanel:
    """Review outputs by hand: ``wb.ReviewPanel(data, scale="pass/fail" | (1, 5),
    blind=False, pairwise=None, rater=None)`` over a Sweep, a runs DataFrame or an
    experiment name; ``pairwise=(baseline, candidate)`` (each any of those) compares two
    outputs for the same test case instead. Keys: p / f or the grade's digit; a (or ←),
    l (or →), t for left / right / tie; n skips, b goes back."""

    def __init__(
        self,
        data: Any = None,
        *,
        scale: Any = "pass/fail",
        blind: bool = False,
        pairwise: tuple[Any, Any] | None = None,
        rater: str | None = None,
        session: Session | None = None,
    ) -> None:
        self.session = session or get_session()
        self.scale = _scale(scale)
        self.blind = blind
        self.rater = rater or default_rater()
        self.pairwise = pairwise is not None
        if pairwise is not None:
            if data is not None:
                raise InvalidInputError(
                    "pass either data or pairwise=(baseline, candidate), not both"
                )
            if not isinstance(pairwise, (tuple, list)) or len(pairwise) != 2:
                raise InvalidInputError("pairwise takes (baseline, candidate)")
            self.cases, self.unpaired = self._pairs(*pairwise)
        elif data is None:
            raise RunsSelectionError(f"wb.ReviewPanel takes {TAKES}, or pairwise=(...)")
        else:
            frame = runs_to_score(data, self.session, "wb.ReviewPanel")
            self.cases, self.unpaired = [Case(row) for row in frame.to_dict("records")], 0
        self.filter = "all"
        self.position = 0
        self.trail: list[int] = []  # positions shown before, for back
        self.status = ""
        self._widget: ReviewWidget | None = None

    def _ratings_store(self) -> AnyStore:
        """Ratings and preferences live in the session's store (SQLite or PostgreSQL)."""
        return self.session.store

    # -- what is stored ---------------------------------------------------------------
    @property
    def scorer_id(self) -> str:
        return f"{HUMAN}:{self.rater}"

    def ratings(self) -> pd.DataFrame:
        """This rater's current ratings of the panel's runs (rows of ``wb.scores()``)."""
        frame = read_scores(self._ratings_store(), run_ids=[c.run_id for c in self.cases])
        return frame[frame["scorer_id"].eq(self.scorer_id)].reset_index(drop=True)

    def preferences(self) -> pd.DataFrame:
        """This rater's latest preference per pair shown in the panel."""
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        frame = read_preferences(self._ratings_store())
        pairs = {(c.run_id, str(c.other["run_id"])) for c in self.cases if c.other is not None}
        keep = [(b, c) in pairs and r == self.rater for b, c, r in
                zip(frame["baseline_run_id"], frame["candidate_run_id"], frame["rater"],
                    strict=True)]
        return frame[pd.Series(keep, index=frame.index, dtype=bool)].reset_index(drop=True)

    def summary(self) -> WinRate:
        """Pairwise: the candidate's win rate with its 95 % Wilson interval (ties half)."""
        if not self.pairwise:
            raise InvalidInputError("summary() is for pairwise panels: use panel.ratings()")
        return win_rate(self.preferences())

    def _rated(self) -> set[str]:
        if self.pairwise:
            return set(self.preferences()["baseline_run_id"].tolist())
        return set(self.ratings()["run_id"].tolist())

    def _disagreeing(self) -> set[str]:
        """Runs whose human pass/fail differs from another scorer's (a judge's)."""
        frame = read_scores(self._ratings_store(), run_ids=[c.run_id for c in self.cases])
        human = frame[frame["scorer_id"].eq(self.scorer_id) & frame["passed"].notna()]
        others = frame[~frame["scorer"].eq(HUMAN) & frame["passed"].notna()]
        verdict = dict(zip(human["run_id"], human["passed"], strict=True))
        return {run for run, passed in zip(others["run_id"], others["passed"], strict=True)
                if run in verdict and bool(passed) != bool(verdict[run])}

    # -- actions ----------------------------------------------------------------------
    def rate(self, value: Any, comment: str = "") -> None:
        """Rate the current case and move on: "pass"/"fail" or a grade; in pairwise mode
        "left", "right" or "tie" (as shown), or "baseline"/"candidate"."""
        case = self.current
        if case is None:
            raise InvalidInputError("nothing to rate: every case is filtered out or done")
        if self.pairwise:
            winner = self._winner(case, value)
            assert case.other is not None
            add_preference(
                self._ratings_store(), case.run_id, str(case.other["run_id"]), winner,
                rater=self.rater, reason=comment,
            )
            self.status = f"stored: {winner} preferred (previous case)"
        else:
            score, passed = self._score(value)
            rate(
                self._ratings_store(), case.run_id, rater=self.rater, value=score,
                passed=passed, reason=comment,
            )
            self.status = f"stored: {self._describe(score)} for the previous output"
        self.skip(keep_status=True)

    def skip(self, *, keep_status: bool = False) -> None:
        """Go to the next case the filter shows."""
        if not keep_status:
            self.status = ""
        following = self._next_from(self.position + 1)
        if following is not None:
            self.trail.append(self.position)
            self.position = following
        elif not keep_status:
            self.status = "no more cases after this one"
        self._refresh()

    def back(self) -> None:
        """Return to the case shown before."""
        if self.trail:
            self.position = self.trail.pop()
            self.status = ""
        else:
            self.status = "this is the first case"
        self._refresh()

    def show(self, filter: str) -> None:
        """Show "all" cases, the "unrated" ones, or those where the judge "disagree"s."""
        if filter not in FILTERS:
            raise InvalidInputError(f"filter must be one of {FILTERS}, not {filter!r}")
        self.filter = filter
        self.trail.clear()
        start = self._next_from(0)
        self.position = start if start is not None else len(self.cases)
        self.status = "" if start is not None else f"no cases match {filter!r}"
        self._refresh()

    def handle(self, message: dict[str, Any]) -> None:
        """Apply one message from the widget: {"action", "value", "comment", "run_id"}; an
        error shows as one line in the panel.

        ``run_id`` is the run the card showed when the key was pressed: a rating or skip
        for any other run (a held or double-pressed key, sent before the next card was
        drawn) is dropped, so only an output the person saw is rated."""
        try:
            action = message.get("action")
            if action in ("rate", "skip") and not self._shown(message):
                self.status = "ignored a second key press: it was for the previous output"
                self._refresh()
                return
            if action == "rate":
                self.rate(message.get("value"), str(message.get("comment") or ""))
            elif action == "skip":
                self.skip()
            elif action == "back":
                self.back()
            elif action == "filter":
                self.show(str(message.get("value")))
        except Exception as exc:  # noqa: BLE001  # shown in the panel, not as a traceback
            self.status = one_line(exc)
            self._refresh()

    def _shown(self, message: dict[str, Any]) -> bool:
        """Whether the message was sent for the case on screen now (a message without a
        run id, from code rather than the widget, is taken as meant for it)."""
        if "run_id" not in message:
            return True
        case = self.current
        return bool(message["run_id"] == (case.run_id if case is not None else None))

    # -- what is shown ----------------------------------------------------------------
    @property
    def current(self) -> Case | None:
        if 0 <= self.position < len(self.cases) and self._visible(self.position):
            return self.cases[self.position]
        return None

    @property
    def position_text(self) -> str:
        """``item 3 of 20`` (the case's place in the whole list, whatever the filter)."""
        if self.current is None:
            return ""
        return f"item {self.position + 1} of {len(self.cases)}"

    def verdicts(self, run_id: str) -> list[str]:
        """The other scorers' latest scores of a run (a judge's verdict and its reason)."""
        frame = read_scores(self._ratings_store(), run_ids=[run_id])
        others = frame[~frame["scorer"].eq(HUMAN)].drop_duplicates("scorer_id", keep="last")
        return [_verdict(row) for _, row in others.iterrows()]

    @property
    def progress(self) -> str:
        rated = len(self._rated() & {c.run_id for c in self.cases})
        text = f"{rated} of {len(self.cases)} rated"
        if self.unpaired:
            text += f" ({self.unpaired} runs without a partner left out)"
        return text

    def card(self) -> dict[str, Any]:
        """What the widget draws for the current case (JSON-able)."""
        case = self.current
        if case is None:
            return {"mode": "pairwise" if self.pairwise else "single",
                    "message": self.status or "nothing to review"}
        run = case.run
        card: dict[str, Any] = {
            "mode": "pairwise" if self.pairwise else "single",
            "run_id": case.run_id,
            "position": self.position_text,
            "prompt": _text(run.get("prompt")),
            "variables": "" if _text(run.get("variables")) in ("", "{}")
            else readable_case(_text(run.get("variables"))),  # country = France, not JSON
            "expected": _text(expected_for(run)),
        }
        if case.other is not None:
            sides = [("baseline", run), ("candidate", case.other)]
            if case.swapped:
                sides.reverse()
            (left_name, left), (right_name, right) = sides
            card.update(left=_text(left.get("output")), right=_text(right.get("output")),
                        left_label="left" if self.blind else f"left: {left_name}",
                        right_label="right" if self.blind else f"right: {right_name}")
            if not self.blind:  # blind: which variant is which is the thing hidden
                card.update(left_variant=variant_of(left), right_variant=variant_of(right),
                            left_system=_text(left.get("system")),
                            right_system=_text(right.get("system")))
        else:
            card["output"] = _text(run.get("output"))
            card["variant"] = variant_of(run)
            card["system"] = _text(run.get("system"))
            card["verdicts"] = self.verdicts(case.run_id)
            stored = self.ratings()
            mine = stored[stored["run_id"].eq(case.run_id)]
            if not mine.empty:
                row = mine.iloc[-1]
                card["rating"] = f"your rating: {self._describe(row['value'])}"
                card["comment"] = _text(row["reason"])
        return card

    def widget(self) -> ReviewWidget:
        """The notebook widget (made once)."""
        if self._widget is None:
            self._widget = ReviewWidget(
                scale=self.scale if self.scale == "pass/fail" else list(self.scale)
            )
            self._widget.on_msg(lambda _w, content, _b: self.handle(dict(content)))
            self._refresh()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        shown = self.widget()._repr_mimebundle_(**kwargs)
        if shown is None:
            return None
        data, metadata = shown  # anywidget's form: (data, metadata)
        # All that shows where the widget cannot (a saved notebook opened again): the
        # widget's own text was "<...ReviewWidget object at 0x7fe5719ab610>".
        return {**data, "text/plain": "ReviewPanel (a widget: run the cell to use it)"}, metadata

    def _refresh(self) -> None:
        if self._widget is not None:
            card, progress = self.card(), self.progress
            with self._widget.hold_sync():  # one message to the browser, one redraw
                self._widget.card = card
                self._widget.progress = progress
                self._widget.status = self.status
                self._widget.filter = self.filter

    # -- helpers ----------------------------------------------------------------------
    def _visible(self, position: int) -> bool:
        if self.filter == "all":
            return True
        run_id = self.cases[position].run_id
        if self.filter == "unrated":
            return run_id not in self._rated()
        return run_id in self._disagreeing()

    def _next_from(self, start: int) -> int | None:
        if self.filter == "all":
            return start if start < len(self.cases) else None
        hidden = self._rated() if self.filter == "unrated" else None
        shown = self._disagreeing() if self.filter == "disagree" else None
        for position in range(start, len(self.cases)):
            run_id = self.cases[position].run_id
            if (hidden is not None and run_id not in hidden) or (shown and run_id in shown):
                return position
        return None

    def _score(self, value: Any) -> tuple[float, bool]:
        if self.scale == "pass/fail":
            if value in ("pass", True):
                return 1.0, True
            if value in ("fail", False):
                return 0.0, False
            raise InvalidInputError(f'rate "pass" or "fail", not {value!r}')
        assert not isinstance(self.scale, str)
        low, high = self.scale
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                low <= value <= high):
            raise InvalidInputError(f"rate a grade from {low} to {high}, not {value!r}")
        return float(value), value > (low + high) / 2  # passes in the upper half

    def _winner(self, case: Case, value: Any) -> str:
        if value in ("baseline", "candidate", "tie"):
            return str(value)
        if value in ("left", "right"):
            left_is_candidate = case.swapped
            return "candidate" if (value == "left") == left_is_candidate else "baseline"
        raise InvalidInputError(f'prefer "left", "right" or "tie", not {value!r}')

    def _describe(self, value: Any) -> str:
        if self.scale == "pass/fail":
            return "pass" if value == 1 else "fail"
        return f"{value:g}"

    def _pairs(self, baseline: Any, candidate: Any) -> tuple[list[Case], int]:
        left = runs_to_score(baseline, self.session, "pairwise").to_dict("records")
        right = runs_to_score(candidate, self.session, "pairwise").to_dict("records")
        for side, runs in (("baseline", left), ("candidate", right)):
            keys = [pair_key(run) for run in runs]
            if len(set(keys)) != len(keys):
                raise InvalidInputError(
                    f"the {side} has more than one run of the same test case and sample_index"
                    " (several knob combinations?): pass one combination per side, e.g."
                    " df[df.temperature == 0]"
                )
        by_key = {pair_key(run): run for run in right}
        cases, used = [], set()
        for run in left:
            partner = by_key.get(pair_key(run))
            if partner is None or partner["run_id"] == run["run_id"]:
                continue
            used.add(partner["run_id"])
            swapped = self.blind and blind_swap(str(run["run_id"]), str(partner["run_id"]))
            cases.append(Case(run, partner, swapped))
        unpaired = len(left) - len(cases) + len(right) - len(used)
        if not cases:
            raise InvalidInputError(
                "no baseline run has a candidate for the same test case (item_id or "
                "variables) and sample_index: are they runs of the same cases?"
            )
        return cases, unpaired
