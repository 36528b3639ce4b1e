"""``wb.browse()``: the runs as a sortable, searchable, filterable grid in the notebook.

Why an anywidget grid and not itables: itables' offline mode embeds its DataTables bundle
(hundreds of KB of JavaScript) and every table's rows in the saved notebook's HTML; this
grid's ~6 KB of JavaScript and CSS travel as widget state and its rows over the kernel's
widget channel, so a saved notebook keeps a one-line text table (and JupyterLab saves no
widget state by default). It needs no CDN, and its colours are JupyterLab's `--jp-*`
variables, so the light and dark themes both read well.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from workbench.notebook.display import format_cost, shorten
from workbench.notebook.esm import DOM_HELPERS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunsBrowser", "browse_rows", "COLUMNS"]

# (key, label, kind): "num" columns sort by number and align right. The answer comes
# early, so that at 1,400 px it is in view without scrolling sideways; the knobs are the
# small second line of the model's cell (every row is two lines tall: the rows are even).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("time", "time", "text"),
    ("model", "model", "text"),
    ("prompt", "prompt", "long"),
    ("output", "output", "long"),
    ("tokens", "tokens", "num"),
    ("cost", "cost", "num"),
    ("latency", "latency", "num"),
    ("status", "status", "text"),
    ("experiment", "experiment", "text"),
    ("run_id", "run id", "text"),
)
_ORDER_WORDS = {  # the count line says how the rows are ordered: (descending, ascending)
    "time": ("newest first", "oldest first"),
    "num": ("largest first", "smallest first"),
    "text": ("Z to A", "A to Z"),
}
_MAX_TEXT = 4000  # characters of a prompt or output sent to the browser (folded anyway)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _knobs(row: dict[str, Any]) -> str:
    parts = []
    for key, label in (("temperature", "t"), ("top_p", "top_p"), ("seed", "seed"),
                       ("max_tokens", "max")):
        value = _number(row.get(key))
        if value is not None:
            parts.append(f"{label}={value:g}" if key != "seed" else f"seed={int(value)}")
    return " · ".join(parts)


def _time(value: Any) -> str:
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime):  # the table is in UTC; people read their own clock
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value) if _present(value) else ""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def browse_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per run, newest first: ``{key: [sort key, text shown]}`` per column."""
    import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

    ordered = df.sort_values("run_id", ascending=False) if "run_id" in df else df
    rows = []
    for record in ordered.astype(object).where(pd.notna(ordered), None).to_dict("records"):
        prompt_tokens = _number(record.get("prompt_tokens"))
        completion_tokens = _number(record.get("completion_tokens"))
        tokens = (prompt_tokens or 0) + (completion_tokens or 0)
        cost = _number(record.get("cost_usd"))
        latency = _number(record.get("latency_s"))
        status = str(record.get("status") or "")
        if status == "error" and record.get("error"):
            status = f"error: {shorten(str(record['error']), 120)}"
        elif record.get("cache_hit"):
            status = f"{status} · cached"
        created = record.get("created_at")
        rows.append({
            "time": [str(created) if created is not None else "", _time(created)],
            "experiment": [str(record.get("experiment") or "")] * 2,
            "model": [str(record.get("model") or "")] * 2,
            "knobs": [_knobs(record)] * 2,
            "prompt": [str(record.get("prompt") or "")[:_MAX_TEXT]] * 2,
            "output": [str(record.get("output") or "")[:_MAX_TEXT]] * 2,
            "tokens": [
                tokens if prompt_tokens is not None or completion_tokens is not None else None,
                "" if prompt_tokens is None and completion_tokens is None
                else f"{int(prompt_tokens or 0)}→{int(completion_tokens or 0)}",
            ],
            "cost": [cost, format_cost(cost) if cost is not None else ""],
            "latency": [latency, f"{latency:.2f} s" if latency is not None else ""],
            "status": [status, status],
            "run_id": [str(record.get("run_id") or "")] * 2,
        })
    return rows


_ESM = DOM_HELPERS + r"""
function render({ model, el: root }) {
  const columns = model.get("columns");
  const state = { sort: "time", descending: true, query: "", filters: {} };
  const orderWords = model.get("order_words");
  const box = el("div", "wb-browse");
  const bar = el("div", "wb-browse-bar");
  const search = el("input", "wb-browse-search");
  search.type = "search";
  search.placeholder = "Search prompts, outputs, models…";
  search.setAttribute("aria-label", "search the runs");
  bar.appendChild(search);
  const selects = {};
  for (const key of ["experiment", "model", "status"]) {
    const label = el("label", "wb-browse-filter");
    label.appendChild(el("span", "", key));
    const select = el("select");
    select.dataset.column = key;
    selects[key] = select;
    label.appendChild(select);
    bar.appendChild(label);
  }
  const count = el("span", "wb-browse-count");
  bar.appendChild(count);
  const scroller = el("div", "wb-browse-scroll");
  const table = el("table", "wb-browse-table");
  const head = el("thead");
  const headRow = el("tr");
  for (const [key, label, kind] of columns) {
    const th = el("th", "wb-" + kind, label);
    th.dataset.column = key;
    th.tabIndex = 0;
    th.title = "sort by " + label;
    const toggle = () => {
      if (state.sort === key) state.descending = !state.descending;
      else { state.sort = key; state.descending = kind === "num" || key === "time"; }
      draw();
    };
    th.addEventListener("click", toggle);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") toggle(); });
    headRow.appendChild(th);
  }
  head.appendChild(headRow);
  const body = el("tbody");
  table.append(head, body);
  scroller.appendChild(table);
  box.append(bar, scroller);
  // The output area lays widgets out in a flex row, where a child grows to its
  // content: without min-width 0 the wide table pushed past the cell instead of scrolling.
  root.style.minWidth = "0";
  root.style.width = "100%";
  root.appendChild(box);

  function fillFilters(rows) {
    for (const [key, select] of Object.entries(selects)) {
      const kept = select.value;
      const word = (r) => key === "status" ? r[key][1].split(/[: ]/)[0] : r[key][1];
      const values = [...new Set(rows.map(word))].sort();
      select.replaceChildren(el("option", "", "all"));
      select.firstChild.value = "";
      for (const v of values) { const o = el("option", "", v); o.value = v; select.appendChild(o); }
      select.value = values.includes(kept) ? kept : "";
    }
  }
  function matches(row) {
    for (const [key, value] of Object.entries(state.filters)) {
      if (!value) continue;
      const shown = row[key][1];
      if (key === "status" ? !shown.startsWith(value) : shown !== value) return false;
    }
    if (!state.query) return true;
    const q = state.query.toLowerCase();
    return columns.some(([key]) => row[key][1].toLowerCase().includes(q))
      || row.knobs[1].toLowerCase().includes(q);
  }
  function compare(a, b) {
    const x = a[state.sort][0], y = b[state.sort][0];
    if (x === y) return 0;
    if (x === null) return 1;  // blanks last, whichever the direction
    if (y === null) return -1;
    const order = x < y ? -1 : 1;
    return state.descending ? -order : order;
  }
  function draw() {
    const rows = model.get("rows");
    const shown = rows.filter(matches).sort(compare);
    for (const th of headRow.children) {
      const on = th.dataset.column === state.sort;
      th.classList.toggle("wb-sorted", on);
      th.setAttribute("aria-sort", on ? (state.descending ? "descending" : "ascending") : "none");
      th.dataset.arrow = on ? (state.descending ? " ▼" : " ▲") : "";
    }
    const fragment = document.createDocumentFragment();
    for (const row of shown) {
      const tr = el("tr");
      for (const [key, , kind] of columns) {
        const td = el("td", "wb-" + kind);
        const text = row[key][1];
        const error = key === "status" && text.startsWith("error");
        if (kind === "long" || error) {
          const fold = el("div", "wb-fold", text);
          fold.title = "click to unfold";
          fold.addEventListener("click", () => fold.classList.toggle("wb-open"));
          td.appendChild(fold);
        } else {
          const line = el("div", "wb-line", text);
          line.title = text;
          td.appendChild(line);
          if (key === "model" && row.knobs[1]) td.appendChild(el("div", "wb-sub", row.knobs[1]));
        }
        td.classList.add("wb-col-" + key);
        if (error) td.classList.add("wb-error");
        tr.appendChild(td);
      }
      fragment.appendChild(tr);
    }
    body.replaceChildren(fragment);
    // How the rows are ordered now (it said "newest first" after any sort).
    const [, label, kind] = columns.find(([key]) => key === state.sort);
    const words = orderWords[state.sort === "time" ? "time" : kind === "num" ? "num" : "text"];
    const order = state.sort === "time" ? words[state.descending ? 0 : 1]
      : `by ${label}, ${words[state.descending ? 0 : 1]}`;
    count.textContent = shown.length === rows.length
      ? `${rows.length} runs, ${order}` : `${shown.length} of ${rows.length} runs, ${order}`;
  }
  search.addEventListener("input", () => { state.query = search.value; draw(); });
  for (const [key, select] of Object.entries(selects)) {
    select.addEventListener("change", () => { state.filters[key] = select.value; draw(); });
  }
  model.on("change:rows", () => { fillFilters(model.get("rows")); draw(); });
  fillFilters(model.get("rows"));
  draw();
}
export default { render };
"""

_CSS = """
.wb-browse { font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);
  color: var(--jp-ui-font-color1); max-width: 100%; }
.wb-browse-bar { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center;
  margin-bottom: 6px; }
.wb-browse-search { flex: 0 1 320px; min-width: 200px; padding: 4px 8px;
  color: var(--jp-ui-font-color1); background: var(--jp-input-background, var(--jp-layout-color1));
  border: 1px solid var(--jp-border-color1); border-radius: 2px; }
.wb-browse-filter { display: flex; gap: 4px; align-items: center;
  color: var(--jp-ui-font-color2); }
.wb-browse-filter select { color: var(--jp-ui-font-color1);
  background: var(--jp-input-background, var(--jp-layout-color1));
  border: 1px solid var(--jp-border-color1); border-radius: 2px; padding: 2px 4px; }
.wb-browse-count { color: var(--jp-ui-font-color2); margin-left: auto; }
.wb-browse-scroll { max-height: 520px; overflow: auto;
  border: 1px solid var(--jp-border-color2); }
.wb-browse-table { border-collapse: collapse; width: 100%; line-height: 1.4; }
.wb-browse-table th { position: sticky; top: 0; z-index: 1; text-align: left;
  background: var(--jp-layout-color2); color: var(--jp-ui-font-color1); font-weight: 600;
  padding: 5px 8px; border-bottom: 1px solid var(--jp-border-color1); cursor: pointer;
  white-space: nowrap; user-select: none; }
.wb-browse-table th::after { content: attr(data-arrow); color: var(--jp-brand-color1); }
.wb-browse-table th:focus-visible { outline: 1px solid var(--jp-brand-color1); }
/* Every row two lines tall (a cell's height is its least): even rows, whatever fills them. */
.wb-browse-table td { padding: 4px 8px; vertical-align: top; text-align: left;
  border-bottom: 1px solid var(--jp-border-color2); white-space: nowrap; height: 2.8em; }
.wb-browse-table tbody tr { background: var(--jp-layout-color1); }
.wb-browse-table tbody tr:nth-child(even) { background: var(--jp-layout-color2); }
/* No sticky column: the answer is in view without scrolling, and a sticky column hid
   the text that scrolled under it. One-line texts end in an ellipsis (whole in a tooltip). */
.wb-line, .wb-sub { overflow: hidden; text-overflow: ellipsis; }
.wb-sub { font-size: 85%; color: var(--jp-ui-font-color2); }
.wb-col-time .wb-line { white-space: normal; width: 6em; }
.wb-col-model .wb-line, .wb-col-model .wb-sub { max-width: 10em; }
.wb-col-experiment .wb-line { max-width: 8em; }
.wb-col-run_id .wb-line { max-width: 6em; }
.wb-browse-table tbody tr:hover { background: var(--jp-layout-color3); }
.wb-browse-table .wb-num { text-align: right; font-variant-numeric: tabular-nums; }
.wb-browse-table td.wb-long { white-space: normal; min-width: 10em; }
.wb-browse-table td.wb-col-output { min-width: 15em; }
.wb-fold { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
  overflow: hidden; cursor: pointer; white-space: pre-wrap; overflow-wrap: anywhere; }
.wb-fold.wb-open { display: block; -webkit-line-clamp: unset; }
/* Red text on these backgrounds measured 2.7:1: the text keeps the body colour (and
   its contrast), a red bar marks the failed run. */
.wb-browse-table td.wb-error { white-space: normal; min-width: 10em;
  box-shadow: inset 3px 0 0 var(--jp-error-color1); }
"""


class RunsBrowser(anywidget.AnyWidget):
    """The runs in a grid: newest first; click a header to sort, type to search, pick an
    experiment, model or status to filter, click a long text to unfold it."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    _css = traitlets.Unicode(_CSS).tag(sync=True)
    columns: traitlets.List[list[str]] = traitlets.List().tag(sync=True)
    order_words = traitlets.Dict(_ORDER_WORDS).tag(sync=True)
    rows: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)

    def __init__(self, df: pd.DataFrame, **kwargs: Any) -> None:
        super().__init__(columns=[list(c) for c in COLUMNS], rows=browse_rows(df), **kwargs)
        self._plain = _plain_table(self.rows)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):  # what a saved notebook or a terminal shows
            data["text/plain"] = self._plain
        return bundle

    def __repr__(self) -> str:
        return self._plain


def _plain_table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    lines = [
        f"{r['time'][1]:<19}  {shorten(r['model'][1], 22):<22}  "
        f"{shorten(r['prompt'][1], 30):<30}  {shorten(r['output'][1], 30):<30}  "
        f"{r['status'][1][:20]}"
        for r in rows[:limit]
    ]
    more = f"\n… {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{len(rows)} runs, newest first\n" + "\n".join(lines) + more
