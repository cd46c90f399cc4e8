"""Put the SET OF fields of an RFC 3161 reply's SignedData in DER order.

A TSA that sends its certificate chain (``certReq`` true, ``certs = chain.pem`` in an
``openssl ts`` configuration, and many public TSAs) encodes ``SignedData.certificates``
in the order it was given, not in the ascending order DER prescribes for a SET OF
(X.690 11.6). OpenSSL defines that field as a SEQUENCE OF internally, so it never
sorts it. ``rfc3161-client`` parses strictly as DER and refuses such a reply with
``InvalidSetOrdering ... SignedData::certificates``.

The certificates, CRLs and the two other SET OF fields of SignedData
(``digestAlgorithms``, ``signerInfos``) are not covered by the token's signature, so
putting their elements in DER order changes nothing that is signed: the signature
covers the signed attributes (which the TSA already DER-encodes to sign them). The
elements are reordered in place; lengths do not change. The stored reply stays the
bytes the TSA sent; only what is handed to the parser is normalised.
"""

from __future__ import annotations

__all__ = ["der_ordered"]

_SEQUENCE = 0x30
_SET = 0x31
_CONTEXT_0 = 0xA0  # [0] IMPLICIT certificates / [0] EXPLICIT content
_CONTEXT_1 = 0xA1  # [1] IMPLICIT crls


def _element(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at ``pos``; ValueError if cut."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not used in SignedData")
    first = data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER element")
    return tag, start, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, contents start, end) of every element between the offsets."""
    out = []
    pos = start
    while pos < end:
        tag, body, stop = _element(data, pos)
        out.append((tag, pos, body, stop))
        pos = stop
    return out


def _sorted_set(buf: bytearray, start: int, end: int) -> None:
    """Put the elements of a SET OF in DER order: as octet strings, the shorter one
    padded with zero octets at its end (X.690 11.6)."""
    parts = [bytes(buf[s:e]) for _, s, _, e in _children(bytes(buf), start, end)]
    width = max((len(p) for p in parts), default=0)
    parts.sort(key=lambda p: p + b"\x00" * (width - len(p)))
    buf[start:end] = b"".join(parts)


def der_ordered(response: bytes) -> bytes:
    """The ``TimeStampResp`` with its SignedData SET OF fields in DER order.

    Anything that is not shaped like a reply with a token comes back unchanged; the
    parser then reports what is wrong with it.
    """
    try:
        tag, body, end = _element(response, 0)
        if tag != _SEQUENCE:
            return response
        parts = _children(response, body, end)
        if len(parts) < 2 or parts[1][0] != _SEQUENCE:
            return response  # a refusal: status only, no token
        _, _, info_body, info_end = parts[1]
        content_info = _children(response, info_body, info_end)
        if len(content_info) < 2 or content_info[1][0] != _CONTEXT_0:
            return response
        _, _, explicit_body, explicit_end = content_info[1]
        inner = _children(response, explicit_body, explicit_end)
        if not inner or inner[0][0] != _SEQUENCE:
            return response
        _, _, signed_body, signed_end = inner[0]
        buf = bytearray(response)
        for tag, _, field_body, field_end in _children(response, signed_body, signed_end):
            if tag in (_SET, _CONTEXT_0, _CONTEXT_1):
                _sorted_set(buf, field_body, field_end)
        return bytes(buf)
    except ValueError:
        return response
