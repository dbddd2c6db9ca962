"""Inputs the fuzzers found (fuzz/corpus/*/regress-*), kept as regression tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import mimi_signaling as m

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


def test_f1_an_event_that_decodes_always_has_an_id():
    """m.room.user with content that has no participation: refused at decode, not later."""
    data = (CORPUS / "event" / "regress-F1-user-content-empty").read_bytes()
    with pytest.raises(m.MalformedError, match="content"):
        m.Event.decode(data)
    with pytest.raises(m.MalformedError):
        m.compute_event_ids([data])


def test_f2_batch_and_single_verification_agree(golden_keyring):
    """Bad origin signature and a hub signature under an unknown key: both paths say
    bad_signature (origin first), not bad_content_hash."""
    data = (CORPUS / "pipeline" / "regress-F2-origin-bad-hub-unknown").read_bytes()
    event = m.Event.decode(data)
    with pytest.raises(m.BadSignatureError) as single:
        event.verify(golden_keyring)
    batch = m.check_events([data], golden_keyring)
    assert len(batch.failures) == 1
    assert type(batch.failures[0][1]) is m.BadSignatureError
    assert "origin_signature" in str(single.value) and "origin_signature" in str(batch.failures[0][1])
