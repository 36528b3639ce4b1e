"""Semantic similarity to a reference: the cosine of two embeddings, through ``wb.embed``.

All the texts a scoring pass needs go in one embed call (one row of the table, logged in
``<experiment>:judge``); vectors already in the store's embedding cache are not sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.core.checks import number
from workbench.scoring.base import Item, ModelScorer, Score, Scorer
from workbench.scoring.judge import judge_experiment

if TYPE_CHECKING:
    from workbench.scoring.calls import ModelCalls

__all__ = ["similar"]


class _Similar(ModelScorer):
    kind = "similar"

    def __init__(
        self, expected: Any, threshold: float, model: str | None, name: str | None
    ) -> None:
        number("similar(threshold=...)", threshold, low=-1, high=1)
        super().__init__(name, {"expected": expected, "threshold": threshold, "model": model})
        self.expected, self.threshold, self.model = expected, threshold, model

    def _reference(self, item: Item) -> str | None:
        wanted = self.expected if self.expected is not None else item.expected
        return None if wanted is None else str(wanted)

    def score_many(self, items: Sequence[Item], calls: ModelCalls, *, fresh: bool) -> list[Score]:
        import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)

        references = [self._reference(item) for item in items]
        texts = sorted({t for item, ref in zip(items, references, strict=True) if ref is not None
                        for t in (item.output, ref)})
        if not texts:
            return [_no_reference()] * len(items)
        experiment = judge_experiment(str(items[0].run.get("experiment") or calls.experiment))
        response = calls.embed(texts, model=self.model, experiment=experiment, fresh=fresh)
        vectors = np.asarray(response.vectors, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = dict(zip(texts, vectors / np.where(norms == 0, 1.0, norms), strict=True))
        scores = []
        for item, ref in zip(items, references, strict=True):
            if ref is None:
                scores.append(_no_reference())
                continue
            cosine = float(np.dot(unit[item.output], unit[ref]))
            passed = cosine >= self.threshold
            reason = f"cosine {cosine:.3f} {'>=' if passed else '<'} {self.threshold}"
            scores.append(Score(cosine, passed, reason, judge_run_id=response.run_id))
        return scores


def _no_reference() -> Score:
    return Score(None, None, "no expected answer: pass similar(expected=...) or give the"
                 " dataset an expected column")


def similar(
    expected: Any = None,
    threshold: float = 0.8,
    model: str | None = None,
    *,
    name: str | None = None,
) -> Scorer:
    """Cosine similarity of the output's and the reference's embeddings (``expected``, or
    None: the run's expected answer); passed when ``>= threshold``. ``model``: the
    embedding model (None: the provider's default)."""
    return _Similar(expected, threshold, model, name)
