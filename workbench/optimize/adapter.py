"""gepa's adapter for the workbench: a candidate is evaluated by an ordinary sweep (its
rows and scores in the table, so a re-run replays it), the reflective dataset is built
from each case's output, score and the scorer's reason, and a new text is proposed by
one logged chat call to the reflection model, then checked (:mod:`.checks`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gepa.core.adapter import EvaluationBatch
from gepa.strategies.instruction_proposal import InstructionProposalSignature

from workbench.optimize.checks import refusal

if TYPE_CHECKING:
    from workbench.optimize.search import Search

__all__ = ["SweepAdapter"]


class SweepAdapter:
    """The three things gepa asks of a system (``gepa.core.adapter.GEPAAdapter``); the
    data instances it is handed are indices into the search's training cases, so no
    validation case can reach it."""

    def __init__(self, search: Search) -> None:
        self.search = search

    def evaluate(
        self, batch: list[int], candidate: dict[str, str], capture_traces: bool = False
    ) -> EvaluationBatch[dict[str, Any], str]:
        search = self.search
        scored = search.evaluate(candidate, batch)
        outputs = [row["output"] for row in scored]
        scores = [row["score"] for row in scored]
        return EvaluationBatch(
            outputs=outputs, scores=scores, trajectories=scored if capture_traces else None
        )

    def make_reflective_dataset(
        self,
        candidate: dict[str, str],
        eval_batch: EvaluationBatch[dict[str, Any], str],
        components_to_update: list[str],
    ) -> dict[str, list[dict[str, Any]]]:
        records = []
        for trace in eval_batch.trajectories or []:
            feedback = f"score {trace['score']:.2f}"
            if trace.get("reason"):
                feedback += f": {trace['reason']}"
            if trace.get("expected") is not None:
                feedback += f" (the expected answer: {trace['expected']})"
            if trace.get("error"):
                feedback += f" (the call failed: {trace['error']})"
            records.append({
                "Inputs": trace["variables"],
                "Generated Outputs": trace["output"],
                "Feedback": feedback,
            })
        return {part: records for part in components_to_update}

    def propose_new_texts(
        self,
        candidate: dict[str, str],
        reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
        components_to_update: list[str],
    ) -> dict[str, str]:
        """One reflection call per part to update; an empty answer (gepa then skips the
        proposal) when the candidate is refused or the reflection fails."""
        search = self.search
        parent = search.candidate_id(candidate)
        proposed: dict[str, str] = {}
        reflections: list[str] = []
        for part in components_to_update:
            prompt = InstructionProposalSignature.prompt_renderer({
                "current_instruction_doc": candidate[part],
                "dataset_with_feedback": list(reflective_dataset[part]),
                "prompt_template": None,
            })
            answer = search.reflect(prompt if isinstance(prompt, str) else prompt[0]["content"])
            if answer is None:  # refused by the budget, or failed: recorded by reflect()
                return {}
            reflections.append(answer)
            proposed[part] = InstructionProposalSignature.output_extractor(answer)[
                "new_instruction"]
        why = refusal(proposed, candidate, search.fixed_parts, variables=search.variables,
                      keep=search.keep)
        search.add_candidate({**candidate, **proposed}, parent=parent,
                             reflection="\n\n".join(reflections), refused=why)
        return {} if why else proposed
