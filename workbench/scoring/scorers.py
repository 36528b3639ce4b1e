"""``wb.scorers``: every built-in scorer, and :class:`Score` for scorer functions.

    wb.scorers.contains("Paris")                 wb.scorers.regex(r"\\d{4}")
    wb.scorers.equals()                          wb.scorers.one_of(["yes", "no"])
    wb.scorers.is_json()                         wb.scorers.json_schema(MyModel)
    wb.scorers.length(max_words=50)              wb.scorers.similar(threshold=0.8)
    wb.scorers.judge("Is it polite?", scale="pass/fail")

Any function ``fn(output, *, expected=None, vars=None, run=None)`` returning a bool, a
number or a Score is a scorer too, named after the function.
"""

from __future__ import annotations

from workbench.scoring.base import Score, Scorer
from workbench.scoring.builtin import contains, equals, is_json, json_schema, length, one_of, regex
from workbench.scoring.judge import judge
from workbench.scoring.similar import similar

__all__ = [
    "Score",
    "Scorer",
    "contains",
    "regex",
    "equals",
    "one_of",
    "is_json",
    "json_schema",
    "length",
    "similar",
    "judge",
]
