"""The documented API's functions: each forwards to the function that does the work,
adding the process-wide session (or its store) where that function takes one.

Nothing here restates a signature: a forwarder shows the real function's parameters
(less the session it fills in) and its docstring, so a default cannot drift between the
façade and the function (tests/test_identity.py checks it). The real functions are
imported on first call, keeping ``import workbench`` light (they pull in jinja2, the
scoring and the store: ~0.44 s measured here).
"""

from __future__ import annotations

import importlib
import inspect
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Literal

from .session import Session, get_session

__all__ = [
    "chat", "achat", "embed", "aembed", "runs", "browse", "experiment", "configure",
    "estimate", "export", "import_runs", "dataset", "datasets", "set_price", "expand_json",
    "score", "scores", "check", "compare_runs", "stability", "agreement", "export_finetune",
    "sweep", "preferences", "win_rate", "load_ipython_extension", "FORWARDS",
]

# What a forwarder fills in: the session as the first argument, as ``session=``, the
# session's store as the first argument, or nothing.
Fill = Literal["session", "session=", "store", "none"]


class Forward:
    """A façade function: calls ``module:name`` with the session filled in as ``fill``
    says. Its signature and docstring are the real function's, read on first use."""

    def __init__(self, public: str, module: str, name: str, fill: Fill) -> None:
        self.__name__ = self.__qualname__ = public
        self.__module__ = "workbench"
        self.target, self.fill = f"workbench.{module}", name
        self._fill: Fill = fill
        self._real: Any = None

    @property
    def real(self) -> Any:
        if self._real is None:
            self._real = getattr(importlib.import_module(self.target), self.fill)
        return self._real

    @property
    def __wrapped__(self) -> Any:  # what inspect.unwrap and help() follow
        return self.real

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        doc: str | None = self.real.__doc__
        return doc

    @property
    def __signature__(self) -> inspect.Signature:
        signature = inspect.signature(self.real)
        if self._fill == "none":
            return signature
        filled = "session" if self._fill == "session=" else next(iter(signature.parameters))
        return signature.replace(
            parameters=[p for name, p in signature.parameters.items() if name != filled]
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        real = self.real
        if self._fill == "session":
            return real(get_session(), *args, **kwargs)
        if self._fill == "session=":
            return real(*args, session=get_session(), **kwargs)
        if self._fill == "store":
            return real(get_session().store, *args, **kwargs)
        return real(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<function workbench.{self.__name__}>"


# public name -> (module, function, what it fills in)
FORWARDS: dict[str, tuple[str, str, Fill]] = {
    "chat": ("calls.single", "chat", "session"),
    "achat": ("calls.single", "achat", "session"),
    "estimate": ("calls.single", "estimate", "session"),
    "embed": ("embedding", "embed", "session"),
    "aembed": ("embedding", "aembed", "session"),
    "runs": ("calls.tables", "runs", "store"),
    "browse": ("calls.tables", "browse", "store"),
    "export": ("calls.tables", "export", "store"),
    "import_runs": ("calls.tables", "import_runs", "store"),
    "dataset": ("calls.tables", "dataset", "store"),
    "datasets": ("calls.tables", "datasets", "store"),
    "set_price": ("calls.tables", "set_price", "store"),
    "preferences": ("calls.tables", "preferences", "session"),
    "expand_json": ("store", "expand_json", "none"),
    "win_rate": ("review.store", "win_rate", "none"),
    "score": ("scoring.engine", "score", "session="),
    "scores": ("scoring.engine", "scores", "session="),
    "check": ("scoring.gate", "check", "session="),
    "compare_runs": ("scoring.paired", "compare_runs", "session="),
    "stability": ("scoring.stability", "stability", "session="),
    "agreement": ("scoring.agreement", "agreement", "session="),
    "export_finetune": ("scoring.finetune", "export_finetune", "session="),
    "sweep": ("sweeps", "sweep", "session="),
    "load_ipython_extension": ("magics", "register", "none"),
}

chat = Forward("chat", *FORWARDS["chat"])
achat = Forward("achat", *FORWARDS["achat"])
estimate = Forward("estimate", *FORWARDS["estimate"])
embed = Forward("embed", *FORWARDS["embed"])
aembed = Forward("aembed", *FORWARDS["aembed"])
runs = Forward("runs", *FORWARDS["runs"])
browse = Forward("browse", *FORWARDS["browse"])
export = Forward("export", *FORWARDS["export"])
import_runs = Forward("import_runs", *FORWARDS["import_runs"])
dataset = Forward("dataset", *FORWARDS["dataset"])
datasets = Forward("datasets", *FORWARDS["datasets"])
set_price = Forward("set_price", *FORWARDS["set_price"])
preferences = Forward("preferences", *FORWARDS["preferences"])
expand_json = Forward("expand_json", *FORWARDS["expand_json"])
win_rate = Forward("win_rate", *FORWARDS["win_rate"])
score = Forward("score", *FORWARDS["score"])
scores = Forward("scores", *FORWARDS["scores"])
check = Forward("check", *FORWARDS["check"])
compare_runs = Forward("compare_runs", *FORWARDS["compare_runs"])
stability = Forward("stability", *FORWARDS["stability"])
agreement = Forward("agreement", *FORWARDS["agreement"])
export_finetune = Forward("export_finetune", *FORWARDS["export_finetune"])
sweep = Forward("sweep", *FORWARDS["sweep"])
# ``%load_ext workbench``: register %%chat, %%embed and %workbench.
load_ipython_extension = Forward("load_ipython_extension", *FORWARDS["load_ipython_extension"])


def configure(**settings: Any) -> None:
    """Session settings (see :meth:`workbench.session.Session.configure`)."""
    get_session().configure(**settings)


_configure = inspect.signature(Session.configure)
configure.__signature__ = _configure.replace(  # type: ignore[attr-defined]
    parameters=list(_configure.parameters.values())[1:]  # less self
)
configure.__doc__ = """Session settings: the store file, the default provider, experiment,
budget (USD).

``timeout`` is per network read; ``deadline`` (seconds, default 900) bounds a whole
call, retries and their waits included. Under a budget, calls to a model with no
known price are refused unless ``allow_unpriced=True``. None leaves a setting as is.
"""


class experiment(AbstractContextManager["experiment"]):  # noqa: N801 - reads as a verb
    """Set the current experiment; as a context manager, only inside the block.

    wb.experiment("haiku")              # from now on
    with wb.experiment("haiku-v2"):     # just here
        wb.chat(...)
    """

    def __init__(self, name: str) -> None:
        if not name or not name.strip():
            raise ValueError("An experiment needs a non-empty name")
        settings = get_session().settings
        self.name = name
        self._previous = settings.experiment_name
        settings.experiment_name = name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        get_session().settings.experiment_name = self._previous

    def __repr__(self) -> str:
        return f"experiment({self.name!r})"
