"""Prompt Workbench: a prompt laboratory for Jupyter and any OpenAI-compatible API.

    import workbench as wb
    wb.chat("Name three primes", temperature=0.7, seed=1)
    wb.runs()            # every call so far, one row each, with tokens and cost

With no OPENAI_API_KEY / OPENAI_BASE_URL set, calls go to a small local model.
Heavy libraries (pandas, tiktoken, genai-prices, the model server) load on first use.

This module holds only the documented names (``__all__``; their code is in ``_api`` and
below) and the aliases of names that moved. ``dir(workbench)`` is ``__all__`` plus the
public subpackages ``plots`` and ``scorers``; the package's own modules are not listed.
"""

from __future__ import annotations

# ruff: noqa: E402 - the package hides its modules (below) before importing any of them
import sys as _sys
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING
from typing import Any as _Any

# The public subpackages: modules that are part of the API (wb.plots.cost, wb.scorers.judge).
PUBLIC_SUBPACKAGES = ("plots", "scorers")


class _Package(_ModuleType):
    """The package, less its modules: the import system binds each submodule as an
    attribute of its package once imported, which would list ~80 internal modules in
    ``dir(workbench)`` and let a module replace a function of its name (``estimate``,
    ``compare``). They stay importable (``from workbench import session``)."""

    def __setattr__(self, name: str, value: _Any) -> None:
        if (
            isinstance(value, _ModuleType)
            and value.__name__ == f"{__name__}.{name}"
            and name not in PUBLIC_SUBPACKAGES
        ):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

# plots and compare load matplotlib, numpy and pandas only when they draw.
from workbench import plots
from workbench._api import FORWARDS as _FORWARDS
from workbench._api import configure, experiment
from workbench.calls.budget.estimate import Estimate
from workbench.calls.results import ChatResponse, EmbedResponse
from workbench.core.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    CallInterrupted,
    ConfigurationError,
    DeadlineExceededError,
    InvalidInputError,
    LocalModelError,
    RateLimitError,
    StoreError,
    SweepInterrupted,
    TruncatedStreamError,
    WorkbenchError,
    debug,
)
from workbench.core.usage import Usage

# Plugs decide/'s stopping rule (s.run(until="decided")) and estimate note into the sweep
# layer below it (sweeps/hooks.py). Here, on the top floor, because any import of a sweep
# module runs this file first: the rules are registered before any sweep exists. Light:
# the statistics load when first used.
from workbench.decide import wiring as _decide_wiring  # noqa: F401
from workbench.notebook.compare import compare

del _decide_wiring

if TYPE_CHECKING:  # made on first use by __getattr__ below; typed for type checkers here
    from workbench._api import (
        achat,
        aembed,
        agreement,
        browse,
        cascade,
        chat,
        cheapest,
        check,
        compare_runs,
        dataset,
        datasets,
        detectable_difference,
        embed,
        estimate,
        expand_json,
        export,
        export_finetune,
        import_runs,
        leaderboard,
        optimize,
        optimize_candidates,
        preferences,
        runs,
        sample_size,
        score,
        scores,
        set_price,
        stability,
        sweep,
        win_rate,
    )
    from workbench._api import (
        load_ipython_extension as load_ipython_extension,
    )

from workbench.core.version import __version__ as __version__

__all__ = [
    "chat",
    "achat",
    "embed",
    "aembed",
    "runs",
    "browse",
    "experiment",
    "configure",
    "estimate",
    "export",
    "import_runs",
    "dataset",
    "datasets",
    "Dataset",
    "set_price",
    "expand_json",
    "compare",
    "plots",
    "score",
    "scores",
    "scorers",
    "check",
    "compare_runs",
    "stability",
    "agreement",
    "export_finetune",
    "sweep",
    "Sweep",
    "SweepPanel",
    "Playground",
    "ReviewPanel",
    "preferences",
    "win_rate",
    "sample_size",
    "detectable_difference",
    "leaderboard",
    "cheapest",
    "cascade",
    "optimize",
    "optimize_candidates",
    "ChatResponse",
    "EmbedResponse",
    "Estimate",
    "Usage",
    "WorkbenchError",
    "ConfigurationError",
    "InvalidInputError",
    "LocalModelError",
    "BudgetExceededError",
    "StoreError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "DeadlineExceededError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "RateLimitError",
    "TruncatedStreamError",
    "CallInterrupted",
    "SweepInterrupted",
    "debug",
    "__version__",
]

# Loaded on first use, so `import workbench` stays quick: Sweep pulls in asyncio and
# jinja2, the panels ipywidgets.
_LAZY = {
    "Sweep": ("sweeps.sweep", "Sweep"),
    "SweepPanel": ("notebook.widgets", "SweepPanel"),
    "Playground": ("notebook.widgets", "Playground"),
    "ReviewPanel": ("notebook.review", "ReviewPanel"),
    "Dataset": ("scoring.datasets", "Dataset"),
    "scorers": ("scoring.scorers", ""),  # a module of scorer constructors
}

# Names `workbench` had without documenting them: still there, with a warning naming
# where they live now.
_DEPRECATED = {
    "get_session": ("calls.session", "get_session"),
    "Message": ("calls.prepare", "Message"),
}


def __getattr__(name: str) -> _Any:
    import importlib  # local: keeps the name out of the package's namespace

    if name in _FORWARDS:  # wb.chat, wb.sweep, ...: made on first use (_api.py)
        value = getattr(importlib.import_module("._api", __name__), name)
        globals()[name] = value
        return value
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = importlib.import_module(f".{module}", __name__)
        value = getattr(value, attribute) if attribute else value
        globals()[name] = value  # the next lookup is an ordinary one
        return value
    if name in _DEPRECATED:
        import warnings  # local: keeps the name out of the package's namespace

        module, attribute = _DEPRECATED[name]
        warnings.warn(
            f"workbench.{name} is deprecated: import it from workbench.{module}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    imported = _sys.modules.get(f"{__name__}.{name}")
    if imported is not None:  # `import workbench.x` then `workbench.x.y`: the usual spelling
        return imported
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *PUBLIC_SUBPACKAGES})
