"""The signing key of a server: its file format and its rotation, next to ``KeyStore``.

A key file is JSON, so that an operator can read which key it is without tools; it is
written with mode 0600 and never replaced except atomically (``replace_key_file``).
``rotate_signing_key`` starts signing with a fresh key and keeps the old one published as
expired, in an order that is safe against a crash at any step.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Tuple, Union

from .._core import MimiError, ServerKeys, SigningKey, base64url_decode, base64url_encode
from .keys import KeyStore
from .store import EventStore

__all__ = ["KEY_FILE_FORMAT", "KeyFileError", "load_signing_key", "replace_key_file", "rotate_signing_key", "save_signing_key"]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


class KeyFileError(ValueError):
    """A key file that cannot be read, written or understood (the message names the file)."""


# JSON, so that an operator can read which key it is without tools:
#   {"format": "mimi-signing-key-v1", "algorithm": "ed25519", "key_id": "ed25519:...",
#    "seed": "<URL-safe unpadded base64 of the 32-byte RFC 8032 secret key>",
#    "public_key": "<same encoding; informative, checked on load>"}

KEY_FILE_FORMAT = "mimi-signing-key-v1"


def save_signing_key(path: PathLike, key: SigningKey, *, overwrite: bool = False) -> None:
    """Write ``key`` to ``path`` with mode 0600.  Refuses to replace an existing file
    unless ``overwrite`` (losing a signing key is not undoable)."""
    path = Path(path)
    doc = {
        "format": KEY_FILE_FORMAT,
        "algorithm": "ed25519",
        "key_id": key.key_id,
        "seed": base64url_encode(key.seed),
        "public_key": base64url_encode(key.public_key),
    }
    data = (json.dumps(doc, indent=2) + "\n").encode("ascii")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(str(path), flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: a key file exists already (not overwritten)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # also when overwriting a file that had a wider mode


def load_signing_key(path: PathLike) -> SigningKey:
    """Read a key file written by :func:`save_signing_key`."""
    path = Path(path)
    try:
        info = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("signing key file %s is accessible by group or others (mode %o)", path, info.st_mode & 0o777)
    try:
        doc = json.loads(raw)
    except ValueError:
        raise KeyFileError(f"{path}: not a JSON key file") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{path}: not a {KEY_FILE_FORMAT} key file")
    if doc.get("algorithm") != "ed25519":
        raise KeyFileError(f"{path}: unsupported algorithm {doc.get('algorithm')!r}")
    key_id, seed_text = doc.get("key_id"), doc.get("seed")
    if not isinstance(key_id, str) or not isinstance(seed_text, str):
        raise KeyFileError(f"{path}: key_id and seed must be strings")
    try:
        seed = base64url_decode(seed_text)
    except (ValueError, MimiError):
        raise KeyFileError(f"{path}: seed is not base64url") from None
    if len(seed) != 32:
        raise KeyFileError(f"{path}: seed must be 32 bytes, not {len(seed)}")
    try:
        key = SigningKey(seed, key_id)
    except MimiError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    public = doc.get("public_key")
    if public is not None and public != base64url_encode(key.public_key):
        raise KeyFileError(f"{path}: public_key does not match the seed")
    return key


def replace_key_file(path: Path, key: SigningKey) -> None:
    """Write the key to a new file beside ``path``, flush it to disk, rename it over ``path``
    and flush the directory: at every moment ``path`` holds a whole key, old or new."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    save_signing_key(tmp, key)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def rotate_signing_key(keys: KeyStore, store: EventStore, key_path: Path) -> Tuple[str, str]:
    """Start signing with a fresh key; the old one stays published as expired.  Returns the
    old and the new key ID.

    Crash-safe in this order: (1) the store records the old key as expired next to the
    new one, (2) the new key file replaces the old one atomically and durably, (3) the
    running server switches.  A crash after (1) restarts with the old key current (the
    stored expired list never drops the key in the file); after (2) with the new key and
    the old one still published.  Writing the key file first could lose the old key's
    listing, and with it the verifiability of every event it signed."""
    server_name = keys.server_name
    old = keys.signing_key
    new = SigningKey.generate()
    old_expired = old.verify_key(expired_ts=int(time.time() * 1000))
    kept = [k for k in keys.expired_keys if k.key_id not in (old.key_id, new.key_id)]
    store.put_server_keys(server_name, ServerKeys(server_name, [new.verify_key(), *kept, old_expired]).encode())
    replace_key_file(key_path, new)
    keys.rotate(new)
    store.put_server_keys(server_name, keys.own_keys().encode())
    return old.key_id, new.key_id
