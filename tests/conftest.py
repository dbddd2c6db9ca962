"""Shared fixtures: the public test vectors in ../shared/vectors (read from there, never
copied) and Ed25519 keys for the golden servers."""

from __future__ import annotations

import pytest

from vectors import load_vectors


@pytest.fixture(scope="session")
def golden():
    return load_vectors("mimi_events.json")


@pytest.fixture(scope="session")
def golden_keys(golden):
    """server name -> SigningKey, from the golden seeds."""
    from mimi_signaling import SigningKey

    return {s["server_name"]: SigningKey(bytes.fromhex(s["seed"]), s["key_id"]) for s in golden["servers"]}


@pytest.fixture(scope="session")
def golden_keyring(golden_keys):
    from mimi_signaling import KeyRing

    ring = KeyRing()
    for server, key in golden_keys.items():
        ring.add(server, key.verify_key())
    return ring
