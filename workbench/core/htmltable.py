"""One way to write an HTML table: header cells, rows of label cells and value cells, each
already HTML (the caller escapes its text), so every view's tables have the same markup.

``html_table([...], rows, classes="wb-sweep")`` gives ``<table class="wb-sweep"><thead>
<tr><th>...</th></tr></thead><tbody><tr><th>label</th><td>value</td></tr></tbody></table>``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["html_table", "TableRow", "escaped"]

TableRow = tuple[Sequence[str], Sequence[str]]  # (label cells <th>, value cells <td>), HTML


def html_table(
    header: Sequence[str] | None,
    rows: Iterable[TableRow],
    *,
    classes: str = "",
    attributes: str = "",
    label_attributes: str = "",
    cell_attributes: str = "",
    column_classes: Sequence[str] | None = None,
    header_attributes: str = "",
    column_attributes: Sequence[str] | None = None,
) -> str:
    """The table; ``header`` None leaves out the ``<thead>`` (a table of name, value rows).

    ``attributes`` go on ``<table>`` (``style='...'``), ``label_attributes`` on each
    row label ``<th>``, ``header_attributes`` on each header ``<th>`` and
    ``cell_attributes`` on each ``<td>``; ``column_classes`` is a class per value column
    (``wb-num`` to align numbers right), on each of its cells, and ``column_attributes``
    more attributes per value column (an inline alignment, which a reopened notebook
    keeps where it drops the ``<style>`` block).
    """
    opening = "<table" + (f' class="{classes}"' if classes else "")
    opening += f" {attributes}>" if attributes else ">"
    head = "" if header is None else (
        "<thead><tr>" + "".join(f"{_tag('th', header_attributes)}{cell}</th>" for cell in header)
        + "</tr></thead>"
    )
    label = _tag("th", label_attributes)
    count = max(len(column_classes or ()), len(column_attributes or ()), 1)
    tags = [
        _tag("td", " ".join(part for part in (
            f'class="{column_classes[j]}"' if column_classes else "",
            cell_attributes,
            column_attributes[j] if column_attributes else "",
        ) if part))
        for j in range(count)
    ]
    body = "".join(
        "<tr>" + "".join(f"{label}{cell}</th>" for cell in labels)
        + "".join(f"{tags[j % len(tags)]}{cell}</td>" for j, cell in enumerate(cells))
        + "</tr>"
        for labels, cells in rows
    )
    tbody = f"<tbody>{body}</tbody>" if header is not None else body
    return f"{opening}{head}{tbody}</table>"


def escaped(value: object) -> str:
    """A value as the text of a cell (HTML-escaped)."""
    return html.escape(str(value))


def _tag(name: str, attributes: str) -> str:
    return f"<{name} {attributes}>" if attributes else f"<{name}>"
