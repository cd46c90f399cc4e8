"""Canonicalise and sign batches in a second process, so a second core does that work.

One Python core cannot canonicalise (~13 us), sign (~22 us), build and store
(~25 us) 20,000 records a second: the GIL serialises it. The writer therefore
hands whole batches of unsigned records to one worker process holding a copy of
the (local) record key and stores the previous batch while the next is signed.

Only a :class:`~provmark.crypto.keys.LocalSigner` can be shipped to a worker; an
HSM or KMS signer signs in-process as before.
"""

from __future__ import annotations

import base64
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from cryptography.hazmat.primitives import serialization

from .canonical import canonical_bytes
from .crypto.keys import LocalSigner, Signer

Signed = tuple[bytes, str] | tuple[None, str]
"""(payload, base64 signature) or (None, error text) for a record that failed."""

# The worker process's signer, set once by its initializer (one key per worker process).
_worker_signer: list[LocalSigner] = []


def _init_worker(pem: bytes) -> None:
    from .crypto.keystore import load_private_key

    _worker_signer.append(LocalSigner(load_private_key(pem, "signing pool")))


def sign_batch(drafts: list[dict[str, Any]]) -> list[Signed]:
    """In the worker: canonical payload and signature of each unsigned record."""
    return sign_here(drafts, _worker_signer[0])


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


class SigningPool:
    """One worker process that signs batches with a copy of a local key."""

    def __init__(self, signer: LocalSigner) -> None:
        pem = signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.key_id = signer.key_id
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(pem,),
        )

    def submit(self, drafts: list[dict[str, Any]]) -> Future[list[Signed]]:
        return self._executor.submit(sign_batch, drafts)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

    @staticmethod
    def supports(signer: Signer) -> bool:
        return isinstance(signer, LocalSigner)
