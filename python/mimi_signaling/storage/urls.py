"""Open an ``EventStore`` from a URL, as configuration files and the CLI name them.

- ``sqlite:///var/lib/mimi/hub.db``: a SQLite file at an absolute path (``sqlite:`` then
  ``//`` and the path, as in ``file:///``); ``sqlite:relative/path.db`` for a relative one.
  Percent-escapes in the path are decoded.  The file is created if missing; its directory
  must exist.
- ``sqlite://:memory:``: a private in-memory database, for tests only (gone on close).
- ``postgresql://user[:password]@host[:port]/dbname[?param=value...]`` (or ``postgres://``):
  handed to libpq as it is, so every libpq parameter works.
"""

from __future__ import annotations

import os
from urllib.parse import unquote

from ..node.store import EventStore

__all__ = ["open_store", "sqlite_path_from_url"]

_USAGE = "use sqlite:///path/to/file.db, sqlite://:memory: or postgresql://user@host:port/db"


def open_store(url: str) -> EventStore:
    """The store the URL names; ValueError for a URL that names none."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteEventStore

        return SQLiteEventStore(sqlite_path_from_url(url))
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresEventStore

        return PostgresEventStore(url)
    # The URL itself is not echoed: it may hold a password.
    raise ValueError(f"unsupported store URL scheme {scheme!r}: {_USAGE}")


def sqlite_path_from_url(url: str) -> str:
    """The file path (or ``:memory:``) of a ``sqlite:`` URL; checks the directory exists."""
    rest = url.partition(":")[2]
    if rest == "//:memory:":
        return ":memory:"
    if rest.startswith("///"):
        path = unquote(rest[2:])  # keeps the leading "/" of the absolute path
    elif rest.startswith("//"):
        raise ValueError(f"a sqlite URL names no host ({rest[2:].partition('/')[0]!r}): {_USAGE}")
    elif rest:
        path = unquote(rest)
    else:
        raise ValueError(f"a sqlite URL needs a path: {_USAGE}")
    if "?" in rest or "#" in rest:
        raise ValueError("a sqlite URL takes no query or fragment; escape '?' and '#' in paths")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory of the SQLite store does not exist: {directory}")
    return path
