"""Writing room export files (PROFILE.md section 9): ``MIMIROOM``, ``uint16 version = 1``, then
records ``struct { uint8 kind; opaque body<V>; }``: kind 1 ``ServerKeys`` (all before the first
event), kind 2 ``Event`` in room order from the create event. The framing is the core's."""

from __future__ import annotations

import os
import tempfile
from typing import (
    IO,
    Any,
    Union,
)

from .._core import (
    ROOM_FILE_EVENT_RECORD,
    ROOM_FILE_KEYS_RECORD,
    MalformedError,
    ServerKeys,
    encode_room_file_header,
    encode_room_file_record,
)

#: The record kinds of section 9 are the core's.
RECORD_SERVER_KEYS = ROOM_FILE_KEYS_RECORD
RECORD_EVENT = ROOM_FILE_EVENT_RECORD


# --- writing ----------------------------------------------------------------------------------


class RoomFileWriter:
    """Writes a room file to a temporary file beside ``path``; ``commit`` renames it in place
    (atomic on POSIX), ``abort`` (or leaving the ``with`` block on an exception) removes it."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, buffer_size: int = 1 << 20) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=buffer_size)
        self._file.write(encode_room_file_header())
        self.events_written = 0
        self._events_started = False
        self._done = False

    def write_server_keys(self, keys: ServerKeys) -> None:
        if self._events_started:
            raise MalformedError("all ServerKeys records must come before the first event")
        self._file.write(encode_room_file_record(RECORD_SERVER_KEYS, keys.encode()))

    def write_event(self, event_bytes: bytes) -> None:
        self._events_started = True
        self._file.write(encode_room_file_record(RECORD_EVENT, event_bytes))
        self.events_written += 1

    def write_raw(self, data: bytes) -> None:
        """Arbitrary bytes (fault injection for tests); counts as one event record."""
        self._events_started = True
        self._file.write(data)
        self.events_written += 1

    def commit(self) -> None:
        if self._done:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp_path, 0o666 & ~umask)
        os.replace(self.tmp_path, self.path)
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
        finally:
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> RoomFileWriter:
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


