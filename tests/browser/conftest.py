"""One JupyterLab and one Chromium for all browser tests, and the two themes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import CHROMIUM, CHROMIUM_ARGS, running_lab
from .notebook import THEMES, Lab


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    root = tmp_path_factory.mktemp("lab")
    store = root / "experiments.db"
    env = {
        **os.environ,
        "WORKBENCH_STORE": str(store),
        "WORKBENCH_THREADS": os.environ.get("WORKBENCH_THREADS", "1"),
        # The theme is set per page through the settings API: keep it out of ~/.jupyter.
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
    }
    env.pop("MPLBACKEND", None)  # the tests' Agg would hide every inline figure
    with running_lab(root, env, root / "lab.log") as base:
        yield Lab(base=base, root=root, store=store)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module", params=list(THEMES))
def theme(request: pytest.FixtureRequest) -> str:
    return str(request.param)
