"""The tests' IPython shell (tests/testing_shell.py) ends with the test that opened it."""

from __future__ import annotations

import gc
import weakref

from testing_shell import open_shell


def test_a_closed_shell_is_freed_not_kept_until_exit() -> None:
    """IPython registers each shell's exit operations with atexit, which keeps the shell
    (its namespace, outputs and history) alive until the process ends and then runs
    ``reset()`` and a full ``gc.collect()`` for each one. Over the suite's ~170 shells,
    pytest printed its summary minutes before it exited. A shell is released with its
    test, like any other object."""
    with open_shell() as shell:
        shell.run_cell("kept = list(range(10))")
        freed = weakref.ref(shell)
    del shell
    gc.collect()
    assert freed() is None, "the shell outlived its test"
