"""Reading the experiment table: the column order people read first, and a browsable grid."""

from __future__ import annotations

from workbench.notebook.runtable.columns import READ_FIRST, READ_LAST, VIEW_FIRST, reading_order

__all__ = ["READ_FIRST", "READ_LAST", "VIEW_FIRST", "reading_order"]
