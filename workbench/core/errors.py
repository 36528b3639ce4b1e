"""The workbench's exceptions: one tree, translated once at the boundary.

    WorkbenchError
    ├── ConfigurationError          no provider, bad workbench.toml, missing key variable
    ├── LocalModelError             the embedded local model cannot be found or started
    ├── BudgetExceededError         an estimate is above the budget; nothing was sent
    ├── StoreError                  the experiment table cannot be read or written
    ├── InvalidInputError           an argument that cannot be sent (also a ValueError)
    └── APIError                    anything that went wrong talking to the API
        ├── APIConnectionError      could not connect, connection reset
        │   └── APITimeoutError     connect/read/write/pool timeout
        │       └── DeadlineExceededError  the call's overall deadline passed
        ├── APIStatusError          the server answered with an HTTP error status
        │   ├── BadRequestError         400 (and 422): the server's message is kept
        │   ├── AuthenticationError     401
        │   ├── PermissionDeniedError   403
        │   ├── NotFoundError           404
        │   ├── ConflictError           409
        │   ├── RateLimitError          429
        │   └── InternalServerError     5xx
        ├── APIResponseError        a 2xx answer we cannot use: malformed JSON, wrong
        │                           content type, no choices, an error object in a 200
        └── TruncatedStreamError    a stream that ended before ``data: [DONE]``

Ctrl-C is not an error but has the same look: :class:`Interrupted` (a KeyboardInterrupt,
so a notebook's "Run all" still stops there) with :class:`CallInterrupted` for a call,
keeping its partial answer, and :class:`SweepInterrupted` for a sweep.

Messages carry what a person needs (status, URL, an excerpt of the body) and never an
API key: every message passes through :func:`redact` with the keys the client knows.

In IPython and Jupyter all of these show as their one line, not a traceback through the
workbench's internals; ``%xmode Verbose`` or :func:`debug` brings the full traceback back.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "WorkbenchError",
    "ConfigurationError",
    "LocalModelError",
    "BudgetExceededError",
    "StoreError",
    "InvalidInputError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "DeadlineExceededError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "APIResponseError",
    "TruncatedStreamError",
    "Interrupted",
    "CallInterrupted",
    "SweepInterrupted",
    "debug",
    "mask_url",
    "redact",
    "status_error_class",
]

# Shapes of secrets worth hiding even when we were not told the exact key: bearer
# headers echoed back by a server, OpenAI-style keys, and the masked echoes servers
# put in 401s ("Incorrect API key provided: sk-adv-S****cdef"), which still give away
# a key's ends.
_MASK = r"(?:\*{2,}|\.{3}|…)"
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=*…-]{6,}"),
    re.compile(rf"\bsk-[A-Za-z0-9_-]*{_MASK}[A-Za-z0-9_*.…-]*"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
]
# scheme://user:password@ (or scheme://token@) at the start of a URL.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:]*)(:[^\s/?#@]*)?@")
_SHORTEST_SECRET = 4  # shorter values would mask ordinary words
_ENDS_KEPT = 4  # masked echoes show at most this many of a key's last characters


def mask_url(text: str) -> str:
    """``text`` with the credentials of every URL in it masked: ``http://user:***@host``."""

    def masked(match: re.Match[str]) -> str:
        scheme, user, password = match.groups()
        return f"{scheme}{user}:***@" if password is not None else f"{scheme}***@"

    return _URL_USERINFO.sub(masked, text)


def _masked_echo(secret: str) -> re.Pattern[str]:
    """A masked echo of ``secret``: anything with a mask run that ends in its last chars."""
    tail = re.escape(secret[-_ENDS_KEPT:])
    # Anchored at the start of a word: a body of one long word (base64) stays linear.
    return re.compile(rf"(?<![\w-])[\w-]*{_MASK}[\w*.…-]*?{tail}(?![\w-])")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with every known secret, anything key-shaped, any masked echo of a
    key and the credentials of any URL masked."""
    for secret in secrets:
        if secret and len(secret) >= _SHORTEST_SECRET:
            text = text.replace(secret, "[redacted]")
            if len(secret) >= 3 * _ENDS_KEPT:
                text = _masked_echo(secret).sub("[redacted]", text)
    text = _SECRET_PATTERNS[0].sub(r"\1[redacted]", text)
    text = _SECRET_PATTERNS[1].sub("[redacted]", text)
    text = _SECRET_PATTERNS[2].sub("[redacted]", text)
    return mask_url(text)


_full_tracebacks = False
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"


def debug(on: bool = True) -> None:
    """Show the workbench's errors and interrupts with their full traceback in IPython
    and Jupyter (``on=False``: back to their one line). ``%xmode Verbose`` does the same."""
    global _full_tracebacks
    _full_tracebacks = bool(on)


def _full_traceback_wanted() -> bool:
    if _full_tracebacks:
        return True
    # Only asked inside IPython, so IPython is imported already: never import it here.
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(getattr(shell, "InteractiveTB", None), "mode", None) == "Verbose"


class _OneLineInIPython:
    """Shown by IPython as ``ClassName: message``, one line, instead of a traceback.

    IPython's ``showtraceback`` asks ``hasattr(value, "_render_traceback_")`` and shows
    the lines it returns; when a full traceback is wanted, the attribute is absent (the
    property raises AttributeError), so IPython draws its own, whatever its mode.
    """

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        if _full_traceback_wanted():
            raise AttributeError("_render_traceback_")
        return self._one_line

    def _one_line(self) -> list[str]:
        shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
        plain = str(getattr(shell, "colors", "")).lower() == "nocolor"
        name = type(self).__name__ if plain else f"{_RED}{type(self).__name__}{_RESET}"
        return [f"{name}: {self}"]


class WorkbenchError(_OneLineInIPython, Exception):
    """Base of every error the workbench raises on purpose."""


class ConfigurationError(WorkbenchError):
    """The workbench is not set up to make this call; the message names the fix."""


class LocalModelError(WorkbenchError):
    """The embedded local model could not be located, converted or started."""


class BudgetExceededError(WorkbenchError):
    """A call or sweep was refused before sending anything: its estimate is too high."""


class StoreError(WorkbenchError):
    """The experiment table could not be opened, read or written."""


class InvalidInputError(WorkbenchError, ValueError):
    """An argument the workbench cannot use (a knob of the wrong type, text that is not
    valid Unicode, a negative budget); raised before anything is sent or written."""


class APIError(WorkbenchError):
    """A call to an OpenAI-compatible API failed.

    ``retries`` is how many retries were made before giving up, so that a failed call
    can still be logged with it.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        body: str | None = None,
        retries: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status_code = status_code
        self.body = body
        self.retries = retries

    def __str__(self) -> str:
        return self.message


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class DeadlineExceededError(APITimeoutError):
    """The call ran past its overall deadline (retries included); ``partial_text`` holds
    what a stream had delivered by then."""

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text


class APIStatusError(APIError):
    """The server answered with an HTTP error status."""


class BadRequestError(APIStatusError):
    """400/422: the request was refused; the server's message says why."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: wrong base URL or unknown model."""


class ConflictError(APIStatusError):
    """409."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; retried by the client first."""


class InternalServerError(APIStatusError):
    """5xx from the server."""


class APIResponseError(APIError):
    """A successful status with a body we cannot use."""


class TruncatedStreamError(APIError):
    """The event stream ended before ``data: [DONE]``; ``partial_text`` holds what came."""

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text


def status_error_class(status_code: int) -> type[APIStatusError]:
    """Which exception class an HTTP error status maps to."""
    if status_code in (400, 422):
        return BadRequestError
    return {
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        429: RateLimitError,
    }.get(status_code, InternalServerError if status_code >= 500 else APIStatusError)


class Interrupted(_OneLineInIPython, KeyboardInterrupt):
    """Ctrl-C in the workbench, with the line that says what was kept. Still a
    KeyboardInterrupt: a loop or "Run all" stops there, as the user asked."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line

    def __str__(self) -> str:
        return self.line

    def _one_line(self) -> list[str]:
        return [self.line]  # an interrupt is not an error: no red class name


class CallInterrupted(Interrupted):
    """Ctrl-C during a call. ``response`` is the partial answer as logged (a
    ChatResponse: its text, tokens counted here, cost and run id); the row is stored."""

    def __init__(self, response: Any) -> None:
        characters = len(response.text)
        unsaved = getattr(response, "unsaved", None)
        kept = (
            f"kept as run {response.run_id}"
            if unsaved is None
            else f"run {response.run_id} not stored: {unsaved.reason}"
        )
        super().__init__(f"interrupted after {characters:,} characters; {kept}")
        self.response = response


class SweepInterrupted(Interrupted):
    """Ctrl-C during a sweep: the finished runs are in the table; ``resume`` says how to
    send the rest."""

    def __init__(self, kept: int, total: int, resume: str = "run it again") -> None:
        super().__init__(
            f"Sweep stopped: {kept:,} of {total:,} runs are in the table; {resume} to send"
            " the rest."
        )
        self.kept, self.total = kept, total
