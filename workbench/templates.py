"""Prompt templates: ``{{name}}`` over the notebook's namespace, and nothing else.

Prompts are full of JSON and code, so only ``{{`` followed by a name starts a template
expression; ``{%``, ``{#``, ``{{1, 2}}`` and every single brace are plain text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta

__all__ = ["TemplateError", "render", "variables_of", "is_template"]

# Jinja's block and comment syntax would swallow `{% raw %}`-looking code and `{#` in
# shell or CSS snippets. Private-use code points make both delimiters unreachable.
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    block_start_string="\ue000%",
    block_end_string="%\ue000",
    comment_start_string="\ue000#",
    comment_end_string="#\ue000",
)

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
    except jinja2.UndefinedError as exc:  # an attribute or key that is not there
        raise TemplateError(f"In the {what}: {exc.message}") from None
    except Exception as exc:  # user code runs here: `{{ items[9] }}`, `{{ x / 0 }}`
        raise TemplateError(f"In the {what}: {type(exc).__name__}: {exc}") from None
