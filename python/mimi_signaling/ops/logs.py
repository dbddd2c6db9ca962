"""Logging for operators: plain text (the default) or one JSON object per line
(``mimi --log-format json``), with the room, peer and event ID where the code knows them,
and never a secret.

Where a record comes from a request, ``log_context(peer=..., room=..., event_id=...)`` sets
those fields for everything logged later in the same task (``ServerNode._run`` carries the
context into its worker threads); ``extra={"room": ...}`` on one call wins over the context.

Secrets: nothing in this package logs a key seed or a password, and the storage URL with its
password is built only to open the store.  As a second line, :class:`RedactSecrets` replaces
any registered secret (the PostgreSQL password read from a file, signing key seeds) that
reaches a record, e.g. inside a library's error message, with ``[redacted]``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, Dict, Iterable, List, Optional

__all__ = ["log_context", "JsonFormatter", "RedactSecrets", "setup_logging", "register_secret", "TEXT_FORMAT"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("room", "peer", "event_id")

_context: "contextvars.ContextVar[Dict[str, str]]" = contextvars.ContextVar(
    "mimi_log_context", default={}  # noqa: B039 - never mutated: log_context sets a new dict
)
_secrets: List[str] = []


def log_context(**fields: Optional[str]) -> None:
    """Set fields (room, peer, event_id) for the records of the current task or thread."""
    current = dict(_context.get())
    current.update({k: v for k, v in fields.items() if v})
    _context.set(current)


def register_secret(secret: str) -> None:
    """A value that must never appear in a log line (ignored when shorter than 6 characters:
    redacting a common short string would garble messages without protecting anything)."""
    if secret and len(secret) >= 6 and secret not in _secrets:
        _secrets.append(secret)


def _redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class RedactSecrets(logging.Filter):
    """Renders the message once, with secrets replaced (handlers format the result)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = _redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = _redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601 with milliseconds), level, logger,
    message, then room, peer and event_id when known, and exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: Dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value:
                out[name] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: int, fmt: str = "text", stream: Any = None) -> None:
    """Configure the root logger for the ``mimi`` command (``fmt``: "text" or "json")."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def register_secrets(values: Iterable[str]) -> None:
    for value in values:
        register_secret(value)
