"""The signing process of :mod:`.signing_pool`: ``python -m provmark._internal.signing_worker``.

It reads the record key, then batches of canonical payloads (bytes, or an error text
for a record the writer could not encode), from standard input and writes their
base64 signatures (None for an error text) to standard output.
"""

from __future__ import annotations

import sys
from typing import IO

from ..crypto.keys import LocalSigner
from ..crypto.keystore import load_private_key
from .signing_pool import PROTOCOL, receive, send, sign_payloads


def work(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    hello = receive(stdin)
    if not (isinstance(hello, tuple) and len(hello) == 2 and hello[0] == PROTOCOL):
        sys.exit(f"provmark signing worker: expected protocol {PROTOCOL}; versions differ")
    signer = LocalSigner(load_private_key(hello[1], "signing pool"))
    while True:
        try:
            items = receive(stdin)
        except EOFError:
            return
        try:
            send(stdout, sign_payloads(items, signer))
        except Exception as exc:  # the writer signs this batch in-process instead
            send(stdout, repr(exc))


if __name__ == "__main__":
    work(sys.stdin.buffer, sys.stdout.buffer)
