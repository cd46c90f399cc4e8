"""RFC 3161 timestamp tokens inside offline bundles.

A bundle's ``timestamps`` (present when a checkpoint that includes the record was
time-stamped, ``provmark timestamp add``) lists, per TSA, the earliest such token::

    {"tsa": "<url it came from>", "size": <stamped tree size>,
     "checkpoint": "<stamped checkpoint body>", "response": "<DER TimeStampResp, base64>",
     "consistency": ["<base64 hash>", ...]}

``consistency`` proves (RFC 9162) that the stamped tree is a prefix of the bundle's
tree; the record's index is below the stamped size, so the record existed when the
TSA signed (``genTime``). :func:`check_timestamps` checks every entry: the shape, the
checkpoint body (origin, size), the consistency proof against the bundle's checkpoint
and the token's message imprint over the body; with a pinned TSA root the token's
signature and certificate chain too; otherwise against the chain the token carries
when it carries its root (which proves integrity, not trust), else the imprint alone.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from ..errors import ProvmarkError, VerificationError
from ..log.merkle import verify_consistency
from ..log.note import Checkpoint

if TYPE_CHECKING:
    from ..log.service import Log
    from ..timestamp import TimestampInfo, TsaTrust

CHECK = "timestamp"
_KEYS = frozenset({"tsa", "size", "checkpoint", "response", "consistency"})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bundle_timestamps(log: Log, index: int, tree_size: int) -> list[dict[str, Any]]:
    """The earliest token of each TSA over a checkpoint that includes leaf ``index`` and
    is not larger than ``tree_size``, with its consistency proof to ``tree_size``."""
    from ..witness.archive import TrustArchive

    archive = TrustArchive.existing(log)
    try:
        stamps = archive.timestamps(min_size=index + 1)
    finally:
        archive.close()
    earliest: dict[str, Any] = {}
    for stamp in stamps:  # ordered by size
        if stamp.size <= tree_size and stamp.tsa not in earliest:
            earliest[stamp.tsa] = stamp
    return [
        {
            "tsa": s.tsa,
            "size": s.size,
            "checkpoint": s.body,
            "response": _b64(s.response),
            "consistency": [_b64(p) for p in log.consistency_proof(s.size, tree_size)],
        }
        for s in earliest.values()
    ]


def _embedded_trust(response: bytes) -> TsaTrust | None:
    """The certificates a token carries: self-signed ones as roots, the rest intermediates;
    None when it carries no root (most TSAs send only their own certificate)."""
    from cryptography import x509

    from ..timestamp import TsaTrust, _parse

    certs = [
        x509.load_der_x509_certificate(der) for der in _parse(response).signed_data.certificates
    ]
    roots = tuple(c for c in certs if c.issuer == c.subject)
    if not roots:
        return None
    return TsaTrust(roots, tuple(c for c in certs if c.issuer != c.subject))


def _check_imprint(response: bytes, body: str) -> None:
    """Without any root to verify against: the reply is a granted token over this body."""
    import hashlib

    from ..timestamp import _parse

    resp = _parse(response)
    if resp.status not in (0, 1):
        raise VerificationError(CHECK, f"the TSA refused the request (status {resp.status})")
    if resp.tst_info.message_imprint.message != hashlib.sha256(body.encode()).digest():
        raise VerificationError(CHECK, "the timestamp token is for other data")


def check_timestamps(
    entries: Any,
    *,
    origin: str,
    index: int,
    tree_size: int,
    root: bytes,
    tsa: TsaTrust | None = None,
) -> list[TimestampInfo]:
    """Check a bundle's ``timestamps`` (see the module doc); ``VerificationError`` on failure.

    Returns the verified tokens: all of them with ``tsa`` pinned; without, those whose
    signature could be checked against the chain they carry (a token carrying only the
    TSA's own certificate is checked for its imprint alone)."""
    from ..timestamp import verify_timestamp

    if not isinstance(entries, list):
        raise VerificationError("bundle_format", "timestamps must be a list")
    out = []
    for n, entry in enumerate(entries):
        where = f"timestamps[{n}]"
        if not isinstance(entry, dict) or set(entry) != _KEYS:
            raise VerificationError("bundle_format", f"{where} must have exactly {sorted(_KEYS)}")
        size, body, proof = entry["size"], entry["checkpoint"], entry["consistency"]
        if not isinstance(size, int) or isinstance(size, bool) or not isinstance(body, str):
            raise VerificationError("bundle_format", f"{where}: size or checkpoint of wrong type")
        if not isinstance(entry["tsa"], str) or not isinstance(proof, list):
            raise VerificationError("bundle_format", f"{where}: tsa or consistency of wrong type")
        try:
            response = base64.b64decode(entry["response"], validate=True)
            hashes = [base64.b64decode(p, validate=True) for p in proof]
        except (binascii.Error, ValueError, TypeError):
            raise VerificationError("bundle_format", f"{where} holds bad base64") from None
        if _b64(response) != entry["response"] or [_b64(h) for h in hashes] != proof:
            raise VerificationError("bundle_format", f"{where} holds non-canonical base64")
        try:
            stamped = Checkpoint.parse(body, origin=origin)
        except (VerificationError, ProvmarkError) as exc:
            raise VerificationError(CHECK, f"{where}: stamped checkpoint: {exc}") from None
        if stamped.size != size or not index < size <= tree_size:
            raise VerificationError(
                CHECK,
                f"{where}: stamped tree of size {stamped.size} (stated {size}) does not hold "
                f"leaf {index} of the bundle's tree of {tree_size}",
            )
        try:
            verify_consistency(size, tree_size, stamped.root_hash, root, hashes)
        except VerificationError as exc:
            raise VerificationError(CHECK, f"{where}: {exc.detail}") from None
        trust = tsa if tsa is not None else _embedded_trust(response)
        try:
            if trust is None:
                _check_imprint(response, body)
            else:
                out.append(verify_timestamp(response, body.encode(), trust))
        except VerificationError as exc:
            raise VerificationError(CHECK, f"{where}: {exc.detail}") from None
    return out
