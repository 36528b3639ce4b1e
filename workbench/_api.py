"""The documented API's functions: each forwards to the function that does the work,
adding the process-wide session (or its store) where that function takes one.

Nothing here restates a signature: a forwarder shows the real function's parameters
(less the session it fills in) and its docstring, so a default cannot drift between the
façade and the function (tests/test_facade.py checks it). Each forwarder is made on first
use, keeping ``import workbench`` light.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from workbench.calls.session import Session, get_session

__all__ = ["FORWARDS", "forward", "configure", "experiment"]  # and each name of FORWARDS

# What a forwarder fills in: the session as the first argument, as ``session=``, the
# session's store as the first argument or as ``store=``, or nothing.
Fill = Literal["session", "session=", "store", "store=", "none"]


def _filled(fill: Fill, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if fill == "session":
        return (get_session(), *args)
    if fill == "store":
        return (get_session().store, *args)
    if fill == "session=":
        kwargs["session"] = get_session()
    if fill == "store=":
        kwargs["store"] = get_session().store
    return args


def forward(public: str, module: str, name: str, fill: Fill) -> Callable[..., Any]:
    """The façade function ``public``: calls ``workbench.<module>.<name>`` with the session
    filled in as ``fill`` says, and shows that function's signature (less what it fills
    in) and docstring."""
    real = getattr(importlib.import_module(f"workbench.{module}"), name)
    facade: Callable[..., Any]
    if inspect.iscoroutinefunction(real):

        async def facade(*args: Any, **kwargs: Any) -> Any:
            return await real(*_filled(fill, args, kwargs), **kwargs)

    else:

        def facade(*args: Any, **kwargs: Any) -> Any:
            return real(*_filled(fill, args, kwargs), **kwargs)

    functools.update_wrapper(facade, real)
    facade.__name__ = facade.__qualname__ = public
    facade.__module__ = "workbench"
    signature = inspect.signature(real)
    if fill != "none":
        keyword = {"session=": "session", "store=": "store"}
        filled = keyword.get(fill) or next(iter(signature.parameters))
        signature = signature.replace(
            parameters=[p for n, p in signature.parameters.items() if n != filled]
        )
    facade.__signature__ = signature  # type: ignore[union-attr]
    return facade


# public name -> (module, function, what it fills in)
FORWARDS: dict[str, tuple[str, str, Fill]] = {
    # calls.single's, plus the partial answer and its footer shown at Ctrl-C
    "chat": ("notebook.interrupts", "chat", "session"),
    "achat": ("notebook.interrupts", "achat", "session"),
    "estimate": ("calls.single", "estimate", "session"),
    "embed": ("calls.embedding", "embed", "session"),
    "aembed": ("calls.embedding", "aembed", "session"),
    "runs": ("_tables", "runs", "store"),
    "browse": ("_tables", "browse", "store"),
    "export": ("_tables", "export", "store"),
    "import_runs": ("_tables", "import_runs", "store"),
    "dataset": ("_tables", "dataset", "store"),
    "datasets": ("_tables", "datasets", "store"),
    "set_price": ("_tables", "set_price", "store"),
    "preferences": ("_tables", "preferences", "session"),
    "expand_json": ("store", "expand_json", "none"),
    "win_rate": ("notebook.review.store", "win_rate", "none"),
    "score": ("scoring.engine", "score", "session="),
    "scores": ("scoring.engine", "scores", "store="),
    "check": ("decide.gate", "check", "store="),
    "compare_runs": ("decide.paired", "compare_runs", "store="),
    "stability": ("decide.stability", "stability", "store="),
    "agreement": ("decide.agreement", "agreement", "store="),
    "export_finetune": ("scoring.finetune", "export_finetune", "store="),
    "sweep": ("sweeps.sweep", "sweep", "session="),
    "sample_size": ("decide.samplesize", "sample_size", "none"),
    "detectable_difference": ("decide.samplesize", "detectable_difference", "none"),
    "leaderboard": ("decide.leaderboard", "leaderboard", "store="),
    "cheapest": ("decide.cheapest", "cheapest", "session="),
    "cascade": ("decide.cascade", "cascade", "session="),
    "optimize": ("optimize.optimize", "optimize", "session="),
    "optimize_candidates": ("optimize.lineage", "stored_candidates", "store="),
    "load_ipython_extension": ("notebook.magics", "register", "none"),
}


if TYPE_CHECKING:  # for type checkers; at run time each is made by __getattr__ below
    chat: Callable[..., Any]
    achat: Callable[..., Any]
    estimate: Callable[..., Any]
    embed: Callable[..., Any]
    aembed: Callable[..., Any]
    runs: Callable[..., Any]
    browse: Callable[..., Any]
    export: Callable[..., Any]
    import_runs: Callable[..., Any]
    dataset: Callable[..., Any]
    datasets: Callable[..., Any]
    set_price: Callable[..., Any]
    preferences: Callable[..., Any]
    expand_json: Callable[..., Any]
    win_rate: Callable[..., Any]
    score: Callable[..., Any]
    scores: Callable[..., Any]
    check: Callable[..., Any]
    compare_runs: Callable[..., Any]
    stability: Callable[..., Any]
    agreement: Callable[..., Any]
    export_finetune: Callable[..., Any]
    sweep: Callable[..., Any]
    sample_size: Callable[..., Any]
    detectable_difference: Callable[..., Any]
    leaderboard: Callable[..., Any]
    cheapest: Callable[..., Any]
    cascade: Callable[..., Any]
    optimize: Callable[..., Any]
    optimize_candidates: Callable[..., Any]
    load_ipython_extension: Callable[..., Any]


def __getattr__(name: str) -> Any:
    # Made on first use: the real functions pull in jinja2, the scoring and the store
    # (~0.44 s measured here), which `import workbench` should not pay for.
    if name not in FORWARDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    made = globals()[name] = forward(name, *FORWARDS[name])
    return made


def configure(**settings: Any) -> None:
    """Session settings (see :meth:`workbench.calls.session.Session.configure`)."""
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
