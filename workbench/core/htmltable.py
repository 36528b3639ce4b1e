"""One way to write an HTML table: header cells, rows of label cells and value cells, each
already HTML (the caller escapes its text), so every view's tables have the same markup.

``html_table([...], rows, classes="wb-sweep")`` gives ``<table class="wb-sweep"><thead>
<tr><th>...</th></tr></thead><tbody><tr><th>label</th><td>value</td></tr></tbody></table>``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["html_table", "TableRow", "escaped", "NUMBERS"]

TableRow = tuple[Sequence[str], Sequence[str]]  # (label cells <th>, value cells <td>), HTML


# Every cell says its alignment itself: a notebook opened again is untrusted, so JupyterLab
# drops a view's <style> block, and its own rule then right-aligns every table cell, prose
# included.
_LEFT = 'style="text-align: left; vertical-align: top"'
_RIGHT = 'style="text-align: right; vertical-align: top"'
NUMBERS = "wb-num"  # the class of a value column whose cells are aligned right


def html_table(
    header: Sequence[str] | None,
    rows: Iterable[TableRow],
    *,
    classes: str = "",
    attributes: str = "",
    column_classes: Sequence[str] | None = None,
) -> str:
    """The table; ``header`` None leaves out the ``<thead>`` (a table of name, value rows).

    ``attributes`` go on ``<table>`` (``border="0"``); ``column_classes`` is a class per
    value column, on each of its cells. Every cell carries its alignment inline: left and
    at the top, the cells of a ``wb-num`` column (:data:`NUMBERS`) right.
    """
    opening = "<table" + (f' class="{classes}"' if classes else "")
    opening += f" {attributes}>" if attributes else ">"
    head = "" if header is None else (
        "<thead><tr>" + "".join(f"<th {_LEFT}>{cell}</th>" for cell in header) + "</tr></thead>"
    )
    tags = [f"<td {_LEFT}>"] if not column_classes else [
        f'<td class="{name}" {_RIGHT if name == NUMBERS else _LEFT}>' for name in column_classes]
    body = "".join(
        "<tr>" + "".join(f"<th {_LEFT}>{cell}</th>" for cell in labels)
        + "".join(f"{tags[j % len(tags)]}{cell}</td>" for j, cell in enumerate(cells))
        + "</tr>"
        for labels, cells in rows
    )
    tbody = f"<tbody>{body}</tbody>" if header is not None else body
    return f"{opening}{head}{tbody}</table>"


def escaped(value: object) -> str:
    """A value as the text of a cell (HTML-escaped)."""
    return html.escape(str(value))

