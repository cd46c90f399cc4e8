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
from dataclasses import dataclass, field
from typing import Any

from ..canonical import canonical_bytes
from ..errors import CanonicalizationError, CaptureError

CHUNK = 1 << 20
STREAM_TEXT_KEPT = 1 << 20  # streamed text up to this size is kept for fingerprints


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int
    media_type: str | None
    text: str | None = field(default=None, repr=False)  # a streamed text, for fingerprints


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


def sniff_media_type(head: bytes) -> str | None:
    """The media type of well-known binary formats from their first bytes (magic numbers)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        return "video/mp4"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def operation_for(media_type: str | None) -> str:
    """The operation name of a capture that did not declare one, from what it made."""
    kind = (media_type or "").split("/", 1)[0]
    return {
        "image": "image_generation",
        "audio": "audio_generation",
        "video": "video_generation",
    }.get(kind, "text_completion")


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
        media = sniff_media_type(data[:16]) or "application/octet-stream"
        return Digest(hashlib.sha256(data).hexdigest(), len(data), media)
    if isinstance(value, os.PathLike):
        sha, size = hash_file(value)
        media = mimetypes.guess_type(os.fspath(value))[0] or _sniff_file(value)
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


def _sniff_file(path: os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return "application/octet-stream"
    return sniff_media_type(head) or "application/octet-stream"


def _digest_stream(stream: Any) -> Digest:
    start = None
    seekable = getattr(stream, "seekable", lambda: False)()
    if seekable:
        start = stream.tell()
    h = hashlib.sha256()
    size = 0
    text = None
    head = b""
    while chunk := stream.read(CHUNK):
        if isinstance(chunk, str):
            text = True
            chunk = chunk.encode("utf-8")
        if not head:
            head = chunk[:16]
        h.update(chunk)
        size += len(chunk)
    if start is not None:
        stream.seek(start)
    media = "text/plain; charset=utf-8" if text else None
    return Digest(
        h.hexdigest(), size, media or sniff_media_type(head) or "application/octet-stream"
    )


class StreamHasher:
    """Incremental digest of a streamed output (all ``str`` or all ``bytes`` chunks)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0
        self._kind: type | None = None
        self._head = b""
        self._text: list[str] | None = []  # str chunks kept for soft-binding fingerprints

    def update(self, chunk: Any) -> None:
        if isinstance(chunk, str):
            data = chunk.encode("utf-8", errors="surrogatepass")
            kind: type = str
            if self._text is not None:
                self._text.append(chunk)
                if self.size > STREAM_TEXT_KEPT:
                    self._text = None  # too long to keep: not fingerprinted
        elif isinstance(chunk, bytes | bytearray | memoryview):
            data = bytes(chunk)
            kind = bytes
        else:
            raise CaptureError(f"streamed chunks must be str or bytes, got {type(chunk).__name__}")
        if self._kind is not None and kind is not self._kind:
            raise CaptureError("a stream mixed str and bytes chunks; its hash would be ambiguous")
        self._kind = kind
        if len(self._head) < 16:
            self._head += data[: 16 - len(self._head)]
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        if self._kind is str:
            text = "".join(self._text) if self._text is not None else None
            return Digest(self._h.hexdigest(), self.size, "text/plain; charset=utf-8", text)
        media = sniff_media_type(self._head) or "application/octet-stream"
        return Digest(self._h.hexdigest(), self.size, media)
