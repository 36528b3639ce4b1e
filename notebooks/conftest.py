"""The notebooks, executed by nbval in `make test`, call the real local model from a
kernel: they are integration tests, run one at a time after the parallel unit tests."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.integration)
