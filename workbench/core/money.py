"""Dollars for people, in one place: every footer, estimate line, progress bar, table,
widget and comparison formats money here, so the same amount reads the same everywhere.

Small amounts keep two significant digits (``$0.00042``, never ``$0.000000``); an unknown
price is ``unknown`` (never ``$0``); an amount worked out from tokens counted here, the
server having sent no usage, starts with ``~``.

Money is never put in Markdown: JupyterLab typesets a pair of ``$`` as maths (even
escaped as ``\\$``). :func:`money_html` wraps HTML text that holds dollars in an element
MathJax is told to skip, for the HTML outputs that JupyterLab also typesets.
"""

from __future__ import annotations

import html
import math
from decimal import Decimal

__all__ = ["format_money", "money_html", "NO_MATHS_CLASS"]

# MathJax skips elements with these classes (JupyterLab's MathJax 3 configuration uses
# "tex2jax_ignore"; "mathjax_ignore" is MathJax 3's own default).
NO_MATHS_CLASS = "tex2jax_ignore mathjax_ignore"


def format_money(
    amount: float | Decimal | None, *, estimated: bool = False, unknown: str = "unknown"
) -> str:
    """``$0``, ``$0.00042``, ``$0.0012``, ``$1.23``, ``$1,234.50``; ``unknown`` for None;
    ``~`` in front when ``estimated``."""
    if amount is None:
        return unknown
    value = float(amount)
    if value != value:  # NaN: a missing price in a pandas column
        return unknown
    mark = "~" if estimated else ""
    if value == 0:
        return f"{mark}$0"
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size < 1:  # small calls: two significant digits
        digits = max(2, 1 - math.floor(math.log10(size)))
        text = f"{size:.{digits}f}"
        if "." in text and digits > 2:
            text = text.rstrip("0").rstrip(".")
        return f"{mark}{sign}${text}"
    return f"{mark}{sign}${size:,.2f}"


def money_html(text: str) -> str:
    """``text`` (plain, may hold dollars) escaped as HTML, in a span MathJax skips."""
    return f'<span class="{NO_MATHS_CLASS}">{html.escape(text)}</span>'
