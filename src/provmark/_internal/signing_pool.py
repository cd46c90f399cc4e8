"""Sign batches in a second process, so a second core does that work.

One Python core cannot canonicalise, sign (~22-31 us of Ed25519 each), build and
store 20,000 records a second: the GIL serialises it. The writer therefore
canonicalises each batch itself (orjson: a few us a record) and hands the payload
bytes to one worker process holding a copy of the (local) record key, and stores
the previous batch while the next is signed. Only bytes cross the pipe: pickling
the records themselves would cost more than canonicalising them.

The worker is ``python -m provmark._internal.signing_worker``, started with :mod:`subprocess`
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

from ..canonical import canonical_bytes
from ..crypto.keys import LocalSigner, Signer
from ..errors import ProvmarkError

Signed = tuple[bytes, str] | tuple[None, str]
"""(payload, base64 signature) or (None, error text) for a record that failed."""

_HEADER = struct.Struct(">Q")
# Sent with the key: a worker of another provmark version (the package was upgraded
# under a running process) refuses it, and the writer signs in-process instead.
PROTOCOL = "provmark-signing/2"


def payloads(drafts: list[dict[str, Any]]) -> list[bytes | str]:
    """The canonical payload of each unsigned record, or the error text for one that
    cannot be encoded (reported per record by the writer, never dropped silently)."""
    out: list[bytes | str] = []
    for draft in drafts:
        try:
            out.append(canonical_bytes(draft))
        except Exception as exc:
            out.append(repr(exc))
    return out


def sign_payloads(items: list[bytes | str], signer: Signer) -> list[str | None]:
    """Base64 signature of each payload (None where there is only an error text)."""
    return [
        base64.b64encode(signer.sign(item)).decode() if isinstance(item, bytes) else None
        for item in items
    ]


def signed(items: list[bytes | str], sigs: list[str | None]) -> list[Signed]:
    return [
        (item, sig) if isinstance(item, bytes) and sig is not None else (None, str(item))
        for item, sig in zip(items, sigs, strict=True)
    ]


def sign_here(drafts: list[dict[str, Any]], signer: Signer) -> list[Signed]:
    """Canonical payload and signature of each unsigned record, in this process; a record
    that cannot be encoded or signed is reported alone, the others are signed."""
    out: list[Signed] = []
    for item in payloads(drafts):
        if isinstance(item, str):
            out.append((None, item))
            continue
        try:
            out.append((item, base64.b64encode(signer.sign(item)).decode()))
        except Exception as exc:
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

    def __init__(self, pool: SigningPool, items: list[bytes | str]) -> None:
        self._pool = pool
        self._items = items
        self._value: list[Signed] | None = None

    def result(self) -> list[Signed]:
        if self._value is None:
            self._value = signed(self._items, self._pool._next_result())
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
            [sys.executable, "-m", "provmark._internal.signing_worker"],
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
        self._requests.put((PROTOCOL, pem))

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
        """Canonicalise ``drafts`` here and queue their payloads for signing."""
        if self._proc.poll() is not None:
            raise ProvmarkError(f"the signing process exited with {self._proc.returncode}")
        items = payloads(drafts)
        self._requests.put(items)
        return Pending(self, items)

    def _next_result(self) -> list[str | None]:
        try:
            result: list[str | None] | str = receive(self._stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise ProvmarkError(f"the signing process failed: {exc}") from None
        if isinstance(result, str):
            raise ProvmarkError(f"the signing process failed: {result}")
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
