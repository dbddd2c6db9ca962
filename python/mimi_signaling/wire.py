"""The wire helpers of the profile: the transport's codecs (PROFILE.md section 7: the request
and response structs of each transaction, the batch, the error body), the RFC 9420 varint,
RFC 4648 base64url, SignWithLabel's ``SignContent`` and the room file's framing (section 9).

Events, keys, content classes, errors and the batch verification API are at the top level of
``mimi_signaling``; these helpers are for code that speaks the wire itself (servers, tools,
tests).  All are the Rust core's.
"""

from __future__ import annotations

from ._core import (
    base64url_decode,
    base64url_encode,
    decode_backfill_request,
    decode_backfill_response,
    decode_batch_request,
    decode_batch_response,
    decode_error_body,
    decode_get_event_request,
    decode_get_state_request,
    decode_snapshot_request,
    decode_snapshot_response,
    decode_varint,
    encode_backfill_request,
    encode_backfill_response,
    encode_batch_request,
    encode_batch_response,
    encode_error_body,
    encode_get_event_request,
    encode_get_state_request,
    encode_room_file_header,
    encode_room_file_record,
    encode_snapshot_request,
    encode_snapshot_response,
    encode_varint,
    sign_content,
)

__all__ = [
    "base64url_decode",
    "base64url_encode",
    "decode_backfill_request",
    "decode_backfill_response",
    "decode_batch_request",
    "decode_batch_response",
    "decode_error_body",
    "decode_get_event_request",
    "decode_get_state_request",
    "decode_snapshot_request",
    "decode_snapshot_response",
    "decode_varint",
    "encode_backfill_request",
    "encode_backfill_response",
    "encode_batch_request",
    "encode_batch_response",
    "encode_error_body",
    "encode_get_event_request",
    "encode_get_state_request",
    "encode_room_file_header",
    "encode_room_file_record",
    "encode_snapshot_request",
    "encode_snapshot_response",
    "encode_varint",
    "sign_content",
]
