"""Capture-time fingerprinting: one call per output, meant for the writer thread.

``Fingerprinter.add(record_id, output, media_type)`` decides whether the output
is worth fingerprinting (text and raster images are; JSON, audio, archives are
not), computes the fingerprint, and buffers it; buffered fingerprints are
written in one transaction when :data:`BATCH` have gathered, when the oldest
is :data:`MAX_DELAY` seconds old, or on :meth:`flush` / :meth:`close`. The time
spent computing each fingerprint is kept with it (``cost_us``) and summed in
:meth:`stats`, so its cost is visible per kind.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..crypto.keystore import home_of
from ..errors import ConfigError, KeyStoreError
from ..store.features import FeatureTables
from . import image as img
from . import text as txt
from .store import FingerprintStore, Item, SQLiteFingerprintStore

BATCH = 256
MAX_DELAY = 0.5
SECRET_NAME = "softbind"
MAX_BYTES = 256 << 20
SUPPORTED = "text/* and raster images (PNG, JPEG, GIF, WebP, BMP, TIFF)"


_OTHER_MAGIC = (
    (b"%PDF", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"RIFF", "audio/wav or another RIFF file"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"\x1f\x8b", "application/gzip"),
)


class UnsupportedMediaError(ConfigError):
    """Content of a type that fingerprints cannot describe."""


@dataclass(frozen=True)
class Fingerprinted:
    """What :meth:`Fingerprinter.add` did with one output."""

    record_id: str
    kind: str | None  # "text" / "image", None when not fingerprinted
    stored: bool
    detail: str  # what was stored, or why not
    cost_ms: float


def key_id(key: bytes) -> str:
    return hmac.new(key, b"provmark softbind key id", hashlib.sha256).hexdigest()[:16]


def softbind_key(pm: Any) -> bytes:
    try:
        key = pm.keystore.secret(SECRET_NAME)
    except KeyStoreError as exc:
        raise ConfigError(
            f"soft binding needs a secret key: {exc} "
            "(with environment keys set PROVMARK_SECRET_SOFTBIND to 32 random bytes, base64)"
        ) from None
    if not isinstance(key, bytes) or len(key) < 16:
        raise ConfigError("the soft-binding secret must be at least 16 bytes")
    return key


def fingerprint_store(pm: Any) -> FingerprintStore:
    """Where ``pm``'s fingerprints live: in its SQLite file, or in its PostgreSQL database
    (shared by every server on it). A ``softbind-<log id>.db`` file that an earlier
    provmark kept beside the keys of a PostgreSQL store is imported into it once."""
    origin: str = pm.store.origin
    if isinstance(pm.store, FeatureTables) and pm.store.dialect.name == "sqlite":
        return SQLiteFingerprintStore(pm.store)
    if isinstance(pm.store, FeatureTables):
        from .store_pg import PostgresFingerprintStore, import_file

        store = PostgresFingerprintStore(pm.store)
        home = home_of(pm.keystore)
        old = home / f"softbind-{hashlib.sha256(origin.encode()).hexdigest()[:16]}.db"
        if old.is_file():
            import_file(store, old)
        return store
    raise ConfigError(f"{pm.store!r} keeps no fingerprints (a SQLite or PostgreSQL store does)")


def _read(content: Any) -> bytes:
    if isinstance(content, bytes | bytearray | memoryview):
        return bytes(content)
    if isinstance(content, os.PathLike):
        try:
            with open(content, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{os.fspath(content)}: {exc.strerror or exc}") from None
    elif hasattr(content, "read"):
        data = content.read(MAX_BYTES + 1)
        if isinstance(data, str):
            data = data.encode()
    else:
        raise UnsupportedMediaError(f"cannot fingerprint a {type(content).__name__}")
    if len(data) > MAX_BYTES:
        raise UnsupportedMediaError(f"content over {MAX_BYTES >> 20} MiB is not fingerprinted")
    return bytes(data)


def _textual(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    sample = text[:4096]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    return None if controls > len(sample) // 100 else text


def classify(content: Any, media_type: str | None = None) -> tuple[str, Any]:
    """("text", str) or ("image", image source); :class:`UnsupportedMediaError` otherwise."""
    media = (media_type or "").split(";")[0].strip().lower()
    if media.startswith("text/") or (isinstance(content, str) and not media):
        if isinstance(content, str):
            return "text", content
        text = _textual(_read(content))
        if text is None:
            raise UnsupportedMediaError(f"{media}: the content is not UTF-8 text")
        return "text", text
    if media and not media.startswith("image/") and media != "application/octet-stream":
        raise UnsupportedMediaError(f"{media} is not supported; fingerprints cover {SUPPORTED}")
    if type(content).__module__.startswith("PIL.") and hasattr(content, "getpixel"):
        return "image", content
    if isinstance(content, str):
        raise UnsupportedMediaError(f"{media} content given as text: pass the image bytes or path")
    data = _read(content)
    if img.sniff_image(data[:16]) is not None:
        return "image", data
    if media.startswith("image/"):
        raise UnsupportedMediaError(f"{media} is not a raster image fingerprints support")
    text = _textual(data)
    if text is not None:
        return "text", text
    guess = next((m for magic, m in _OTHER_MAGIC if data.startswith(magic)), None)
    if guess is None and data[4:8] == b"ftyp":
        guess = "video/mp4 (ISO media)"
    if guess is None and isinstance(content, os.PathLike):
        guess = mimetypes.guess_type(os.fspath(content))[0]
    raise UnsupportedMediaError(
        f"{guess or 'binary content'} is not supported; fingerprints cover {SUPPORTED}"
    )


class Fingerprinter:
    """Computes and stores fingerprints of outputs; safe to call from the writer thread."""

    def __init__(
        self,
        store: FingerprintStore,
        key: bytes,
        *,
        text: bool = True,
        images: bool = True,
        batch: int = BATCH,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.store = store
        self.keyed = txt.Keyed(key)
        self.key_id = key_id(key)
        self.text = text
        self.images = images
        self.batch = batch
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._pending: list[Item] = []
        self._oldest = 0.0
        self._stats: dict[str, dict[str, float]] = {}
        store.check(self.key_id)

    @classmethod
    def for_provmark(cls, pm: Any, **options: Any) -> Fingerprinter:
        """Fingerprints in ``pm``'s :func:`fingerprint_store` under the key ``softbind`` of
        its key store."""
        key = softbind_key(pm)
        store = fingerprint_store(pm)
        try:
            return cls(store, key, **options)
        except BaseException:
            store.close()
            raise

    def add(self, record_id: str, content: Any, media_type: str | None = None) -> Fingerprinted:
        """Fingerprint one output of ``record_id``; skipped (with the reason) when unsuitable."""
        start = time.perf_counter_ns()
        try:
            kind, source = classify(content, media_type)
        except UnsupportedMediaError as exc:
            return self._skip(record_id, None, str(exc), start)
        if (kind == "text" and not self.text) or (kind == "image" and not self.images):
            return self._skip(record_id, kind, f"{kind} fingerprints are turned off", start)
        try:
            item, detail = self._compute(record_id, kind, source, media_type)
        except ConfigError as exc:
            return self._skip(record_id, kind, str(exc), start)
        if item is None:
            return self._skip(record_id, kind, detail, start)
        self._buffer(item)
        cost = item.cost_us / 1000
        self._count(kind, "stored", cost)
        return Fingerprinted(record_id, kind, True, detail, cost)

    def _compute(
        self, record_id: str, kind: str, source: Any, media_type: str | None
    ) -> tuple[Item | None, str]:
        start = time.perf_counter_ns()
        if kind == "text":
            return self._text_item(record_id, txt.sketch(source), media_type, start)
        img.require()  # imports outside the timed part
        start = time.perf_counter_ns()
        ip = img.fingerprint_image(source, self.keyed)
        if ip.too_plain:
            return None, ip.too_plain
        cost = (time.perf_counter_ns() - start) // 1000
        item = Item(
            record_id=record_id,
            kind="image",
            media_type=media_type,
            size=ip.width * ip.height,
            cost_us=cost,
            width=ip.width,
            height=ip.height,
            parts=[(ip.pixels, txt.PIXELS, 0, 0)],
            codes=ip.codes,
        )
        return item, f"{ip.width}x{ip.height} image, {len(ip.codes)} perceptual hashes"

    def _text_item(
        self, record_id: str, sk: txt.Sketch, media_type: str | None, start: int
    ) -> tuple[Item | None, str]:
        if sk.too_short:
            why = f"text too short to fingerprint ({sk.words} words, at least {txt.MIN_WORDS})"
            return None, why
        tp = txt.seal(sk, self.keyed)
        item = Item(
            record_id=record_id,
            kind="text",
            media_type=media_type or "text/plain",
            size=tp.words,
            cost_us=(time.perf_counter_ns() - start) // 1000,
            shingles=tp.shingles,
            signature=tp.signature.astype("<u4").tobytes(),
            anchors=len(tp.anchors),
            parts=[
                (h, txt.ANCHOR, s, 0) for h, s in zip(tp.anchors, tp.anchor_sentences, strict=True)
            ],
        )
        return item, f"{tp.words} words, {tp.shingles} shingles, {len(tp.anchors)} anchors"

    def add_sketch(
        self, record_id: str, sketch: txt.Sketch, media_type: str | None = None
    ) -> Fingerprinted:
        """Store a text fingerprint a client computed (:func:`text.sketch`), keyed here."""
        start = time.perf_counter_ns()
        if not self.text:
            return self._skip(record_id, "text", "text fingerprints are turned off", start)
        item, detail = self._text_item(record_id, sketch, media_type, start)
        if item is None:
            return self._skip(record_id, "text", detail, start)
        self._buffer(item)
        cost = item.cost_us / 1000
        self._count("text", "stored", cost)
        return Fingerprinted(record_id, "text", True, detail, cost)

    def _buffer(self, item: Item) -> None:
        with self._lock:
            self._pending.append(item)
            if len(self._pending) == 1:
                self._oldest = time.monotonic()
            due = len(self._pending) >= self.batch or (
                time.monotonic() - self._oldest >= self.max_delay
            )
        if due:
            self.flush()

    def _skip(self, record_id: str, kind: str | None, why: str, start: int) -> Fingerprinted:
        cost = (time.perf_counter_ns() - start) / 1e6
        self._count(kind or "other", "skipped", cost)
        return Fingerprinted(record_id, kind, False, why, cost)

    def _count(self, kind: str, what: str, cost_ms: float) -> None:
        with self._lock:
            s = self._stats.setdefault(kind, {"stored": 0, "skipped": 0, "ms": 0.0})
            s[what] += 1
            s["ms"] += cost_ms

    def flush(self) -> None:
        """Write every buffered fingerprint now."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            try:
                self.store.put(pending)
            except BaseException:
                with self._lock:  # keep them for the next try
                    self._pending[:0] = pending
                raise

    def stats(self) -> dict[str, Any]:
        """Per kind: fingerprints stored and skipped, and compute time (total and mean)."""
        with self._lock:
            out: dict[str, Any] = {}
            for kind, s in self._stats.items():
                n = s["stored"] + s["skipped"]
                out[kind] = {
                    "stored": int(s["stored"]),
                    "skipped": int(s["skipped"]),
                    "total_ms": round(s["ms"], 3),
                    "mean_ms": round(s["ms"] / n, 3) if n else 0.0,
                }
            out["pending"] = len(self._pending)
            return out

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.store.close()
