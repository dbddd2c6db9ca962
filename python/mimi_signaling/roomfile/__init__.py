"""Room export files (PROFILE.md section 9): ``writer`` (the framing), ``export`` (a room from a
store into a file), ``verify`` (``mimi verify``). Synthetic rooms for tests and benchmarks are
``mimi_signaling.testing.rooms``."""

from __future__ import annotations

from .export import export_room
from .verify import DEFAULT_CHUNK, Progress, RoomFileNotReadable, VerifyFailure, VerifyReport, verify_room_file
from .writer import RECORD_EVENT, RECORD_SERVER_KEYS, RoomFileWriter

__all__ = [
    "RECORD_SERVER_KEYS",
    "RECORD_EVENT",
    "DEFAULT_CHUNK",
    "RoomFileWriter",
    "export_room",
    "VerifyFailure",
    "VerifyReport",
    "RoomFileNotReadable",
    "Progress",
    "verify_room_file",
]
