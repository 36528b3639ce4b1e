"""The review panel's notebook widget: an anywidget (ES module + CSS) that draws one card
and turns keys and clicks into messages to Python.

Everything it shows travels over the widget comm as traits (``card``, ``progress``,
``status``); the panel's logic lives in Python (:mod:`workbench.notebook.review.panel`), so it can
be driven without a browser. Colours come only from JupyterLab's CSS variables, so the light
and dark themes both read. Keys are caught on the panel's own focusable element, marked
``data-lm-suppress-shortcuts`` so JupyterLab's command-mode shortcuts (1–5 make headings)
do not fire while it has focus.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets as t

from workbench.notebook.esm import DOM_HELPERS

__all__ = ["ReviewWidget"]

_ESM = DOM_HELPERS + r"""
const KEYS_PASS_FAIL = {p: "pass", f: "fail"};
const KEYS_PAIRWISE = {a: "left", ArrowLeft: "left", l: "right", ArrowRight: "right", t: "tie"};

function render({ model, el: root }) {
  const panel = el("div", "wb-review");
  panel.tabIndex = 0;
  panel.setAttribute("data-lm-suppress-shortcuts", "true");
  panel.setAttribute("data-p-suppress-shortcuts", "true");
  root.appendChild(panel);

  // Each message names the run on screen when the key or click came: a second press
  // before Python's next card arrives is then dropped, not applied to an unseen output.
  const send = (action, value) => {
    const comment = panel.querySelector("textarea");
    const run_id = model.get("card").run_id ?? null;
    model.send({action, value: value ?? null, comment: comment ? comment.value : "", run_id});
  };

  function keyAction(key) {
    const card = model.get("card");
    const scale = model.get("scale");
    if (key === "n" || key === "s") return ["skip"];
    if (key === "b") return ["back"];
    if (card.mode === "pairwise") return KEYS_PAIRWISE[key] ? ["rate", KEYS_PAIRWISE[key]] : null;
    if (scale === "pass/fail") return KEYS_PASS_FAIL[key] ? ["rate", KEYS_PASS_FAIL[key]] : null;
    const grade = Number(key);
    if (/^[0-9]$/.test(key) && grade >= scale[0] && grade <= scale[1]) return ["rate", grade];
    return null;
  }

  panel.addEventListener("keydown", (event) => {
    if (event.target.tagName === "TEXTAREA" || event.target.tagName === "SELECT") {
      if (event.key === "Escape") panel.focus();
      event.stopPropagation();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const action = keyAction(event.key);
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat) return;  // a held key rates once
    send(action[0], action[1]);
  });

  function button(label, title, action, value, cls) {
    const b = el("button", "wb-review-button" + (cls ? " " + cls : ""), label);
    b.title = title;
    b.addEventListener("click", () => { send(action, value); panel.focus(); });
    return b;
  }

  function block(label, text, cls) {
    const box = el("div", "wb-review-block " + (cls || ""));
    box.appendChild(el("div", "wb-review-label", label));
    box.appendChild(el("pre", "wb-review-text", text));
    return box;
  }

  function draw() {
    const card = model.get("card");
    const scale = model.get("scale");
    panel.replaceChildren();
    const head = el("div", "wb-review-head");
    const counts = el("span", "wb-review-counts");
    counts.appendChild(el("span", "wb-review-progress", model.get("progress")));
    if (card.position) counts.appendChild(el("span", "wb-review-position", card.position));
    head.appendChild(counts);
    const filter = el("select", "wb-review-filter");
    for (const [value, label] of [["all", "all"], ["unrated", "not yet rated"],
                                  ["disagree", "judge disagrees"]]) {
      const option = el("option", "", label);
      option.value = value;
      option.selected = model.get("filter") === value;
      filter.appendChild(option);
    }
    filter.addEventListener("change", () => send("filter", filter.value));
    head.appendChild(filter);
    panel.appendChild(head);

    if (!card.run_id && !card.left) {
      panel.appendChild(el("div", "wb-review-empty", card.message || "nothing to review"));
    } else {
      const variant = (text) => el("div", "wb-review-variant", "variant: " + text);
      if (card.variant) panel.appendChild(variant(card.variant));
      if (card.system) panel.appendChild(block("system prompt", card.system, "wb-review-system"));
      panel.appendChild(block("prompt", card.prompt || ""));
      if (card.variables) panel.appendChild(block("variables", card.variables));
      if (card.expected) panel.appendChild(block("expected", card.expected));
      if (card.mode === "pairwise") {
        const sides = el("div", "wb-review-sides");
        for (const side of ["left", "right"]) {
          const column = el("div", "wb-review-side");
          if (card[side + "_variant"]) {
            column.appendChild(variant(card[side + "_variant"]));
          }
          if (card[side + "_system"]) {
            column.appendChild(block("system prompt", card[side + "_system"], "wb-review-system"));
          }
          column.appendChild(block(card[side + "_label"], card[side], "wb-review-output"));
          sides.appendChild(column);
        }
        panel.appendChild(sides);
      } else {
        panel.appendChild(block("output", card.output || "", "wb-review-output"));
        for (const verdict of card.verdicts || []) {
          panel.appendChild(el("div", "wb-review-verdict", verdict));
        }
      }
      if (card.rating) panel.appendChild(el("div", "wb-review-rating", card.rating));
      const comment = el("textarea", "wb-review-comment");
      comment.placeholder = "comment (stored as the reason; Esc returns to the keys)";
      comment.value = card.comment || "";
      panel.appendChild(comment);
      const row = el("div", "wb-review-controls");
      if (card.mode === "pairwise") {
        row.appendChild(button("◀ left better (a)", "a or ←", "rate", "left", "wb-review-good"));
        row.appendChild(button("tie (t)", "t", "rate", "tie"));
        row.appendChild(button("right better (l) ▶", "l or →", "rate", "right", "wb-review-good"));
      } else if (scale === "pass/fail") {
        row.appendChild(button("✓ pass (p)", "p", "rate", "pass", "wb-review-good"));
        row.appendChild(button("✗ fail (f)", "f", "rate", "fail", "wb-review-bad"));
      } else {
        for (let g = scale[0]; g <= scale[1]; g++) {
          row.appendChild(button(String(g), String(g), "rate", g));
        }
      }
      row.appendChild(button("back (b)", "b", "back"));
      row.appendChild(button("skip (n)", "n", "skip"));
      panel.appendChild(row);
    }
    panel.appendChild(el("div", "wb-review-status", model.get("status")));
  }

  // One card update changes up to four traits: draw once for all of them, so a node
  // looked at after an update is not replaced again a moment later.
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; draw(); });
  };
  for (const name of ["card", "progress", "status", "filter"]) model.on("change:" + name, redraw);
  draw();
}
export default { render };
"""

# ".wb-review .wb-review-text": JupyterLab's ".jp-OutputArea-output pre" (padding 0) would
# otherwise win, and the text would touch its box's edge.
_CSS = """
.wb-review { font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);
  color: var(--jp-ui-font-color1); background: var(--jp-layout-color1);
  border: 1px solid var(--jp-border-color2); border-radius: 4px; padding: 8px; outline: none; }
.wb-review:focus { border-color: var(--jp-brand-color1); }
.wb-review-head { display: flex; justify-content: space-between; align-items: center;
  margin-bottom: 6px; }
.wb-review-progress { font-weight: bold; }
.wb-review-position { margin-left: 1em; color: var(--jp-ui-font-color2); }
.wb-review-variant { color: var(--jp-ui-font-color2); font-size: var(--jp-ui-font-size0);
  margin: 2px 0; }
.wb-review-verdict { margin: 4px 0; padding: 2px 6px; color: var(--jp-ui-font-color1);
  border-left: 3px solid var(--jp-warn-color1); white-space: pre-wrap; }
.wb-review-filter, .wb-review-comment { color: var(--jp-ui-font-color1);
  background: var(--jp-input-background, var(--jp-layout-color0));
  border: 1px solid var(--jp-border-color1); }
.wb-review-block { margin: 4px 0; }
.wb-review-label { color: var(--jp-ui-font-color2); font-size: var(--jp-ui-font-size0); }
.wb-review .wb-review-text { margin: 0; padding: 4px 6px; white-space: pre-wrap;
  word-break: break-word; font-family: var(--jp-code-font-family);
  color: var(--jp-content-font-color1); background: var(--jp-layout-color2); border-radius: 2px; }
.wb-review-output .wb-review-text { background: var(--jp-layout-color0);
  border: 1px solid var(--jp-border-color2); }
.wb-review-sides { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.wb-review-comment { width: 100%; box-sizing: border-box; min-height: 2.5em; margin: 4px 0;
  padding: 4px 6px; }
.wb-review-controls { display: flex; gap: 6px; flex-wrap: wrap; }
.wb-review-button { color: var(--jp-ui-font-color1); background: var(--jp-layout-color2);
  border: 1px solid var(--jp-border-color1); border-radius: 2px; padding: 2px 10px;
  cursor: pointer; }
.wb-review-button:hover { background: var(--jp-layout-color3); }
.wb-review-good { border-color: var(--jp-success-color1); }
.wb-review-bad { border-color: var(--jp-error-color1); }
.wb-review-rating { color: var(--jp-ui-font-color2); margin: 2px 0; }
.wb-review-status { color: var(--jp-ui-font-color2); margin-top: 4px; min-height: 1em; }
.wb-review-empty { color: var(--jp-ui-font-color2); padding: 8px 0; }
"""


class ReviewWidget(anywidget.AnyWidget):
    """One review card; the panel sets its traits and handles its messages."""

    _esm = t.Unicode(_ESM).tag(sync=True)
    _css = t.Unicode(_CSS).tag(sync=True)
    card = t.Dict().tag(sync=True)
    scale: Any = t.Any("pass/fail").tag(sync=True)  # "pass/fail" or [low, high]
    progress = t.Unicode("").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    filter = t.Unicode("all").tag(sync=True)
