"""C2SP signed notes (Ed25519) and tlog-checkpoint bodies.

Wire-compatible with Go's ``golang.org/x/mod/sumdb/note``: a note is a body ending in a
newline, a blank line, then signature lines ``— <name> <base64(key id || signature)>``.
Opening a note follows ``note.Open``: signatures by unknown keys are ignored, an invalid
signature by a known key rejects the whole note, and at least one known key must sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provmark.errors import ConfigError, VerificationError

__all__ = [
    "ALG_ED25519",
    "MAX_LINE_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "NoteVerifier",
    "add_signature",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "parse_verifier_key",
    "sign_note",
    "verifier_key_string",
]

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # the cap of Go's note.Open
MAX_NOTE_BYTES = 1_000_000  # the cap of Go's tlog.ParseTree
MAX_LINE_BYTES = 65_536  # no real note line comes near this
_SIG_PREFIX = "\u2014 "
_CONTROL = re.compile("[\x00-\x1f]")
_CONTROL_NOT_NL = re.compile("[\x00-\x09\x0b-\x1f]")
_CHECK = "checkpoint_signature"


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64decode(text: str) -> bytes | None:
    """Strict, canonical standard base64; None when malformed."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _name_error(name: str) -> str | None:
    if not name:
        return "key name is empty"
    if "+" in name:
        return "key name contains '+'"
    if any(ch.isspace() or ch < " " for ch in name):
        return "key name contains a space or control character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "key name is not valid UTF-8"
    return None


def key_id(name: str, public_key: Ed25519PublicKey) -> int:
    """Ed25519 note key id: first 4 bytes (big-endian) of SHA-256(name || "\\n" || 0x01 || key)."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + _raw_public(public_key)
    ).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 public key that can verify note signatures."""

    name: str
    key_id: int
    public_key: Ed25519PublicKey

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        if err := _name_error(name):
            raise ConfigError(err)
        return cls(name, key_id(name, public_key), public_key)

    def key_string(self) -> str:
        return verifier_key_string(self.name, self.public_key)


@dataclass(frozen=True)
class NoteSignature:
    """One parsed signature line."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        raw = struct.pack(">I", self.key_id) + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(raw).decode('ascii')}\n"


def verifier_key_string(name: str, public_key: Ed25519PublicKey) -> str:
    """``<name>+<8 hex key id>+<base64(0x01 || public key)>``."""
    if err := _name_error(name):
        raise ConfigError(err)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + _raw_public(public_key)).decode("ascii")
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


def parse_verifier_key(text: str) -> NoteVerifier:
    """Parse a verifier key string; raise ``ConfigError`` if it is malformed."""
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    if err := _name_error(name):
        raise ConfigError(f"invalid verifier key: {err}")
    if len(hex_id) != 8 or any(c not in "0123456789abcdefABCDEF" for c in hex_id):
        raise ConfigError("invalid verifier key: key id is not 8 hex digits")
    raw = _b64decode(encoded)
    if raw is None or not raw:
        raise ConfigError("invalid verifier key: key is not base64")
    if raw[0] != ALG_ED25519:
        raise ConfigError(f"invalid verifier key: unknown algorithm {raw[0]}")
    if len(raw) != 33:
        raise ConfigError(f"invalid verifier key: Ed25519 key has {len(raw) - 1} bytes, want 32")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    verifier = NoteVerifier(name, int(hex_id, 16), public_key)
    if verifier.key_id != key_id(name, public_key):
        raise ConfigError("invalid verifier key: key id does not match name and key")
    return verifier


def _malformed(reason: str) -> VerificationError:
    return VerificationError(_CHECK, f"malformed note: {reason}")


def _check_text(text: str, what: str) -> None:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise _malformed(f"{what} is not valid UTF-8") from None
    if len(raw) > MAX_NOTE_BYTES:
        raise _malformed(f"{what} is {len(raw)} bytes, more than {MAX_NOTE_BYTES}")
    if m := _CONTROL_NOT_NL.search(text):
        raise _malformed(f"{what} contains control character {ord(m.group()):#04x}")
    if len(raw) > MAX_LINE_BYTES and max(map(len, raw.split(b"\n"))) > MAX_LINE_BYTES:
        raise _malformed(f"{what} has a line longer than {MAX_LINE_BYTES} bytes")


def _check_body(body: str) -> None:
    _check_text(body, "body")
    if not body.endswith("\n"):
        raise _malformed("body does not end with a newline")
    if body.startswith("\n") or "\n\n" in body:
        raise _malformed("body contains an empty line")


def parse_note(text: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a note into body and signatures without verifying anything."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("note is not valid UTF-8") from None
    _check_text(text, "note")
    split = text.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line before the signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _malformed("signature block is empty or does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(f"{len(lines)} signatures, more than {MAX_SIGNATURES}")
    sigs: list[NoteSignature] = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise _malformed(f"signature line {n} does not start with an em dash and a space")
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        if err := _name_error(name):
            raise _malformed(f"signature line {n}: {err}")
        raw = _b64decode(encoded)
        if raw is None or len(raw) < 5:
            raise _malformed(f"signature line {n}: bad base64 or signature too short")
        sigs.append(NoteSignature(name, struct.unpack(">I", raw[:4])[0], raw[4:]))
    return body, sigs


def _verifier_map(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if _raw_public(other.public_key) != _raw_public(v.public_key):
            raise ConfigError(f"ambiguous verifier keys for {v.name}+{v.key_id:08x}")
    return known


def open_note(text: str | bytes, verifiers: Iterable[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a note; return its body and the names of the known keys that signed it."""
    body, sigs = parse_note(text)
    known = _verifier_map(verifiers)
    message = body.encode("utf-8")
    verified: list[str] = []
    seen: set[tuple[str, int]] = set()
    for sig in sigs:
        key = (sig.name, sig.key_id)
        verifier = known.get(key)
        if verifier is None or key in seen:
            continue
        seen.add(key)
        try:
            verifier.public_key.verify(sig.signature, message)
        except InvalidSignature:
            raise VerificationError(
                _CHECK, f"invalid signature by {sig.name}+{sig.key_id:08x}"
            ) from None
        verified.append(sig.name)
    if not verified:
        signers = ", ".join(f"{s.name}+{s.key_id:08x}" for s in sigs)
        raise VerificationError(_CHECK, f"no signature by a known key (signed by: {signers})")
    return body, verified


def _signature(body: str, name: str, private_key: Ed25519PrivateKey) -> NoteSignature:
    if err := _name_error(name):
        raise ConfigError(err)
    return NoteSignature(
        name, key_id(name, private_key.public_key()), private_key.sign(body.encode("utf-8"))
    )


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` as key ``name``; return the note text."""
    _check_body(body)
    return body + "\n" + _signature(body, name, private_key).line()


def add_signature(note_text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Cosign: append a signature to a note, replacing one by the same key.

    Existing signatures are kept but not verified: a witness must open the note with
    the log's key first.
    """
    body, sigs = parse_note(note_text)
    _check_body(body)
    new = _signature(body, name, private_key)
    kept = [s for s in sigs if (s.name, s.key_id) != (new.name, new.key_id)]
    if len(kept) + 1 > MAX_SIGNATURES:
        raise ConfigError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return body + "\n" + "".join(s.line() for s in [*kept, new])


def _checkpoint_error(
    origin: str, size: int, root_hash: bytes, extensions: Iterable[str]
) -> str | None:
    if not origin:
        return "origin is empty"
    for line in (origin, *extensions):
        if not line:
            return "extension line is empty"
        if _CONTROL.search(line):
            return "line contains a control character or newline"
    if isinstance(size, bool) or not 0 <= size < 2**64:
        return f"tree size {size} is not a 64-bit unsigned integer"
    if len(root_hash) != 32:
        return f"root hash has {len(root_hash)} bytes, want 32"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if err := _checkpoint_error(self.origin, self.size, self.root_hash, self.extensions):
            raise ConfigError(f"invalid checkpoint: {err}")

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    @classmethod
    def parse(cls, body: str, *, origin: str | None = None) -> Checkpoint:
        """Parse a checkpoint body strictly; optionally require the ``origin``."""

        def bad(reason: str) -> VerificationError:
            return VerificationError("checkpoint", reason)

        if len(body) > MAX_NOTE_BYTES:
            raise bad("checkpoint body too large")
        if not body.endswith("\n"):
            raise bad("body does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise bad(f"body has {len(lines)} lines, want at least 3")
        first, size_text, root_text, *extensions = lines
        if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 20:
            raise bad(f"tree size {size_text!r} is not a decimal number")
        if size_text != str(int(size_text)):
            raise bad(f"tree size {size_text!r} has leading zeros")
        root = _b64decode(root_text)
        if root is None:
            raise bad("root hash is not canonical base64")
        size = int(size_text)
        if err := _checkpoint_error(first, size, root, extensions):
            raise bad(err)
        if origin is not None and first != origin:
            raise bad(f"origin is {first!r}, want {origin!r}")
        return cls(first, size, root, tuple(extensions))

    def sign(self, name: str, private_key: Ed25519PrivateKey) -> str:
        """The checkpoint as a signed note."""
        return sign_note(self.body(), name, private_key)


def open_checkpoint(
    text: str | bytes, verifiers: Iterable[NoteVerifier], *, origin: str | None = None
) -> tuple[Checkpoint, list[str]]:
    """Verify a signed checkpoint note and parse its body."""
    body, names = open_note(text, verifiers)
    return Checkpoint.parse(body, origin=origin), names
