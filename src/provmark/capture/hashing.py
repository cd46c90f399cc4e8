"""How an output becomes the bytes whose SHA-256 is recorded.

The rules (also in docs/hashing.md), in order:

1. ``str``: its UTF-8 bytes (no normalisation, no trailing newline added).
2. ``bytes``/``bytearray``/``memoryview``: the bytes as they are.
3. ``os.PathLike`` (``pathlib.Path``): the file's contents, read in chunks.
4. a file-like object with ``read``: its contents from the current position;
   seekable streams are rewound to that position afterwards.
5. an object whose type has an encoder registered with ``Encoders.register``:
   the bytes that encoder returns.
6. ``dict``/``list``/numbers/``bool``/``None``: RFC 8785 canonical JSON.

Streamed outputs (generators) are hashed chunk by chunk: the digest equals the
digest of the concatenated chunks under the same rule (all ``str`` or all ``bytes``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..canonical import canonical_bytes
from ..errors import CanonicalizationError, CaptureError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int
    media_type: str | None


class Encoders:
    """Per-instance registry of output encoders (type -> bytes)."""

    def __init__(self) -> None:
        self._by_type: dict[type, tuple[Callable[[Any], bytes], str | None]] = {}

    def register(
        self, cls: type, encoder: Callable[[Any], bytes], media_type: str | None = None
    ) -> None:
        self._by_type[cls] = (encoder, media_type)

    def find(self, value: Any) -> tuple[Callable[[Any], bytes], str | None] | None:
        for cls in type(value).__mro__:
            found = self._by_type.get(cls)
            if found is not None:
                return found
        return None


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise CaptureError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    return h.hexdigest(), size


def digest_output(value: Any, encoders: Encoders | None = None) -> Digest:
    """The digest of an output under the rules in the module doc."""
    if isinstance(value, str):
        data = value.encode("utf-8", errors="surrogatepass")
        return Digest(hashlib.sha256(data).hexdigest(), len(data), "text/plain; charset=utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return Digest(hashlib.sha256(data).hexdigest(), len(data), "application/octet-stream")
    if isinstance(value, os.PathLike):
        sha, size = hash_file(value)
        media = mimetypes.guess_type(os.fspath(value))[0] or "application/octet-stream"
        return Digest(sha, size, media)
    if hasattr(value, "read") and callable(value.read):
        return _digest_stream(value)
    if encoders is not None:
        found = encoders.find(value)
        if found is not None:
            encoder, registered_media = found
            data = encoder(value)
            if not isinstance(data, bytes):
                raise CaptureError(f"the encoder for {type(value).__name__} must return bytes")
            return Digest(hashlib.sha256(data).hexdigest(), len(data), registered_media)
    try:
        data = canonical_bytes(value)
    except CanonicalizationError as exc:
        raise CaptureError(
            f"cannot hash an output of type {type(value).__name__}: register an encoder "
            f"with pm.encoders.register({type(value).__name__}, fn) ({exc.reason})"
        ) from None
    return Digest(hashlib.sha256(data).hexdigest(), len(data), "application/json")


def _digest_stream(stream: Any) -> Digest:
    start = None
    seekable = getattr(stream, "seekable", lambda: False)()
    if seekable:
        start = stream.tell()
    h = hashlib.sha256()
    size = 0
    text = None
    while chunk := stream.read(CHUNK):
        if isinstance(chunk, str):
            text = True
            chunk = chunk.encode("utf-8")
        h.update(chunk)
        size += len(chunk)
    if start is not None:
        stream.seek(start)
    media = "text/plain; charset=utf-8" if text else "application/octet-stream"
    return Digest(h.hexdigest(), size, media)


class StreamHasher:
    """Incremental digest of a streamed output (all ``str`` or all ``bytes`` chunks)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0
        self._kind: type | None = None

    def update(self, chunk: Any) -> None:
        if isinstance(chunk, str):
            data = chunk.encode("utf-8", errors="surrogatepass")
            kind: type = str
        elif isinstance(chunk, bytes | bytearray | memoryview):
            data = bytes(chunk)
            kind = bytes
        else:
            raise CaptureError(f"streamed chunks must be str or bytes, got {type(chunk).__name__}")
        if self._kind is not None and kind is not self._kind:
            raise CaptureError("a stream mixed str and bytes chunks; its hash would be ambiguous")
        self._kind = kind
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        media = "text/plain; charset=utf-8" if self._kind is str else "application/octet-stream"
        return Digest(self._h.hexdigest(), self.size, media)
