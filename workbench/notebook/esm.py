"""JavaScript shared by the ES modules of the anywidget views (the runs browser, the
review panel): each module's source is this prelude followed by its own code."""

from __future__ import annotations

__all__ = ["DOM_HELPERS"]

# el("div", "wb-x", "text"): an element with a class and text content (never innerHTML,
# so run outputs are shown as text, not markup).
DOM_HELPERS = r"""
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}
"""
