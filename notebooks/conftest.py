"""The notebooks, executed by nbval in `make test`, call the real local model from a
kernel: they are integration tests, run one at a time after the parallel unit tests."""

from __future__ import annotations

import pytest

# A progress bar's text is not compared. A saved bar holds its final line ("sweep: 9/9 done
# in 0.0 s · ..."), published over the first one by update_display_data, which nbval does
# not apply (it keeps the bar's first text, "sweep: 0%| | 0/9"); and the line holds timings.
PROGRESS_BAR = r"(?m)^(\w+|scoring \d+/\d+): +(\d+%\|.*|\d+/\d+ done in .*)$"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.integration)
            # nbval's own --nbval-sanitize-with patterns are added to these at setup.
            patterns = getattr(item.parent, "sanitize_patterns", None)
            if patterns is not None:
                patterns[PROGRESS_BAR] = r"\1: <progress bar>"
