"""The plots read at a glance (issue 22, findings 5.3 and 5.10): Pareto and embedding
labels neither overlap each other, the legend nor the axes' edge; a wide Pareto figure has
wide axes; an all-free cost plot says so; outcome counts are whole and in words.
Positions are measured in the drawn figure (matplotlib's own renderer extents)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import workbench as wb


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def swept_runs(cost: float = 0.0) -> pd.DataFrame:
    """48 scored runs of 12 knob combinations, long system prompts among them."""
    rng = np.random.default_rng(1)
    rows = []
    for temperature in (0, 0.5, 1.0, 1.5):
        for system in ("Answer in one word.", "You are a helpful assistant.", "Be brief."):
            for _ in range(4):
                rows.append({
                    "status": "ok", "kind": "chat", "temperature": temperature,
                    "system": system, "output": "an answer", "prompt_tokens": 10,
                    "completion_tokens": int(rng.integers(3, 16)), "cost_usd": cost,
                    "latency_s": 0.1, "finish_reason": str(rng.choice(["stop", "length"])),
                    "score:similar": float(rng.uniform(0.2, 0.9)),
                })
    return pd.DataFrame(rows)


def labels_of(ax: Axes) -> list[Any]:
    return [t for t in ax.texts if t.get_text()]  # not adjustText's connecting lines


def assert_labels_apart_and_inside(ax: Axes, count: int) -> None:
    figure = ax.get_figure(root=True)
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    texts = labels_of(ax)
    assert len(texts) == count
    boxes = [t.get_window_extent(renderer) for t in texts]
    inside = ax.get_window_extent(renderer)
    for box, text in zip(boxes, texts, strict=True):
        assert inside.x0 - 1 <= box.x0 and box.x1 <= inside.x1 + 1, text.get_text()
        assert inside.y0 - 1 <= box.y0 and box.y1 <= inside.y1 + 1, text.get_text()
    for (a, ta), (b, tb) in combinations(zip(boxes, texts, strict=True), 2):
        assert not a.overlaps(b), (ta.get_text(), tb.get_text())
    legend = ax.get_legend()
    if legend is not None:
        frame = legend.get_window_extent(renderer)
        assert not frame.overlaps(inside), "the legend covers the chart"


def test_pareto_labels_stay_apart_inside_wide_axes() -> None:
    ax = wb.plots.pareto(swept_runs(), quality="score:similar", cost="completion_tokens")
    assert_labels_apart_and_inside(ax, 12)
    # Values only; the knobs are named once, in the legend's title.
    assert "system=" not in " ".join(t.get_text() for t in labels_of(ax))
    assert ax.get_legend().get_title().get_text() == "labels: system, temperature"
    box = ax.get_position()
    figure = ax.get_figure(root=True)
    width, height = box.width * figure.get_figwidth(), box.height * figure.get_figheight()
    assert width > 1.4 * height, "square axes in a wide figure"


def test_embedding_labels_stay_apart_inside_the_axes() -> None:
    class Embedded:
        texts = ["a cat sat on the mat", "a kitten rested on the rug", "a dog chased the ball",
                 "the puppy played fetch", "stock prices fell sharply",
                 "the market closed lower", "a cat slept on a mat", "the dog ran after a ball"]
        vectors = np.array([
            [1, 0, 0, 0.1], [0.95, 0.05, 0, 0.1], [0.2, 1, 0, 0], [0.25, 0.95, 0.05, 0],
            [0, 0, 1, 0.2], [0, 0.05, 0.97, 0.25], [0.98, 0.01, 0.01, 0.1],
            [0.22, 0.97, 0, 0.02]])

    assert_labels_apart_and_inside(wb.plots.embeddings(Embedded()), 8)


def test_an_all_free_cost_plot_says_so_without_tiny_ticks() -> None:
    ax = wb.plots.cost(swept_runs(cost=0.0), by="temperature")
    assert "all 48 priced runs were free ($0)" in [t.get_text() for t in ax.texts]
    assert list(ax.get_yticks()) == [0]


def test_outcome_counts_are_whole_and_say_what_happened() -> None:
    ax = wb.plots.outcomes(swept_runs(), by="temperature")
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "cut at max tokens", "finished"]
    ticks = ax.get_yticks()
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)
