"""A search's candidates as the table holds them: each evaluation run carries its
candidate (a short hash of the texts it sends), its parent's and the run id of the
reflection call that proposed it (columns of migration m013_runs_lineage), so the
candidates, their lineage and their scores are read back from any store that holds the
runs, by another session or a colleague on the team store, with no request sent."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import AnyStore

__all__ = ["candidate_key", "stored_candidates"]


def candidate_key(template: str, system: str | None) -> str:
    """The short id of a candidate: 12 hex digits of the sha256 of the user template and
    system prompt it sends (the same texts, the same id, in any session)."""
    text = json.dumps({"prompt": template, "system": system}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def stored_candidates(experiment: str, *, store: AnyStore) -> pd.DataFrame:
    """One row per candidate evaluated in ``experiment`` (``NAME:optimize``), in the order
    first evaluated: ``candidate``, ``parent``, ``reflection`` (the run id) and
    ``reflection_text`` (that call's answer), its ``system`` and ``template``, the
    distinct training ``cases`` it answered, the mean of each scorer over those cases
    (``score:NAME``, the latest run of each case), and ``cost_usd`` (its runs, not
    replays; a judge's calls are not counted here). Validation runs carry no lineage.
    ``experiment`` may be the name given to ``wb.optimize`` (``:optimize`` is added)."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    from workbench.scoring.table import read_scores  # pandas: not at import

    if not experiment.endswith(":optimize"):
        experiment += ":optimize"
    runs = store.runs(experiment=experiment)
    marked = runs[runs["candidate"].notna()] if "candidate" in runs else runs.iloc[:0]
    columns = ["candidate", "parent", "reflection", "reflection_text", "system", "template",
               "cases", "cost_usd"]
    if marked.empty:
        return pd.DataFrame(columns=columns)
    answers = dict(zip(runs["run_id"], runs["output"], strict=True))
    scores = read_scores(store, run_ids=marked["run_id"].tolist())
    # The latest run of each (candidate, case): replays repeat a case, they do not add one.
    case = marked["item_id"].fillna(marked["request_hash"])
    latest = marked.assign(case=case).drop_duplicates(["candidate", "case"], keep="last")
    rows = []
    for key, group in marked.groupby("candidate", sort=False):
        first = group.iloc[0]
        lineage = group[["parent", "reflection"]].dropna(how="all")
        parent = lineage["parent"].dropna()
        reflection = lineage["reflection"].dropna()
        ran = latest[latest["candidate"] == key]
        row = {
            "candidate": key,
            "parent": parent.iloc[0] if len(parent) else None,
            "reflection": reflection.iloc[0] if len(reflection) else None,
            "system": first["system"], "template": first["template"],
            "cases": len(ran),
            "cost_usd": float(group.loc[~group["cache_hit"], "cost_usd"].fillna(0).sum()),
        }
        row["reflection_text"] = (answers.get(row["reflection"].split()[0])
                                  if row["reflection"] else None)
        of_runs = scores[scores["run_id"].isin(set(ran["run_id"]))]
        for name, values in of_runs.groupby("scorer", sort=False)["value"]:
            row[f"score:{name}"] = float(values.mean())
        rows.append(row)
    frame = pd.DataFrame(rows)
    scored = [c for c in frame.columns if c.startswith("score:")]
    return frame[columns[:7] + scored + columns[7:]]
