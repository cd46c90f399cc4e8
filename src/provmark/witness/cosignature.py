"""C2SP tlog-cosignature/v1 (Ed25519): a witness's timestamped signature on a checkpoint.

A cosignature is an ordinary signed-note signature line whose key id uses the
algorithm byte 0x04 and whose signature is ``u64 timestamp || Ed25519 signature``
over::

    cosignature/v1
    time <timestamp>
    <the checkpoint body, final newline included>

It states that, as of ``timestamp``, this is the largest tree the witness has seen
for the origin and that it is consistent with everything the witness saw before.
Log notes (algorithm 0x01) are opened by :mod:`provmark.log.note`; a cosignature is
a signature by an unknown key there, so a cosigned checkpoint still opens with the
log key alone (and in Go's ``note.Open``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import ConfigError, VerificationError
from ..log.note import MAX_SIGNATURES, NoteSignature, parse_note

__all__ = [
    "ALG_COSIGNATURE_V1",
    "CHECK",
    "Cosignature",
    "CosignerKey",
    "add_cosignatures",
    "cosign",
    "cosigned_message",
    "cosigner_key_id",
    "open_cosignatures",
    "require_cosignatures",
]

ALG_COSIGNATURE_V1 = 0x04
CHECK = "witness_cosignatures"
MAX_FUTURE_SECONDS = 600  # a witness clock this far ahead of ours is refused
_SIGNATURE_BYTES = 8 + 64
_MAX_TIMESTAMP = 2**63 - 1


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _name_error(name: str) -> str | None:
    if not name:
        return "name is empty"
    if "+" in name:
        return "name contains '+'"
    if any(ch.isspace() or ch < " " for ch in name):
        return "name contains a space or control character"
    return None


def cosigner_key_id(name: str, public_key: Ed25519PublicKey) -> int:
    """``SHA-256(name || "\\n" || 0x04 || public key)[:4]`` as a big-endian integer."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + _raw(public_key)
    ).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class CosignerKey:
    """A witness's name and Ed25519 public key (what a verifier pins)."""

    name: str
    key_id: int
    public_key: Ed25519PublicKey

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> CosignerKey:
        if err := _name_error(name):
            raise ConfigError(f"witness {err}")
        return cls(name, cosigner_key_id(name, public_key), public_key)

    def vkey(self) -> str:
        """``<name>+<8 hex key id>+<base64(0x04 || public key)>`` (a C2SP vkey)."""
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + _raw(self.public_key))
        return f"{self.name}+{self.key_id:08x}+{encoded.decode('ascii')}"

    @classmethod
    def parse(cls, text: str) -> CosignerKey:
        """Parse a witness vkey; raise :class:`ConfigError` naming what is wrong."""
        name, _, rest = text.strip().partition("+")
        hex_id, _, encoded = rest.partition("+")
        if err := _name_error(name):
            raise ConfigError(f"witness key {text!r}: {err}")
        if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id.lower()):
            raise ConfigError(f"witness key {text!r}: key id is not 8 hex digits")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"witness key {text!r}: key is not base64") from None
        if not raw or raw[0] != ALG_COSIGNATURE_V1:
            alg = raw[0] if raw else None
            raise ConfigError(
                f"witness key {name}: algorithm {alg} is not 4 (an Ed25519 cosignature/v1 key)"
            )
        if len(raw) != 33:
            raise ConfigError(f"witness key {name}: Ed25519 key has {len(raw) - 1} bytes, want 32")
        key = cls.from_public_key(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if key.key_id != int(hex_id, 16):
            raise ConfigError(f"witness key {name}: key id does not match the name and key")
        return key


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: which witness, and when it says it saw the checkpoint."""

    name: str
    key_id: int
    timestamp: int  # POSIX seconds

    def iso_time(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.timestamp))


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosignature/v1 signs."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ConfigError(f"cosignature timestamp {timestamp} is out of range")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode("utf-8")


def cosign(
    body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int | None = None
) -> NoteSignature:
    """Cosign a checkpoint body (the witness must have checked it first)."""
    if err := _name_error(name):
        raise ConfigError(f"witness {err}")
    ts = int(time.time()) if timestamp is None else timestamp
    sig = private_key.sign(cosigned_message(body, ts))
    kid = cosigner_key_id(name, private_key.public_key())
    return NoteSignature(name, kid, struct.pack(">Q", ts) + sig)


def add_cosignatures(note_text: str, signatures: Iterable[NoteSignature]) -> str:
    """Append signature lines to a note, replacing older lines by the same key."""
    body, existing = parse_note(note_text)
    new = list(signatures)
    replaced = {(s.name, s.key_id) for s in new}
    kept = [s for s in existing if (s.name, s.key_id) not in replaced]
    if len(kept) + len(new) > MAX_SIGNATURES:
        raise ConfigError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return body + "\n" + "".join(s.line() for s in [*kept, *new])


def open_cosignatures(
    note_text: str, cosigners: Sequence[CosignerKey], *, now: float | None = None
) -> tuple[str, list[Cosignature]]:
    """Verify the cosignatures by known witnesses; return the body and the valid ones.

    Lines by unknown keys are ignored (as C2SP asks); a malformed, invalid or
    future-dated cosignature by a known witness is a :class:`VerificationError`.
    """
    try:
        body, sigs = parse_note(note_text)
    except VerificationError as exc:
        raise VerificationError(CHECK, exc.detail) from None
    known = {(k.name, k.key_id): k for k in cosigners}
    limit = (time.time() if now is None else now) + MAX_FUTURE_SECONDS
    found: dict[tuple[str, int], Cosignature] = {}
    for sig in sigs:
        key = known.get((sig.name, sig.key_id))
        if key is None or (sig.name, sig.key_id) in found:
            continue
        if len(sig.signature) != _SIGNATURE_BYTES:
            raise VerificationError(
                CHECK,
                f"malformed cosignature by {sig.name}: {len(sig.signature)} bytes, "
                f"want {_SIGNATURE_BYTES} (u64 timestamp || Ed25519 signature)",
            )
        (ts,) = struct.unpack(">Q", sig.signature[:8])
        if ts > _MAX_TIMESTAMP:
            raise VerificationError(CHECK, f"cosignature by {sig.name}: timestamp out of range")
        try:
            key.public_key.verify(sig.signature[8:], cosigned_message(body, ts))
        except InvalidSignature:
            raise VerificationError(
                CHECK,
                f"invalid cosignature by {sig.name}+{sig.key_id:08x}: it does not sign "
                "this checkpoint",
            ) from None
        if ts > limit:
            raise VerificationError(
                CHECK, f"cosignature by {sig.name} is dated in the future ({ts})"
            )
        found[(sig.name, sig.key_id)] = Cosignature(sig.name, sig.key_id, ts)
    return body, list(found.values())


def require_cosignatures(
    note_text: str, cosigners: Sequence[CosignerKey], minimum: int, *, now: float | None = None
) -> list[Cosignature]:
    """At least ``minimum`` distinct known witnesses must have cosigned the checkpoint."""
    if minimum < 0:
        raise ConfigError(f"must be at least 0, not {minimum}", field="min")
    if minimum > len(cosigners):
        raise ConfigError(
            f"{minimum} is more than the {len(cosigners)} witness keys given", field="min"
        )
    body, valid = open_cosignatures(note_text, cosigners, now=now)
    if len(valid) < minimum:
        _, sigs = parse_note(note_text)
        origin = body.split("\n", 1)[0]
        known = {(k.name, k.key_id) for k in cosigners}
        unknown = sorted(
            {f"{s.name}+{s.key_id:08x}" for s in sigs if (s.name, s.key_id) not in known}
            - {f"{s.name}+{s.key_id:08x}" for s in sigs if s.name == origin}
        )
        have = ", ".join(c.name for c in valid) or "none"
        extra = (
            f"; cosigned by keys not in the witness list: {', '.join(unknown)}" if unknown else ""
        )
        raise VerificationError(
            CHECK,
            f"{len(valid)} of the required {minimum} witness cosignatures (valid: {have}){extra}",
        )
    return valid
