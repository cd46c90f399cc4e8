"""The remote client's journal: records the server has not acknowledged, fsync'd.

One file per process (``<n>.jsonl`` in a directory per server URL), held under an
exclusive ``flock``; a process that opens the directory adopts the files of
processes that died (their locks are free), so their records are sent too.

The records still hold what the application captured (prompts with e-mail
addresses, card numbers, keys: the server redacts and seals them, and keeps the
originals for auditors), so nothing is written in clear: each line is sealed with
AES-256-GCM under the ``remote-journal`` secret of the key store
(``$PROVMARK_HOME/keys/remote-journal.secret``, mode 0600), and the directory and its
files are 0700/0600. A file with lines in clear, left by an older version, is sealed
into a new file when the journal is opened, and then removed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto.keystore import FileKeyStore, default_home
from ..errors import KeyStoreError

SECRET_NAME = "remote-journal"
_SEALED = b"s1:"  # a sealed line: s1:base64(nonce(12) || AES-GCM(json line) || tag)
_AAD = b"provmark/remote-journal/v1"


def journal_key(home: Path | None = None) -> bytes:
    """The 32-byte key that seals journal lines (created on first use, mode 0600)."""
    return FileKeyStore((home or default_home()) / "keys").secret(SECRET_NAME)


class Journal:
    """JSON lines of records not yet acknowledged, fsync'd once per append."""

    def __init__(self, directory: Path, key: bytes | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._aead = AESGCM(key if key is not None else journal_key())
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self.path = directory / "0.jsonl"
        slots = sorted(
            (p for p in directory.glob("*.jsonl") if p.stem.isdigit()), key=lambda p: int(p.stem)
        )
        n = int(slots[-1].stem) + 1 if slots else 0
        for path in slots:
            fh = _lock_slot(path, create=False)
            if fh is None:
                continue
            data = _complete_lines(fh.read())  # drop a torn last line
            sealed = self._sealed(data)
            if self._fh is None and sealed == data:
                self._fh, self.path = fh, path
                fh.truncate(len(data))
                continue
            # an orphan of a process that died, or lines in clear left by an older
            # version: copy them (sealed) into this process's slot, then remove the file
            while self._fh is None:
                self.path = directory / f"{n}.jsonl"
                self._fh = _lock_slot(self.path, create=True)
                n += 1
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(sealed)
            self._fh.flush()
            os.fdatasync(self._fh.fileno())  # safe on disk before the original goes
            path.unlink()
            fh.close()
        while self._fh is None:
            self.path = directory / f"{n}.jsonl"
            self._fh = _lock_slot(self.path, create=True)
            n += 1
        self._fh.flush()
        os.fdatasync(self._fh.fileno())
        try:
            self.count = len(self.read())
        except BaseException:
            self._fh.close()
            raise

    def _sealed(self, data: bytes) -> bytes:
        """``data`` with every line in clear sealed (sealed lines are kept as they are)."""
        if all(line.startswith(_SEALED) for line in data.splitlines() if line.strip()):
            return data
        return b"".join(
            (line if line.startswith(_SEALED) else self._seal(json.loads(line))) + b"\n"
            for line in data.splitlines()
            if line.strip()
        )

    def _seal(self, draft: dict[str, Any]) -> bytes:
        nonce = os.urandom(12)
        plain = json.dumps(draft, separators=(",", ":")).encode()
        return _SEALED + base64.b64encode(nonce + self._aead.encrypt(nonce, plain, _AAD))

    def _open(self, line: bytes) -> Any:
        if not line.startswith(_SEALED):
            return json.loads(line)  # written in clear by an older version
        raw = base64.b64decode(line[len(_SEALED) :])
        try:
            return json.loads(self._aead.decrypt(raw[:12], raw[12:], _AAD))
        except InvalidTag:
            raise KeyStoreError(
                f"{self.path}: a journal line does not open with this key store's "
                f"{SECRET_NAME!r} secret (was PROVMARK_HOME changed?)"
            ) from None

    def append(self, drafts: Sequence[dict[str, Any]]) -> None:
        data = b"".join(self._seal(d) + b"\n" for d in drafts)
        with self._lock:
            assert self._fh is not None
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(data)
            self._fh.flush()
            os.fdatasync(self._fh.fileno())
            self.count += len(drafts)

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            assert self._fh is not None
            self._fh.seek(0)
            raw = _complete_lines(self._fh.read())
        return [self._open(line) for line in raw.splitlines() if line.strip()]

    def clear(self) -> None:
        with self._lock:
            assert self._fh is not None
            self._fh.truncate(0)
            self._fh.flush()
            os.fdatasync(self._fh.fileno())
            self.count = 0

    def close(self) -> None:
        with self._lock:
            if self._fh is None:
                return
            if self.count == 0:
                self.path.unlink(missing_ok=True)  # still locked: nobody else is using it
            self._fh.close()
            self._fh = None


def _lock_slot(path: Path, *, create: bool) -> IO[bytes] | None:
    """The slot file, exclusively locked by this process, or None when another holds it."""
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_APPEND if create else 0), 0o600)
    except FileNotFoundError:
        return None
    fh = os.fdopen(fd, "ab+" if create else "rb+")
    os.fchmod(fd, 0o600)  # also a file left 0644 by an older version
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino:
            raise OSError("the slot was replaced")  # adopted and removed meanwhile
    except OSError:
        fh.close()
        return None
    return fh


def _complete_lines(data: bytes) -> bytes:
    """Whole lines only: a torn last line (crash mid-write) was never acknowledged."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""
