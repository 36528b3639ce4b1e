"""Keys out of logs: a filter on the HTTP libraries' loggers that masks every key in use.

httpcore logs response headers at DEBUG, so a server or proxy that echoes the
Authorization header back would put the key into any log a person turns on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from workbench.api.credentials import known_secrets, remember_secrets
from workbench.core.errors import redact

__all__ = ["guard_logs"]

# Records are created by these loggers themselves (a filter on a logger does not see
# its children's records), so each one gets the filter.
_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "httpx_sse",
)

_lock = threading.Lock()
_installed = False


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Runs only for records that will be emitted: with logging off, it costs nothing.
        message = record.getMessage()
        clean = redact(message, known_secrets())
        if clean != message:
            record.msg, record.args = clean, None
        return True


def guard_logs(secrets: Iterable[str | None]) -> None:
    """Mask ``secrets`` (and anything key-shaped) in every HTTP library log record."""
    global _installed
    remember_secrets(secrets)
    with _lock:
        if _installed:
            return
        _installed = True
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(_RedactingFilter())
