"""A real IPython shell for tests, as jupysql's TestingShell: errors raise, not print.

``run_cell`` re-raises what the cell raised, so a ``UsageError`` from a magic reaches
``pytest.raises`` exactly as a notebook user would have seen it, message and all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from traitlets.config import Config


class TestingShell(InteractiveShell):
    __test__ = False  # not a test class, whatever its name says

    def run_cell(self, raw_cell: str, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


@contextmanager
def open_shell() -> Iterator[TestingShell]:
    """A fresh shell with ``%load_ext workbench`` done; cleared afterwards."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # never touch ~/.ipython
    shell = TestingShell.instance(config=config)
    try:
        shell.run_cell("%load_ext workbench")
        yield shell
    finally:
        TestingShell.clear_instance()
