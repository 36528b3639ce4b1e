"""The optimization plot's x axis: whole candidate numbers when nothing was spent (a free
model), dollars otherwise. Drawn from a search's candidates, no server needed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import pytest  # noqa: E402

from workbench.optimize.result import OptimizeResult  # noqa: E402
from workbench.optimize.search import Candidate  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def result_of(candidates: list[Candidate]) -> OptimizeResult:
    """An OptimizeResult over these candidates: the plot reads only them and the objective."""
    best = max(candidates, key=lambda c: c.train_score or 0.0)
    search: Any = SimpleNamespace(candidates=candidates, best=lambda: best,
                                  objective=SimpleNamespace(name="contains"))
    unused: Any = None  # the plan and the validation: the plot does not read them
    return OptimizeResult(search=search, plan=unused, validation=unused, starting={},
                          parts=["system"], train=[], held=[])


def shown_ticks(ax: Any) -> list[str]:
    """The x tick labels drawn inside the axis' limits."""
    ax.figure.canvas.draw()
    low, high = ax.get_xlim()
    return [label.get_text().replace("\u2212", "-") for label, tick in
            zip(ax.get_xticklabels(), ax.get_xticks(), strict=True) if low <= tick <= high]


def free(count: int) -> list[Candidate]:
    return [Candidate(id=i, parts={"system": f"text {i}"}, parent=None if i == 0 else 0,
                      status="seed" if i == 0 else "proposed", train_score=0.4 + 0.1 * i)
            for i in range(count)]


@pytest.mark.parametrize("count", [2, 3, 4])
def test_a_free_search_numbers_candidates_with_whole_ticks(count: int) -> None:
    ax = result_of(free(count)).plot()
    assert ax.get_xlabel() == "candidate (nothing was spent)"
    labels = shown_ticks(ax)
    assert labels, "no tick on the candidate axis"
    assert all(label.lstrip("-").isdigit() for label in labels), labels
    assert [int(label) for label in labels] == list(range(count))


def test_a_refused_candidate_keeps_the_ticks_whole() -> None:
    candidates = free(2)
    candidates.append(Candidate(id=2, parts={"system": "refused"}, parent=1,
                                status="refused", refused="too long"))
    labels = shown_ticks(result_of(candidates).plot())
    assert [int(label) for label in labels] == [0, 1, 2]


def test_spent_dollars_keep_their_fractional_ticks() -> None:
    candidates = free(3)
    for i, candidate in enumerate(candidates):
        candidate.scored_at = Decimal("0.001") * (i + 1)  # $0.001 .. $0.003
    ax = result_of(candidates).plot()
    assert ax.get_xlabel() == "spent (USD)"
    labels = shown_ticks(ax)
    assert len(labels) >= 2 and any("." in label for label in labels), labels


@pytest.mark.parametrize("count", [2, 5])
def test_the_candidate_labels_stay_inside_the_axes(count: int) -> None:
    # The notebook's case: the last candidate scores 1, at the top-right corner, where the
    # default 5 % margins drew its "#1" across the frame.
    candidates = free(count)
    candidates[0].train_score, candidates[-1].train_score = 0.0, 1.0
    ax = result_of(candidates).plot()
    ax.figure.canvas.draw()
    frame = ax.get_window_extent()
    labels = [text for text in ax.texts if text.get_text().startswith("#")]
    assert len(labels) == count
    for label in labels:
        box = label.get_window_extent()
        assert (frame.x0 <= box.x0 and box.x1 <= frame.x1
                and frame.y0 <= box.y0 and box.y1 <= frame.y1), (label.get_text(), box, frame)


@pytest.mark.parametrize(("count", "said"), [(2, "1 candidate,"), (3, "2 candidates,")])
def test_the_summary_counts_candidates_in_words(count: int, said: str) -> None:
    result = result_of(free(count))
    result.search.spent = lambda: Decimal(0)
    result.search.stop_reason = "done"
    result.validation = "not validated"  # the summary's second line, as text
    assert str(result).startswith(f"optimize: {said} best #{count - 1} ")
