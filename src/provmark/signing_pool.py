"""Canonicalise and sign batches in a second process, so a second core does that work.

One Python core cannot canonicalise (~13 us), sign (~22 us), build and store
(~25 us) 20,000 records a second: the GIL serialises it. The writer therefore
hands whole batches of unsigned records to one worker process holding a copy of
the (local) record key and stores the previous batch while the next is signed.

The worker is ``python -m provmark.signing_worker``, started with :mod:`subprocess`
rather than :mod:`multiprocessing`: a spawned multiprocessing child re-imports the
user's ``__main__`` module, which would run a script without an
``if __name__ == "__main__"`` guard a second time. The key travels over the pipe,
never through argv or the environment. Messages are length-prefixed pickles between
this process and a child it started itself.

Only a :class:`~provmark.crypto.keys.LocalSigner` can be shipped to a worker; an
HSM or KMS signer signs in-process as before.
"""

from __future__ import annotations

import base64
import contextlib
import pickle
import queue
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from cryptography.hazmat.primitives import serialization

from .canonical import canonical_bytes
from .crypto.keys import LocalSigner, Signer
from .errors import ProvmarkError

Signed = tuple[bytes, str] | tuple[None, str]
"""(payload, base64 signature) or (None, error text) for a record that failed."""

_HEADER = struct.Struct(">Q")


def sign_here(drafts: list[dict[str, Any]], signer: Signer) -> list[Signed]:
    """Canonical payload and signature of each unsigned record, in this process."""
    out: list[Signed] = []
    for draft in drafts:
        try:
            payload = canonical_bytes(draft)
            out.append((payload, base64.b64encode(signer.sign(payload)).decode()))
        except Exception as exc:  # reported per record by the writer, never dropped silently
            out.append((None, repr(exc)))
    return out


def send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the signing process closed its pipe")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the signing process closed its pipe mid-message")
    return pickle.loads(data)


class Pending:
    """One batch being signed; :meth:`result` waits for it (in submission order)."""

    def __init__(self, pool: SigningPool) -> None:
        self._pool = pool
        self._value: list[Signed] | None = None

    def result(self) -> list[Signed]:
        if self._value is None:
            self._value = self._pool._next_result()
        return self._value


class SigningPool:
    """One worker process that signs batches with a copy of a local key."""

    def __init__(self, signer: LocalSigner) -> None:
        pem = signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key_id = signer.key_id
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "provmark.signing_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        # A feeder thread writes requests, so a large request never blocks on a child
        # that is itself blocked writing the previous result.
        self._requests: queue.Queue[Any] = queue.Queue()
        self._feeder = threading.Thread(
            target=self._feed, name="provmark-signing-feed", daemon=True
        )
        self._feeder.start()
        self._requests.put(pem)

    def _feed(self) -> None:
        while True:
            item = self._requests.get()
            if item is None:
                break
            try:
                send(self._stdin, item)
            except (OSError, ValueError):
                break
        with contextlib.suppress(OSError):
            self._stdin.close()

    def submit(self, drafts: list[dict[str, Any]]) -> Pending:
        if self._proc.poll() is not None:
            raise ProvmarkError(f"the signing process exited with {self._proc.returncode}")
        self._requests.put(drafts)
        return Pending(self)

    def _next_result(self) -> list[Signed]:
        try:
            result: list[Signed] = receive(self._stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise ProvmarkError(f"the signing process failed: {exc}") from None
        return result

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        self._requests.put(None)
        self._feeder.join(timeout=5)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stdout.close()

    @staticmethod
    def supports(signer: Signer) -> bool:
        return isinstance(signer, LocalSigner)
