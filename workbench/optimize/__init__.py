"""Reflective prompt optimization (``wb.optimize``): gepa's search, where every candidate's
evaluation is a sweep in the table and every reflection a logged call, within a budget,
and the winner checked against the starting prompt on held-out cases.

Above decide/ (it uses its paired comparison) and below notebook/.
"""

from __future__ import annotations

__all__: list[str] = []
