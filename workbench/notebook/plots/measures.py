"""The numbers the diversity and embedding plots draw: distinct-2, the mean pairwise cosine
distance, and a 2-D PCA projection."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

__all__ = ["distinct_2", "mean_cosine_distance", "pca_2d"]


def distinct_2(texts: list[str]) -> float:
    """Unique word bigrams / all word bigrams, pairs counted within each text."""
    words = [text.lower().split() for text in texts]
    pairs = [pair for each in words for pair in zip(each, each[1:], strict=False)]
    return len(set(pairs)) / len(pairs) if pairs else math.nan


def mean_cosine_distance(vectors: Floats) -> float:
    """Mean of 1 - cos over all pairs; nan for fewer than two vectors."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    n = len(vectors)
    if n < 2:
        return math.nan
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    # The sum of v_i . v_j over i != j is |sum v|^2 - sum |v|^2: O(n d), not an n x n matrix.
    total = unit.sum(axis=0)
    off_diagonal = float(total @ total - (unit * unit).sum())
    return max(0.0, 1.0 - off_diagonal / (n * (n - 1)))


def pca_2d(vectors: Floats) -> tuple[Floats, tuple[float, float]]:
    """The first two principal components (numpy SVD) and their share of the variance."""
    import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

    points = np.zeros((len(vectors), 2))
    if len(vectors) < 2:
        return points, (0.0, 0.0)
    centred = vectors - vectors.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    # SVD's signs are arbitrary; fixing them keeps a re-run's picture the same way round.
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    points[:, : len(components)] = centred @ (components * signs[:, None]).T
    variance = np.append(singular**2, [0.0, 0.0])  # fewer than two components: 0% for PC2
    share = variance / variance.sum() if variance.sum() > 0 else variance
    return points, (float(share[0]), float(share[1]))
