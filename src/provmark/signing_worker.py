"""The signing process of :mod:`provmark.signing_pool`: ``python -m provmark.signing_worker``.

It reads the record key, then batches of unsigned records, from standard input and
writes their canonical payloads and signatures to standard output.
"""

from __future__ import annotations

import sys
from typing import IO

from .crypto.keys import LocalSigner
from .crypto.keystore import load_private_key
from .signing_pool import receive, send, sign_here


def work(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    signer = LocalSigner(load_private_key(receive(stdin), "signing pool"))
    while True:
        try:
            drafts = receive(stdin)
        except EOFError:
            return
        send(stdout, sign_here(drafts, signer))


if __name__ == "__main__":
    work(sys.stdin.buffer, sys.stdout.buffer)
