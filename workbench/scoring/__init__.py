"""Judging outputs: scorers (text checks, JSON, similarity, an LLM judge), the scores they
store beside each run, datasets of test cases, plots and a regression gate.

    import workbench as wb
    s = wb.sweep("{{q}}", vars=cases, scorers=[wb.scorers.contains("Paris")])
    wb.score(s, [wb.scorers.judge("Is the answer correct?")])   # stored, replayed for free

Kept light: sweeps import ``workbench.scoring.datasets`` for every sweep, so this package
loads jsonschema, numpy and pandas only in the modules that need them.
"""
