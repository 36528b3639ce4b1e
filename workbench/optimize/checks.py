"""Which proposed prompts may be evaluated: a candidate that drops a template variable or
a phrase the output format needs, or that is no prompt at all (a reflection model's
nonsense), is refused before any call is made for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workbench.core.templates import TemplateError, variables_of

__all__ = ["refusal", "required_variables"]


def required_variables(parts: Mapping[str, str | None]) -> set[str]:
    """The template variables the starting prompt uses, over all its parts."""
    found: set[str] = set()
    for text in parts.values():
        if text:
            found.update(variables_of(text))
    return found


def refusal(
    proposed: Mapping[str, str],
    parent: Mapping[str, str],
    fixed: Mapping[str, str | None],
    *,
    variables: set[str],
    keep: Sequence[str],
) -> str | None:
    """Why ``proposed`` (the changed parts) may not be evaluated, or None when it may.
    ``fixed`` holds the parts not being optimized; ``variables`` must all still appear
    somewhere; each phrase of ``keep`` (the output format, e.g. ``"JSON"``) too."""
    for part, text in proposed.items():
        if not text.strip() or not any(ch.isalpha() for ch in text):
            return f"the proposed {part} holds no words"
        if text.strip() == parent.get(part, "").strip():
            return f"the proposed {part} is the same as its parent's"
    whole = {**fixed, **parent, **proposed}
    try:
        used = required_variables(whole)
    except TemplateError as exc:
        return f"the proposed template does not parse: {str(exc)[:120]}"
    dropped = sorted(variables - used)
    if dropped:
        return "it drops the template variable" + ("s " if len(dropped) > 1 else " ") + ", ".join(
            "{{" + name + "}}" for name in dropped)
    text = "\n".join(t for t in whole.values() if t)
    lost = [phrase for phrase in keep if phrase.lower() not in text.lower()]
    if lost:
        return "it drops the output format: " + ", ".join(map(repr, lost))
    return None
