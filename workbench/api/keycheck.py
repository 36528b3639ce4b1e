"""Spotting API keys in text about to be sent to a model, and keeping them out of rows.

A prompt that holds a key hands it to the provider and would write it into the
experiment table (and any export of it): the front ends warn before sending one, and
:func:`hide_keys` masks the values of key variables in every text a row keeps.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Iterable
from typing import Any

from workbench.api.credentials import configured_key_variables

__all__ = ["KeyInPromptWarning", "find_key", "hide_keys", "hide_keys_in_row", "warn_if_key"]

# Shapes with a recognisable prefix only: a bare long random string is as likely to be a
# hash, an id or base64 data in a prompt, and a warning on every such cell would be noise.
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (what, re.compile(pattern))
    for what, pattern in (
        ("an OpenAI-style key (sk-...)", r"\bsk-[A-Za-z0-9_-]{20,}"),
        ("an AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
        ("a Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
        ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}"),
        ("a bearer token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{20,}"),
    )
)
# Environment variables whose values are keys whatever their shape (a vLLM key can be
# any string): the value of each one found in a prompt is a key in the prompt. Besides
# these names, every provider's api_key_env in workbench.toml (CORP_KEY) is one.
_KEY_VARIABLE = re.compile(r"(?:API_KEY|_TOKEN|_SECRET)$")
_HIDDEN = "[redacted]"
_MIN_KNOWN = 8  # shorter values would match ordinary words


class KeyInPromptWarning(UserWarning):
    """Text about to be sent looks like it holds an API key."""


def _known_keys() -> list[tuple[str, str]]:
    """(variable, value) of every key in the environment, longest value first (so that
    a key holding another one is hidden whole)."""
    configured = set(configured_key_variables())
    found = [
        (name, value.strip())
        for name, value in os.environ.items()
        if (name in configured or _KEY_VARIABLE.search(name)) and len(value.strip()) >= _MIN_KNOWN
    ]
    return sorted(found, key=lambda item: -len(item[1]))


def hide_keys(text: str, keys: Iterable[str] | None = None) -> str:
    """``text`` with the value of every key variable replaced by ``[redacted]``."""
    for value in (value for _, value in _known_keys()) if keys is None else keys:
        if value in text:
            text = text.replace(value, _HIDDEN)
    return text


def hide_keys_in_row(row: Any) -> None:
    """Mask the value of every key variable in each text field of ``row`` (a dataclass,
    e.g. a RunRecord), in place: a prompt that held a key was sent with it (after a
    KeyInPromptWarning), but the table, its exports and fine-tuning files never keep it."""
    keys = [value for _, value in _known_keys()]
    if not keys:
        return
    for field in dataclasses.fields(row):
        value = getattr(row, field.name)
        if isinstance(value, str):
            hidden = hide_keys(value, keys)
            if hidden != value:
                setattr(row, field.name, hidden)


def find_key(text: str) -> str | None:
    """What kind of key ``text`` seems to hold (never the key itself), or None."""
    for name, value in _known_keys():
        if value in text:
            return f"the value of ${name}"
    for what, pattern in _SHAPES:
        if pattern.search(text):
            return what
    return None


def warn_if_key(where: str, texts: Iterable[str | None]) -> bool:
    """Warn (one line, :class:`KeyInPromptWarning`) when any text holds a key; True if so."""
    for text in texts:
        found = find_key(text) if text else None
        if found is not None:
            message = (
                f"{where}: the text to send holds what looks like {found}; it goes to the "
                "provider and into the experiment table. Keep keys in environment "
                "variables, not in prompts"
            )
            # warn_explicit with a fresh registry: shown every time, not once per line,
            # and printed as "%%chat:1: KeyInPromptWarning: ..." without a source line.
            warnings.warn_explicit(message, KeyInPromptWarning, where, 1, registry={})
            return True
    return False
