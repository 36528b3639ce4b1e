"""Prompt templates: ``{{name}}`` over the notebook's namespace, and nothing else.

Prompts are full of JSON and code, so only ``{{`` followed by a name starts a template
expression; ``{%``, ``{#``, ``{{1, 2}}`` and every single brace are plain text.

Templates cannot run code: they will come from data (datasets, imported experiments, a
colleague's store), so they render in Jinja's sandbox. A template reads variables, their
items and public attributes, and calls methods of text, numbers, lists and dicts; it
cannot reach Python's internals (``__globals__``, ``__subclasses__``), a module's
contents, or call a function of the notebook (``get_ipython()``).
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workbench.core.errors import InvalidInputError

__all__ = [
    "TemplateError", "UnsafeTemplateError", "render", "variables_of", "is_template",
    "parse_template",
]

# Values whose built-in methods only compute (str.upper, dict.get, list.index); the
# immutable sandbox already refuses the ones that change a list, dict or set in place.
_VALUE_TYPES = (str, bytes, int, float, complex, list, tuple, dict, set, frozenset, range)
# Sizes beyond these are refused rather than computed: `{{ 'a' * 10**10 }}` would take
# the kernel's memory, `{{ 9**9**9 }}` its CPU for hours. Jinja's own range() stops at
# 100,000 items.
_MOST_ITEMS = 10_000_000
_MOST_BITS = 100_000


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, closed further: no module contents, no calls but pure methods."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # `{{ os.environ }}`, `{{ wb.get_session }}`: a module's contents are code and
        # settings, not prompt material.
        return not isinstance(obj, types.ModuleType) and super().is_safe_attribute(
            obj, attr, value
        )

    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(obj, jinja2.Undefined):
            return True  # calling it raises its own "is undefined" error
        wrapped = getattr(obj, "__wrapped__", obj)  # the sandbox's own str.format wrapper
        pure_method = isinstance(wrapped, types.BuiltinMethodType) and isinstance(
            getattr(wrapped, "__self__", None), _VALUE_TYPES
        )
        own_global = any(obj is value for value in self.globals.values())
        return (pure_method or own_global) and super().is_safe_callable(obj)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if not __self.is_safe_callable(__obj):
            name = getattr(__obj, "__qualname__", None) or type(__obj).__name__
            raise SecurityError(f"calling {name}() is not allowed")
        return __context.call(__obj, *args, **kwargs)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            count, item = (right, left) if isinstance(right, int) else (left, right)
            size = count * len(item) if isinstance(count, int) and hasattr(item, "__len__") else 0
            if size > _MOST_ITEMS:
                raise SecurityError(f"a repetition of {size:,} items is too large")
        elif isinstance(left, int) and isinstance(right, int) and right > 0:
            bits = right * max(abs(left).bit_length(), 1)
            if bits > _MOST_BITS:
                raise SecurityError(f"{left}**{right} is too large a number")
        return super().call_binop(context, operator_, left, right)


# Jinja's block and comment syntax would swallow `{% raw %}`-looking code and `{#` in
# shell or CSS snippets. Private-use code points make both delimiters unreachable.
_ENV = _Sandbox(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    block_start_string="\ue000%",
    block_end_string="%\ue000",
    comment_start_string="\ue000#",
    comment_end_string="#\ue000",
)
# lorem ipsum has no place in a prompt, and lipsum(n=10**6) would spin the CPU.
del _ENV.globals["lipsum"]

# `{{` that does not open a name (JSON `{{"a": 1}}`, C `{{1, 2}}`, `{{}}`) is text;
# Jinja's own escape `{{ '{{' }}` is kept, so a literal `{{name}}` can still be written.
_ESCAPE = r"""\{\{\s*(?P<quote>['"])\{\{(?P=quote)\s*\}\}"""
_BRACES = re.compile(rf"(?P<escape>{_ESCAPE})|\{{\{{(?!\s*[A-Za-z_])")
_EXPRESSION = re.compile(rf"{_ESCAPE}|\{{\{{\s*[A-Za-z_]")
_LITERAL_HINT = "write {{ '{{' }} for literal double braces"


class TemplateError(ValueError):
    """A template that cannot be rendered; ``missing`` names undefined variables."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class UnsafeTemplateError(TemplateError, InvalidInputError):
    """A template that tried to reach past its variables (Jinja's ``SecurityError``)."""


_SAFE_HINT = (
    "a template reads variables and calls methods of text, numbers, lists and dicts "
    "only; compute anything else in Python and pass the result as a variable"
)


def is_template(text: str) -> bool:
    """True when ``text`` holds a ``{{name ...}}`` expression (or Jinja's ``{{ '{{' }}``)."""
    return _EXPRESSION.search(text) is not None


def _compile_source(text: str) -> str:
    # Jinja's own escape for a literal "{{" is the expression {{ '{{' }}.
    return _BRACES.sub(lambda m: m["escape"] or "{{ '{{' }}", text)


def _parse(text: str, what: str) -> jinja2.nodes.Template:
    try:
        return _ENV.parse(_compile_source(text))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"Cannot read the {what} template, line {exc.lineno}: {exc.message} "
            f"({_LITERAL_HINT})"
        ) from None


def parse_template(text: str, what: str = "prompt") -> jinja2.nodes.Template:
    """Jinja's syntax tree of a prompt template (as :func:`render` reads it)."""
    return _parse(text, what)


@functools.lru_cache(maxsize=256)
def _compiled(text: str, what: str) -> tuple[jinja2.Template, frozenset[str]]:
    # A sweep renders one template once per point: parsing and compiling it each time
    # cost ~1 ms a point, most of the time it took to plan a 2,000-run sweep.
    tree = _parse(text, what)
    return _ENV.from_string(tree), frozenset(jinja2.meta.find_undeclared_variables(tree))


def variables_of(text: str) -> list[str]:
    """The top-level names a template reads, sorted."""
    if not is_template(text):
        return []
    return sorted(_compiled(text, "prompt")[1])


def render(template: str, namespace: Mapping[str, Any], *, what: str = "prompt") -> str:
    """Fill ``{{name}}`` expressions from ``namespace``; undefined names are an error.

    ``what`` says in error messages which template failed (``prompt``, ``--system``).
    """
    if not is_template(template):
        return template  # the common case: no Jinja work, the text comes back as is
    compiled, read = _compiled(template, what)
    missing = sorted(n for n in read if n not in namespace)
    if missing:
        names = ", ".join(missing)
        plural = "s" if len(missing) > 1 else ""
        raise TemplateError(
            f"Undefined variable{plural} {names} in the {what}: define {names} in the "
            f"notebook first, or {_LITERAL_HINT}",
            tuple(missing),
        )
    try:
        return compiled.render(dict(namespace))
    except SecurityError as exc:  # `{{ x.__class__ }}`, `{{ get_ipython() }}`
        raise UnsafeTemplateError(
            f"In the {what}: refused: {str(exc).rstrip('.')} ({_SAFE_HINT})"
        ) from None
    except jinja2.UndefinedError as exc:  # an attribute or key that is not there
        raise TemplateError(f"In the {what}: {exc.message}") from None
    except Exception as exc:  # user code runs here: `{{ items[9] }}`, `{{ x / 0 }}`
        raise TemplateError(f"In the {what}: {type(exc).__name__}: {exc}") from None
