"""The public surface has an edge (issue 21 item 6): ``dir(workbench)`` is the documented
API, the package's modules are not its attributes, and each ``wb.*`` function forwards to
the function doing the work with that function's own parameters and defaults."""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest

import workbench as wb
from workbench._api import FORWARDS

DOCUMENTED = sorted({*wb.__all__, "plots", "scorers"})  # __all__ + the public subpackages


def test_dir_is_the_documented_api_even_after_internal_imports() -> None:
    for module in ("calls.session", "calls.budget.estimate", "sweeps.sweep", "notebook.compare",
                   "calls.budget", "notebook.magics"):
        importlib.import_module(f"workbench.{module}")
    assert dir(wb) == DOCUMENTED
    # A module named like a function does not replace it once imported.
    assert inspect.isfunction(wb.estimate) and inspect.isfunction(wb.compare)
    assert not inspect.ismodule(wb.compare)
    for module in ("session", "estimate", "sweeps", "calls", "errors", "_api"):
        assert not inspect.ismodule(vars(wb).get(module)), module


def test_internal_modules_stay_importable() -> None:
    import workbench.api.client
    from workbench.calls import session

    assert session.get_session is not None
    assert workbench.api.client.OpenAIClient.__name__ == "OpenAIClient"


def test_every_documented_name_resolves() -> None:
    for name in DOCUMENTED:
        assert getattr(wb, name) is not None, name


@pytest.mark.parametrize("name", sorted(FORWARDS))
def test_a_facade_function_shows_the_real_parameters_and_defaults(name: str) -> None:
    module, function, fill = FORWARDS[name]
    real = getattr(importlib.import_module(f"workbench.{module}"), function)
    facade = getattr(wb, name)
    real_parameters = dict(inspect.signature(real).parameters)
    if fill in ("session=", "store="):
        del real_parameters[fill[:-1]]
    elif fill in ("session", "store"):
        del real_parameters[next(iter(real_parameters))]
    shown = inspect.signature(facade).parameters
    assert list(shown) == list(real_parameters)
    for parameter, real_parameter in real_parameters.items():
        assert shown[parameter].default == real_parameter.default, parameter
        assert shown[parameter].kind == real_parameter.kind, parameter
    assert facade.__doc__ == real.__doc__
    assert inspect.isfunction(facade)  # help() and IDEs show it as the function it is
    assert inspect.iscoroutinefunction(facade) == inspect.iscoroutinefunction(real)


def test_chat_defaults_are_the_sessions() -> None:
    """``wb.chat`` states the knobs once (calls/single.py); the session's methods, which
    take the same names, must not default them differently."""
    from workbench.calls.session import Session
    from workbench.calls.single import chat

    stated = inspect.signature(chat).parameters
    for method in (Session.prepare_chat, Session.begin_chat, Session.chat, Session.achat):
        for name, parameter in inspect.signature(method).parameters.items():
            if name in stated and parameter.default is not inspect.Parameter.empty:
                assert stated[name].default == parameter.default, (method.__name__, name)


def test_configure_shows_the_sessions_settings() -> None:
    from workbench.calls.session import Session

    session_parameters = list(inspect.signature(Session.configure).parameters.values())[1:]
    assert list(inspect.signature(wb.configure).parameters.values()) == session_parameters


def test_names_that_moved_still_resolve_with_a_deprecation_warning() -> None:
    from workbench.calls.session import get_session

    with pytest.warns(DeprecationWarning, match="workbench.calls.session"):
        assert wb.get_session is get_session
    with pytest.warns(DeprecationWarning, match="workbench.calls.prepare"):
        assert wb.Message is dict[str, object] or wb.Message is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the extension hook is not deprecated
        assert callable(wb.load_ipython_extension)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        wb.nothing_here  # noqa: B018
