"""``wb.plots``: the figures of the experiment table, kept at this name; they live in
:mod:`workbench.notebook.plots`."""

from workbench.notebook.plots import (
    cost,
    diversity,
    embeddings,
    heatmap,
    latency,
    length,
    logprobs,
    outcomes,
    paired,
    pareto,
    scores,
    tokens,
)

__all__ = [
    "tokens", "cost", "latency", "length", "diversity", "heatmap", "embeddings", "outcomes",
    "logprobs", "scores", "pareto", "paired",
]
