"""Interop with Go's reference golang.org/x/mod/sumdb/{note,tlog}.

Needs ``go`` and the Go sources of golang.org/x/mod (Debian: golang-go and
golang-golang-x-mod-dev). The program is built offline in GOPATH mode; set
``PROVMARK_GOPATH`` if the sources are not under /usr/share/gocode.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provmark.log import (
    Checkpoint,
    CompactRange,
    MemoryNodeStore,
    add_signature,
    consistency_proof,
    inclusion_proof,
    key_id,
    leaf_hash,
    open_note,
    parse_verifier_key,
    root_at,
    verifier_key_string,
)

GO_SRC = Path(__file__).parent / "go_interop"
GOPATH = os.environ.get("PROVMARK_GOPATH", "/usr/share/gocode")
ORIGIN = "log.example.com/provmark"
WITNESS = "witness.example.com"
N = 777
ENTRIES = [b"provmark entry %d" % i for i in range(N)]


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _skey(name: str, key: Ed25519PrivateKey) -> str:
    """Go's note signer-key encoding of an Ed25519 private key."""
    encoded = _b64(bytes([1]) + key.private_bytes_raw())
    return f"PRIVATE+KEY+{name}+{key_id(name, key.public_key()):08x}+{encoded}"


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "Go toolchain not installed (apt-get install golang-go golang-golang-x-mod-dev)"
        )
    out = tmp_path_factory.mktemp("go_interop")
    env = {
        **os.environ,
        "GOPATH": GOPATH,
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(out / "gocache"),
    }
    built = subprocess.run(
        [go, "build", "-o", str(out / "interop"), "."],
        cwd=GO_SRC,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, (
        f"go build failed; golang.org/x/mod must be under {GOPATH}/src "
        f"(Debian package golang-golang-x-mod-dev):\n{built.stderr}"
    )
    return out / "interop"


def _run(binary: Path, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary)], input=json.dumps(doc), capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def artefacts() -> dict[str, Any]:
    log_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cr = CompactRange()
    store = MemoryNodeStore()
    store.put(cr.extend(leaf_hash(e) for e in ENTRIES))
    note = Checkpoint(ORIGIN, N, cr.root(), ("provmark extension line",)).sign(ORIGIN, log_key)
    inclusion = [
        {
            "leaf": _b64(leaf_hash(ENTRIES[i])),
            "index": i,
            "size": size,
            "root": _b64(root_at(size, store)),
            "proof": [_b64(h) for h in inclusion_proof(i, size, store)],
        }
        for size in (1, 2, 3, 7, 8, 9, 255, 256, 257, 512, 776, N)
        for i in sorted({0, 1, size // 3, size // 2, size - 2, size - 1})
        if 0 <= i < size
    ] + [
        {
            "leaf": _b64(leaf_hash(ENTRIES[i])),
            "index": i,
            "size": N,
            "root": _b64(cr.root()),
            "proof": [_b64(h) for h in inclusion_proof(i, N, store)],
        }
        for i in range(N)
    ]
    consistency = [
        {
            "old_size": old,
            "new_size": new,
            "old_root": _b64(root_at(old, store)),
            "new_root": _b64(root_at(new, store)),
            "proof": [_b64(h) for h in consistency_proof(old, new, store)],
        }
        for new in (1, 2, 3, 4, 5, 8, 100, 256, 257, 500, N)
        for old in range(1, new + 1)
    ]
    return {
        "log_key": log_key,
        "doc": {
            "verifier_keys": [verifier_key_string(ORIGIN, log_key.public_key())],
            "note": note,
            "origin": ORIGIN,
            "expect_signers": [ORIGIN],
            "leaves": [_b64(e) for e in ENTRIES],
            "inclusion": inclusion,
            "consistency": consistency,
        },
    }


def test_go_accepts_our_checkpoint_and_proofs(interop: Path, artefacts: dict[str, Any]) -> None:
    doc = artefacts["doc"]
    result = _run(interop, doc)
    assert result.returncode == 0, result.stderr
    checked = json.loads(result.stdout)["checked"]
    assert checked == 1 + len(doc["inclusion"]) + len(doc["consistency"])


def test_go_accepts_our_cosigned_checkpoint(interop: Path, artefacts: dict[str, Any]) -> None:
    witness = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    doc = {
        **artefacts["doc"],
        "note": add_signature(artefacts["doc"]["note"], WITNESS, witness),
        "verifier_keys": [
            *artefacts["doc"]["verifier_keys"],
            verifier_key_string(WITNESS, witness.public_key()),
        ],
        "expect_signers": [ORIGIN, WITNESS],
        "leaves": [],
        "inclusion": [],
        "consistency": [],
    }
    result = _run(interop, doc)
    assert result.returncode == 0, result.stderr


def test_we_accept_go_signatures_and_cosignatures(interop: Path, artefacts: dict[str, Any]) -> None:
    witness = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
    doc = artefacts["doc"]
    body = doc["note"].split("\n\n")[0] + "\n"
    result = _run(
        interop,
        {
            **doc,
            "leaves": [],
            "inclusion": [],
            "consistency": [],
            "signer_key": _skey(WITNESS, witness),
            "sign_text": body,
        },
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    log_v = parse_verifier_key(doc["verifier_keys"][0])
    witness_v = parse_verifier_key(verifier_key_string(WITNESS, witness.public_key()))
    assert open_note(out["go_signed"], [witness_v]) == (body, [WITNESS])
    # Ed25519 is deterministic: Go's cosigned note is byte-identical to ours.
    assert out["go_cosigned"] == add_signature(doc["note"], WITNESS, witness)
    assert open_note(out["go_cosigned"], [log_v, witness_v]) == (body, [ORIGIN, WITNESS])


def _flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 0x01
    return _b64(bytes(raw))


def _only(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    # Without the raw leaves Go does not rebuild the tree: only its verifiers judge.
    return {**doc, "leaves": [], "inclusion": [], "consistency": [], **changes}


def test_go_rejects_tampered_artefacts(interop: Path, artefacts: dict[str, Any]) -> None:
    doc = artefacts["doc"]
    incl = dict(doc["inclusion"][-400])
    assert len(incl["proof"]) > 3
    incl["proof"] = [*incl["proof"]]
    incl["proof"][2] = _flip_b64(incl["proof"][2])
    cons = dict(doc["consistency"][-300])
    cons["proof"] = [*cons["proof"]]
    cons["proof"][0] = _flip_b64(cons["proof"][0])
    wrong_leaf = {**doc["inclusion"][-1], "leaf": doc["inclusion"][-2]["leaf"]}
    sig_at = doc["note"].rindex(" ") + 10
    bad_note = doc["note"][:sig_at] + ("A" if doc["note"][sig_at] != "A" else "B")
    bad_note += doc["note"][sig_at + 1 :]
    cases = [
        ("tlog.CheckRecord", _only(doc, inclusion=[doc["inclusion"][0], incl])),
        ("tlog.CheckRecord", _only(doc, inclusion=[wrong_leaf])),
        ("tlog.CheckTree", _only(doc, consistency=[cons])),
        ("note.Open", _only(doc, note=bad_note)),
        ("note.Open", _only(doc, note=doc["note"].replace(f"\n{N}\n", f"\n{N + 1}\n", 1))),
    ]
    # Sanity: the untampered reduced documents pass.
    assert _run(interop, _only(doc, inclusion=[doc["inclusion"][0]])).returncode == 0
    for expected, case in cases:
        result = _run(interop, case)
        assert result.returncode == 1, (expected, result.stdout)
        assert expected in result.stderr, result.stderr
