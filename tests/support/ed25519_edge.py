"""Ed25519 signatures with the edge cases of ZIP 215 (PROFILE.md section 2), made in the tests
from a signing key's seed: a small-order component in ``R`` (valid under the cofactored
equation, refused by a cofactorless verifier such as libsodium's) and ``S + L`` (refused:
``S`` must be canonical). No library offers signing with a chosen ``R``, so the curve
arithmetic of RFC 8032 section 5.1 is written out here, for tests only; ``sign(seed, m)``
with no torsion is checked byte for byte against ``SigningKey.sign`` in
tests/core/test_zip215.py, which pins this arithmetic to RFC 8032's."""

from __future__ import annotations

import hashlib
from typing import Tuple

import mimi_signaling as ms

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
_D = -121665 * pow(121666, P - 2, P) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = Tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
_IDENTITY: Point = (0, 1, 1, 0)


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * _D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(scalar: int, p: Point) -> Point:
    out = _IDENTITY
    while scalar:
        if scalar & 1:
            out = _add(out, p)
        p = _add(p, p)
        scalar >>= 1
    return out


def encode_point(p: Point) -> bytes:
    zinv = pow(p[2], P - 2, P)
    x, y = p[0] * zinv % P, p[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode_point(data: bytes) -> Point:
    """RFC 8032 section 5.1.3, canonical encodings only."""
    value = int.from_bytes(data, "little")
    y, sign = value & ((1 << 255) - 1), value >> 255
    if y >= P:
        raise ValueError("non-canonical y")
    x2 = (y * y - 1) * pow(_D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * _SQRT_M1 % P
    if (x * x - x2) % P:
        raise ValueError("not a point")
    if x == 0 and sign:
        raise ValueError("x = 0 with the sign bit set")
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


BASE = decode_point((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
#: A point of order 8 (the small-order R of ed25519-speccheck's cases, as in
#: ../shared/vectors/ed25519_zip215.json); its multiples 1..7 are the non-identity torsion.
TORSION_8 = decode_point(bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
assert encode_point(_mul(8, TORSION_8)) == encode_point(_IDENTITY)
assert encode_point(_mul(4, TORSION_8)) != encode_point(_IDENTITY)


def _h(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def sign(seed: bytes, message: bytes, torsion: int = 0) -> bytes:
    """RFC 8032 signing, except that ``R = [r]B + [torsion]T8`` and ``S`` is computed for that
    ``R``: for ``torsion`` in 1..7 the signature has a small-order component in ``R`` and
    satisfies the cofactored equation ``[8][S]B = [8]R + [8][k]A`` only (ZIP 215: valid)."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    public = encode_point(_mul(a, BASE))
    r = _h(h[32:], message) % L
    big_r = encode_point(_add(_mul(r, BASE), _mul(torsion % 8, TORSION_8)))
    k = _h(big_r, public, message) % L
    return big_r + ((r + k * a) % L).to_bytes(32, "little")


def s_plus_l(signature: bytes) -> bytes:
    """The same signature with ``S + L``: equal mod L, but ``S`` is not canonical (ZIP 215 and
    RFC 8032 refuse it)."""
    return signature[:32] + (int.from_bytes(signature[32:], "little") + L).to_bytes(32, "little")


def origin_message(limited: ms.LimitedEvent) -> bytes:
    """The SignContent bytes the origin signature covers (PROFILE.md section 2)."""
    return ms.wire.sign_content(ms.ORIGIN_LABEL, limited.to_unsigned_event([], "", "ed25519:x").origin_signed_form())


def with_origin_signature(encoded: bytes, signature: bytes, decode=ms.LimitedEvent.decode) -> bytes:
    """An encoded limited event (or event, with ``decode=Event.decode``) whose one origin
    signature is replaced: the origin signature is the last field of both, so with one entry
    its 64 bytes end the encoding. Neither the event ID nor the hub signature covers it."""
    assert len(signature) == 64
    out = encoded[:-64] + signature
    assert [s.signature for s in decode(out).origin_signature] == [signature]
    return out


def limited_with(limited: ms.LimitedEvent, seed: bytes, *, torsion: int = 0, plus_l: bool = False) -> bytes:
    """``limited`` encoded, its origin signature remade from ``seed`` with a small-order
    component ``torsion`` in R and/or S + L."""
    signature = sign(seed, origin_message(limited), torsion)
    return with_origin_signature(limited.encode(), s_plus_l(signature) if plus_l else signature)
