"""Spotting API keys in text about to be sent to a model.

A prompt that holds a key hands it to the provider and writes it into the experiment
table (and any export of it), so the notebook front ends warn before sending one.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable

__all__ = ["KeyInPromptWarning", "find_key", "warn_if_key"]

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
# any string): the value of each one found in a prompt is a key in the prompt.
_KEY_VARIABLE = re.compile(r"(?:API_KEY|_TOKEN|_SECRET)$")
_MIN_KNOWN = 8  # shorter values would match ordinary words


class KeyInPromptWarning(UserWarning):
    """Text about to be sent looks like it holds an API key."""


def _known_keys() -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in os.environ.items()
        if _KEY_VARIABLE.search(name) and len(value) >= _MIN_KNOWN
    ]


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
