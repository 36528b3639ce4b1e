"""A real IPython shell for tests, as jupysql's TestingShell: errors raise, not print.

``run_cell`` re-raises what the cell raised, so a ``UsageError`` from a magic reaches
``pytest.raises`` exactly as a notebook user would have seen it, message and all.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Imported before any shell exists: it does `import __main__`, which a shell being made
# has replaced with its own namespace, so that first shell would be kept for good.
import IPython.core.completer  # noqa: F401
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
    main_module = sys.modules.get("__main__")  # the shell puts its namespace there
    shell = TestingShell.instance(config=config)
    try:
        shell.run_cell("%load_ext workbench")
        yield shell
    finally:
        TestingShell.clear_instance()
        # IPython registers each shell's exit operations with atexit: that kept every
        # shell of the suite (~170, with their namespaces and outputs) alive until exit,
        # where each ran reset() and a full gc.collect(), so pytest exited minutes after
        # its summary. The shell ends with its test instead (its history is in memory).
        atexit.unregister(shell.atexit_operations)
        if shell.history_manager is not None:
            shell.history_manager.close()
        if main_module is not None:
            sys.modules["__main__"] = main_module
