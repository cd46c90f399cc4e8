"""An independent witness: its own key, its own state, cosigns only consistent checkpoints.

A witness lives in a folder of its own::

    witness.pem     its Ed25519 private key (mode 0600)
    config.json     {"name": ..., "logs": {origin: [log verifier keys]}}
    state.db        SQLite: the latest cosigned checkpoint per origin, refusals kept as evidence

:meth:`Witness.add_checkpoint` implements the checks of C2SP tlog-witness
``add-checkpoint``; each refusal is a :class:`WitnessRefusal` carrying the HTTP status
the protocol prescribes. Checking the old size and storing the new checkpoint happen
in one ``BEGIN IMMEDIATE`` transaction, so two requests (or two witness processes on
the same folder) can never roll the witness's view back.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ConfigError, KeyStoreError, ProvmarkError, VerificationError
from ..log.merkle import EMPTY_ROOT, verify_consistency
from ..log.note import Checkpoint, NoteVerifier, open_note, parse_note, parse_verifier_key
from .cosignature import CosignerKey, cosign

__all__ = ["MAX_PROOF_LINES", "Witness", "WitnessRefusal", "WitnessState"]

MAX_PROOF_LINES = 63

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    old_size INTEGER NOT NULL,
    proof TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL
);
"""


class WitnessRefusal(ProvmarkError):
    """The witness will not cosign; ``status`` is the tlog-witness HTTP status code.

    For 409 (old size mismatch) ``size`` is the size of the latest cosigned checkpoint.
    """

    def __init__(self, status: int, reason: str, size: int | None = None) -> None:
        self.status = status
        self.reason = reason
        self.size = size
        super().__init__(f"witness refused ({status}): {reason}")


@dataclass(frozen=True)
class WitnessState:
    """The latest checkpoint a witness cosigned for one log."""

    origin: str
    size: int
    root: bytes
    note: str
    cosigned_at: int


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class Witness:
    """A witness over a folder: ``Witness.create(dir, name)`` once, then ``Witness(dir)``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        config_path = self.directory / "config.json"
        try:
            config = json.loads(config_path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"{self.directory} is not a witness folder (no config.json): "
                "run `provmark witness init` first"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{config_path}: unreadable witness config ({exc})") from None
        self.name: str = config["name"]
        self._logs: dict[str, list[NoteVerifier]] = {
            origin: [parse_verifier_key(k) for k in keys]
            for origin, keys in config.get("logs", {}).items()
        }
        key_path = self.directory / "witness.pem"
        if key_path.stat().st_mode & 0o077:
            raise KeyStoreError(f"{key_path}: private key is readable by others; chmod 600 it")
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{key_path}: a witness key must be Ed25519")
        self._key = key
        self.key = CosignerKey.from_public_key(self.name, key.public_key())
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.directory / "state.db", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def create(cls, directory: str | Path, name: str) -> Witness:
        """Make a new witness folder with a fresh Ed25519 key."""
        folder = Path(directory)
        if (folder / "config.json").exists():
            raise ConfigError(f"{folder} already holds a witness")
        CosignerKey.from_public_key(name, Ed25519PrivateKey.generate().public_key())  # check
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(folder / "witness.pem", pem)
        (folder / "config.json").write_text(json.dumps({"name": name, "logs": {}}, indent=2))
        return cls(folder)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Witness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Witness({self.name!r}, {str(self.directory)!r})"

    # ------------------------------------------------------------ configuration
    @property
    def logs(self) -> dict[str, list[str]]:
        return {o: [k.key_string() for k in keys] for o, keys in self._logs.items()}

    def add_log(self, log_key: str) -> str:
        """Trust a log's note verifier key for its origin (the key's name); return the origin."""
        verifier = parse_verifier_key(log_key.strip())
        keys = self._logs.setdefault(verifier.name, [])
        if all(k.key_string() != verifier.key_string() for k in keys):
            keys.append(verifier)
        path = self.directory / "config.json"
        config = json.loads(path.read_text())
        config["logs"] = self.logs
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2))
        os.replace(tmp, path)
        return verifier.name

    # ------------------------------------------------------------ state
    def state(self, origin: str) -> WitnessState | None:
        row = self._db.execute(
            "SELECT size, root, note, cosigned_at FROM checkpoints WHERE origin = ?", (origin,)
        ).fetchone()
        return WitnessState(origin, row[0], row[1], row[2], row[3]) if row else None

    def refusals(self, origin: str | None = None) -> list[dict[str, Any]]:
        """Refused checkpoints that carried a valid log signature: evidence of misbehaviour."""
        sql = "SELECT origin, status, reason, old_size, note, at FROM refusals"
        rows = self._db.execute(
            sql + (" WHERE origin = ? ORDER BY id" if origin else " ORDER BY id"),
            (origin,) if origin else (),
        ).fetchall()
        keys = ("origin", "status", "reason", "old_size", "note", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # ------------------------------------------------------------ add-checkpoint
    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note: str) -> str:
        """Check a checkpoint against this witness's view; return its cosignature line(s)."""
        try:
            body, _ = parse_note(note)
            checkpoint = Checkpoint.parse(body)
        except VerificationError as exc:
            raise WitnessRefusal(400, f"malformed checkpoint: {exc.detail}") from None
        verifiers = self._logs.get(checkpoint.origin)
        if not verifiers:
            raise WitnessRefusal(404, f"unknown log origin {checkpoint.origin!r}")
        try:
            open_note(note, verifiers)
        except VerificationError as exc:
            detail = exc.detail
            raise WitnessRefusal(403, f"checkpoint not signed by the log's key: {detail}") from None
        if old_size < 0 or old_size > checkpoint.size:
            raise WitnessRefusal(
                400, f"old size {old_size} is larger than the checkpoint size {checkpoint.size}"
            )
        if len(proof) > MAX_PROOF_LINES:
            raise WitnessRefusal(400, f"{len(proof)} proof lines, at most {MAX_PROOF_LINES}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                line = self._check_and_store(old_size, proof, note, body, checkpoint)
            except WitnessRefusal as refusal:
                self._db.execute("COMMIT")  # keeps the evidence row written by _refuse
                raise refusal from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return line

    def _check_and_store(
        self, old_size: int, proof: Sequence[bytes], note: str, body: str, cp: Checkpoint
    ) -> str:
        current = self.state(cp.origin)
        size, root = (current.size, current.root) if current else (0, EMPTY_ROOT)
        if old_size != size:
            raise WitnessRefusal(
                409, f"old size {old_size} is not the latest cosigned size {size}", size
            )
        if old_size == cp.size:
            if cp.root_hash != root:
                self._refuse(cp, 409, "same tree size, different root hash", old_size, proof, note)
            if proof:
                self._refuse(cp, 422, "a proof between equal sizes must be empty", 0, proof, note)
        elif old_size == 0:
            if proof:
                self._refuse(cp, 422, "the proof from size 0 must be empty", 0, proof, note)
        else:
            try:
                verify_consistency(old_size, cp.size, root, cp.root_hash, proof)
            except VerificationError as exc:
                self._refuse(
                    cp,
                    422,
                    f"not consistent with size {old_size}: {exc.detail}",
                    old_size,
                    proof,
                    note,
                )
        now = int(time.time())
        self._db.execute(
            "INSERT INTO checkpoints (origin, size, root, note, cosigned_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note, cosigned_at = excluded.cosigned_at",
            (cp.origin, cp.size, cp.root_hash, note, now),
        )
        return cosign(body, self.name, self._key, now).line()

    def _refuse(
        self, cp: Checkpoint, status: int, reason: str, old: int, proof: Sequence[bytes], note: str
    ) -> None:
        self._db.execute(
            "INSERT INTO refusals (origin, status, reason, old_size, proof, note, at) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                cp.origin,
                status,
                reason,
                old,
                "\n".join(base64.b64encode(p).decode() for p in proof),
                note,
                int(time.time()),
            ),
        )
        raise WitnessRefusal(status, reason)
