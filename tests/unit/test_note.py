"""C2SP signed notes and tlog-checkpoints."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provmark.errors import ConfigError, VerificationError
from provmark.log import (
    Checkpoint,
    NoteVerifier,
    add_signature,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
    parse_verifier_key,
    sign_note,
    verifier_key_string,
)
from provmark.log.note import MAX_LINE_BYTES, MAX_SIGNATURES

# Go's golang.org/x/mod/sumdb/note example key and signed note (Ed25519 is deterministic).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSN"
    "XgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "log.example.com/provmark"
ROOT = hashlib.sha256(b"root").digest()


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


LOG_KEY, WITNESS_KEY, OTHER_KEY = _key(1), _key(2), _key(3)
LOG = NoteVerifier.from_public_key(ORIGIN, LOG_KEY.public_key())
WITNESS = NoteVerifier.from_public_key("witness.example", WITNESS_KEY.public_key())


def _checkpoint_note() -> str:
    return Checkpoint(ORIGIN, 42, ROOT, ("ext one",)).sign(ORIGIN, LOG_KEY)


# --- Go known answers ---------------------------------------------------------------


def test_go_example_key_and_signature() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert verifier_key_string("PeterNeumann", key.public_key()) == GO_VKEY
    assert key_id("PeterNeumann", key.public_key()) == 0xC74F20A3
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    verifier = parse_verifier_key(GO_VKEY)
    assert open_note(GO_NOTE, [verifier]) == (GO_TEXT, ["PeterNeumann"])
    assert open_note(GO_NOTE.encode(), [verifier]) == (GO_TEXT, ["PeterNeumann"])


# --- round trips --------------------------------------------------------------------


def test_checkpoint_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT, ("ext one", "ext two"))
    body = cp.body()
    assert body == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\next one\next two\n"
    assert Checkpoint.parse(body) == cp
    note = cp.sign(ORIGIN, LOG_KEY)
    assert open_checkpoint(note, [LOG], origin=ORIGIN) == (cp, [ORIGIN])


def test_verifier_key_round_trip() -> None:
    text = verifier_key_string(ORIGIN, LOG_KEY.public_key())
    assert LOG.key_string() == text
    parsed = parse_verifier_key(text)
    assert (parsed.name, parsed.key_id) == (LOG.name, LOG.key_id)
    assert text.split("+")[1] == f"{LOG.key_id:08x}"


# --- tampering ----------------------------------------------------------------------


def test_every_single_byte_change_fails() -> None:
    note = _checkpoint_note().encode()
    open_note(note, [LOG])
    for i in range(len(note)):
        for mask in (0x01, 0x80):
            bad = note[:i] + bytes([note[i] ^ mask]) + note[i + 1 :]
            with pytest.raises(VerificationError) as err:
                open_note(bad, [LOG])
            assert err.value.check == "checkpoint_signature", (i, mask)


def test_unknown_key() -> None:
    other = NoteVerifier.from_public_key(ORIGIN, OTHER_KEY.public_key())
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(_checkpoint_note(), [other])
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(_checkpoint_note(), [])


def test_known_key_with_bad_signature_rejects_the_note() -> None:
    body, _ = parse_note(_checkpoint_note())
    # A signature line that claims to be the log's key but signs something else.
    forged = sign_note("something else\n", ORIGIN, LOG_KEY).split("\n\n")[1]
    note = add_signature(body + "\n" + forged, "witness.example", WITNESS_KEY)
    with pytest.raises(VerificationError, match=r"invalid signature by log\.example\.com"):
        open_note(note, [LOG, WITNESS])
    short = base64.b64encode(LOG.key_id.to_bytes(4, "big") + b"\x00").decode()
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(f"{body}\n\u2014 {ORIGIN} {short}\n", [LOG])


def test_duplicate_and_ambiguous_verifiers() -> None:
    assert open_note(_checkpoint_note(), [LOG, LOG]) == (
        _checkpoint_note().split("\n\n")[0] + "\n",
        [ORIGIN],
    )
    clash = NoteVerifier(ORIGIN, LOG.key_id, OTHER_KEY.public_key())
    with pytest.raises(ConfigError, match="ambiguous"):
        open_note(_checkpoint_note(), [LOG, clash])


# --- malformed notes ----------------------------------------------------------------


def _malformed_notes() -> dict[str, str]:
    good = _checkpoint_note()
    body, sigblock = good.split("\n\n")
    line = sigblock.rstrip("\n")
    return {
        "no blank line": body + "\n" + sigblock,
        "no signatures": body + "\n\n",
        "no final newline": good[:-1],
        "bad base64": body + "\n\n" + line[:-2] + "!=\n",
        "non-canonical base64": body + "\n\n" + line[:-2] + "B=\n",
        "short signature": body + "\n\n— " + ORIGIN + " AAAAAAA=\n",
        "hyphen instead of em dash": body + "\n\n-" + line[1:] + "\n",
        "no space after dash": body + "\n\n—" + line[2:] + "\n",
        "name with plus": body + "\n\n— a+b " + line.split(" ")[2] + "\n",
        "control character": "\x07" + good,
        "carriage return": good.replace("\n", "\r\n", 1),
        "line too long": "x" * (MAX_LINE_BYTES + 1) + "\n" + good,
        "too many signatures": body + "\n\n" + (line + "\n") * (MAX_SIGNATURES + 1),
        "invalid utf-8": good.encode("utf-8", "surrogateescape").decode() + "\udcff",
    }


@pytest.mark.parametrize("case", sorted(_malformed_notes()))
def test_malformed_notes_are_rejected(case: str) -> None:
    with pytest.raises(VerificationError) as err:
        open_note(_malformed_notes()[case], [LOG])
    assert err.value.check == "checkpoint_signature"


def test_many_duplicate_signatures_up_to_the_cap_are_fine() -> None:
    body, sigblock = _checkpoint_note().split("\n\n")
    assert open_note(body + "\n\n" + sigblock * MAX_SIGNATURES, [LOG])[1] == [ORIGIN]


@pytest.mark.parametrize(
    "body",
    ["no newline", "", "\nleading blank\n", "a\n\nb\n", "tab\there\n", "x" * (MAX_LINE_BYTES + 1)],
)
def test_sign_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(VerificationError):
        sign_note(body, ORIGIN, LOG_KEY)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\t", "nbsp\u00a0"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(ConfigError):
        sign_note("body\n", name, LOG_KEY)
    with pytest.raises(ConfigError):
        verifier_key_string(name, LOG_KEY.public_key())


@pytest.mark.parametrize(
    "text",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key id
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # 7 hex digits
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown alg
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann",
        "",
    ],
)
def test_bad_verifier_keys(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_verifier_key(text)


# --- checkpoint parsing -------------------------------------------------------------


def test_wrong_origin() -> None:
    with pytest.raises(VerificationError, match="origin is") as err:
        open_checkpoint(_checkpoint_note(), [LOG], origin="other.example/log")
    assert err.value.check == "checkpoint"


ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n42\n{ROOT64}",  # no final newline
        f"{ORIGIN}\n42\n",  # too few lines
        f"\n42\n{ROOT64}\n",  # empty origin
        f"{ORIGIN}\n042\n{ROOT64}\n",  # leading zero
        f"{ORIGIN}\n-1\n{ROOT64}\n",
        f"{ORIGIN}\n+1\n{ROOT64}\n",
        f"{ORIGIN}\n4 2\n{ROOT64}\n",
        f"{ORIGIN}\n\u0664\u0662\n{ROOT64}\n",  # non-ASCII digits
        f"{ORIGIN}\n{2**64}\n{ROOT64}\n",
        f"{ORIGIN}\n{'9' * 5000}\n{ROOT64}\n",
        f"{ORIGIN}\n42\n{ROOT64[:-1]}\n",  # bad base64
        f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
        f"{ORIGIN}\n42\n{ROOT64}\n\n",  # empty extension line
        f"{ORIGIN}\n42\n{ROOT64}\nbad\tline\n",
    ],
)
def test_checkpoint_parse_is_strict(body: str) -> None:
    with pytest.raises(VerificationError) as err:
        Checkpoint.parse(body)
    assert err.value.check == "checkpoint"


def test_checkpoint_constructor_validates() -> None:
    assert Checkpoint.parse(f"{ORIGIN}\n0\n{ROOT64}\n").size == 0
    with pytest.raises(ConfigError):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(ConfigError):
        Checkpoint("two\nlines", 1, ROOT)
    with pytest.raises(ConfigError):
        Checkpoint(ORIGIN, 1, ROOT[:20])


# --- cosigning ----------------------------------------------------------------------


def test_cosigning_keeps_both_signatures_valid() -> None:
    note = _checkpoint_note()
    cosigned = add_signature(note, "witness.example", WITNESS_KEY)
    assert cosigned.startswith(note)  # the log's signature line is kept verbatim
    body = note.split("\n\n")[0] + "\n"
    assert open_note(cosigned, [LOG]) == (body, [ORIGIN])
    assert open_note(cosigned, [WITNESS]) == (body, ["witness.example"])
    assert open_note(cosigned, [LOG, WITNESS]) == (body, [ORIGIN, "witness.example"])
    # Cosigning again with the same key replaces the old signature instead of adding one.
    again = add_signature(cosigned, "witness.example", WITNESS_KEY)
    assert len(parse_note(again)[1]) == 2
    assert open_note(again, [LOG, WITNESS])[1] == [ORIGIN, "witness.example"]
    # Tampering with the cosignature breaks the note for a verifier that knows the witness.
    sig_start = cosigned.rindex("— witness.example ") + len("— witness.example ")
    flipped = "A" if cosigned[sig_start + 10] != "A" else "B"
    bad = cosigned[: sig_start + 10] + flipped + cosigned[sig_start + 11 :]
    with pytest.raises(VerificationError):
        open_note(bad, [LOG, WITNESS])
