"""API keys as the workbench holds them: checked once on load, never shown afterwards.

A key is stripped and checked for characters an HTTP header can carry, then kept in an
:class:`ApiKey` whose repr masks it; headers that carry it repr masked too. Tracebacks
that print every frame's locals (``%xmode Verbose``) therefore show no key.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from workbench.core.errors import ConfigurationError, WorkbenchError, mask_url, redact

__all__ = [
    "ApiKey",
    "MaskedUrl",
    "SecretHeaders",
    "UnencryptedKeyWarning",
    "configured_key_variables",
    "header_problem",
    "known_secrets",
    "load_key",
    "remember_secrets",
    "request_auth",
    "scrub_chain",
    "warn_if_unencrypted",
]

# Header names whose values are secrets besides our own key (Azure's api-key, proxies').
SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})

_MIN_SECRET = 4  # shorter values would mask ordinary words in every message


class ApiKey:
    """A key that does not show itself: ``repr`` and ``str`` mask it; :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value  # unchecked: use load_key for text from outside

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        """A stable stand-in for the key (sha256, 16 hex digits), safe to keep in dict keys."""
        return hashlib.sha256(self._value.encode("utf-8", "replace")).hexdigest()[:16]

    def __repr__(self) -> str:
        return "ApiKey('****')"

    __str__ = __repr__


class SecretHeaders(dict[str, str]):
    """Request headers whose repr masks the values of secret ones (Authorization, ...)."""

    def __repr__(self) -> str:
        shown = {
            name: "****" if name.lower() in SECRET_HEADERS else value
            for name, value in self.items()
        }
        return f"SecretHeaders({shown!r})"

    __str__ = __repr__


class MaskedUrl(str):
    """A URL whose repr masks its credentials: IPython's verbose tracebacks print the value
    of every expression on the failing line, ``endpoint.url`` included."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_url(str(self)))


class UnencryptedKeyWarning(UserWarning):
    """The API key is about to travel over plain http:// to a host that is not this one."""


def header_problem(value: str) -> str | None:
    """What keeps ``value`` out of an HTTP header (never the value itself), or None."""
    for position, char in enumerate(value, 1):
        if ord(char) > 0x7E:
            return f"a non-ASCII character (at position {position} of {len(value)})"
        if ord(char) < 0x20 or char == "\x7f":
            return f"a control character such as a line break (at position {position})"
    return None


def load_key(raw: str | None, *, source: str) -> ApiKey | None:
    """The key in ``raw`` (``source`` names where it came from), stripped and checked.

    Surrounding whitespace goes (a key read from a file ends in a newline); a character
    a header cannot carry is refused with one line that does not show the key.
    """
    if raw is None:
        return None
    key = ApiKey(raw.strip())
    # From here on only the masked ApiKey holds the text: a traceback printing this
    # frame's locals (or its callers') shows no key.
    del raw
    if not key.reveal():
        return None
    problem = header_problem(key.reveal())
    if problem is not None:
        raise ConfigurationError(
            f"The API key in {source} holds {problem}, which an HTTP header cannot carry: "
            "copy the key again, without quotes or other text around it"
        )
    return key


def request_auth(
    base_url: str, api_key: str | ApiKey | None, default_headers: Mapping[str, str] | None
) -> tuple[SecretHeaders, tuple[str, ...], str]:
    """The headers that authenticate every request, every secret to keep out of text, and
    the base URL to send to, without credentials.

    Besides the key and secret headers, a password in the base URL is a secret, and so is
    its Basic credential. The URL loses them (an httpx request holding them would show
    them in any traceback that prints its locals); they go in a Basic ``Authorization``
    header instead, unless a key already fills it (httpx put Basic over our Bearer and
    the key was never sent).
    """
    key = load_key(api_key, source="the api_key argument") if isinstance(api_key, str) else api_key
    headers = SecretHeaders(default_headers or {})
    for name, value in headers.items():
        problem = header_problem(value)
        if problem is not None:
            raise ConfigurationError(
                f"The header {name!r} holds {problem}, which an HTTP header cannot carry"
            )
    if key is not None:
        headers["Authorization"] = f"Bearer {key.reveal()}"
        warn_if_unencrypted(base_url)
    secrets = [key.reveal() if key else ""]
    secrets += [value for name, value in headers.items() if name.lower() in SECRET_HEADERS]
    parts = urlsplit(base_url)
    if parts.password:
        pair = f"{parts.username or ''}:{parts.password}"
        secrets += [parts.password, base64.b64encode(pair.encode()).decode()]
    elif parts.username:
        secrets.append(parts.username)  # a token given as the URL's user name
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        secrets.append(base64.b64encode(pair.encode()).decode())
        if "authorization" not in {name.lower() for name in headers}:
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        host = parts.netloc.rpartition("@")[2]
        base_url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    kept = tuple(s for s in secrets if len(s) >= _MIN_SECRET)
    remember_secrets(kept)
    return headers, kept, base_url


# -- secrets known to this process, for messages that do not pass through a client --------

_known: set[str] = set()
_known_lock = threading.Lock()


def remember_secrets(secrets: Iterable[str | None]) -> None:
    with _known_lock:
        _known.update(s for s in secrets if s and len(s) >= _MIN_SECRET)


def known_secrets() -> tuple[str, ...]:
    """Every key and secret header value a client of this process has used."""
    with _known_lock:
        return tuple(_known)


# -- variables that hold keys ------------------------------------------------------------

CONFIG_FILE = "workbench.toml"
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# (path, mtime_ns) -> names: each saved row asks, and the file seldom changes.
_configured: dict[tuple[str, int], tuple[str, ...]] = {}


def configured_key_variables(directory: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """``OPENAI_API_KEY`` and every ``api_key_env`` of ``workbench.toml`` in ``directory``
    (default: the cwd): the environment variables whose values are keys, whatever
    their names (``CORP_KEY``). A file that cannot be read adds none here; the provider
    that reads it for a call says what is wrong with it."""
    names = ["OPENAI_API_KEY"]
    path = os.path.join(os.fspath(directory or os.getcwd()), CONFIG_FILE)
    try:
        stamp = (path, os.stat(path).st_mtime_ns)
    except OSError:
        return tuple(names)
    if stamp not in _configured:
        _configured.clear()
        _configured[stamp] = _api_key_envs(path)
    return tuple(dict.fromkeys([*names, *_configured[stamp]]))


def _api_key_envs(path: str) -> tuple[str, ...]:
    if sys.version_info >= (3, 11):
        import tomllib  # local: which module exists depends on the Python version
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with open(path, "rb") as fh:
            tables = tomllib.load(fh).get("providers") or {}
    except (OSError, tomllib.TOMLDecodeError):
        return ()
    values = [t.get("api_key_env") for t in tables.values() if isinstance(t, dict)]
    return tuple(v for v in values if isinstance(v, str) and _VARIABLE_NAME.fullmatch(v))


# -- the exception chain ------------------------------------------------------------------


def scrub_chain(exc: BaseException, secrets: Iterable[str]) -> BaseException:
    """Make a low-level exception and everything chained to it safe to print.

    Messages (``args``, notes) lose every secret. Frames of the chain lose their local
    variables: httpcore's hold the raw request bytes, Authorization header included, and
    a verbose traceback prints them. Files and line numbers stay for debugging.
    """
    known = tuple(secrets) + known_secrets()
    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        if current is not exc and isinstance(current, WorkbenchError):
            # Ours are clean already; beyond them lie frames that are not the HTTP
            # libraries' (a caller's earlier error), whose locals are not ours to clear.
            continue
        seen.add(id(current))
        current.args = tuple(redact(a, known) if isinstance(a, str) else a for a in current.args)
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [redact(n, known) if isinstance(n, str) else n for n in notes]
        if current.__traceback__ is not None:
            # Frames still running (our own handler's) are left alone by clear_frames.
            traceback.clear_frames(current.__traceback__)
        chain += [current.__cause__, current.__context__]
    return exc


# -- plain http ---------------------------------------------------------------------------

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_unencrypted(base_url: str) -> None:
    """Warn once per URL when a key would go over plain http:// to another machine."""
    parts = urlsplit(base_url)
    if parts.scheme.lower() != "http" or _is_loopback(parts.hostname):
        return
    shown = mask_url(base_url)
    with _warned_lock:
        if shown in _warned:
            return
        _warned.add(shown)
    # warn_explicit: printed as one line ("workbench: UnencryptedKeyWarning: ...") without
    # a line of our source; once per URL is our own rule, so no registry is kept.
    warnings.warn_explicit(
        f"{shown} is plain http:// to another machine: the API key travels unencrypted and "
        "anyone on the network in between can read it; use https:// if the server offers it",
        UnencryptedKeyWarning,
        "workbench",
        1,
        registry={},
    )
