"""Image fingerprints: perceptual hashes (pHash + dHash, via ``imagehash``) of regions.

At capture an image gets two 64-bit pHash/dHash pairs: the whole image and its
centre 80 % (region 1), plus a keyed hash of its decoded pixels (a copy with its
metadata stripped has the same pixels). Resizing, JPEG re-compression and
brightness changes move the whole-image pHash by a few bits.

A crop cannot be undone, but the centre of the original survives inside a
10 % crop: at lookup the query is also hashed over a grid of windows, each the
size the original's centre would have if the query were a crop keeping 95, 90,
85 or 80 % of each side, and those hashes are compared with the stored centres.
A candidate must be close in pHash (found through the Hamming index) and then in
dHash too, which keeps false matches rare.

The hashes are not keyed: a 64-bit pHash is a coarse 8x8 sketch of low
frequencies and C2PA's soft-binding assertion publishes it by design.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from .text import Keyed

PARAMS = "image/1 phash8+dhash8 regions=full,centre80 work=256"
WORK_SIDE = 256  # hashes are taken on a grey copy at most this large
MIN_SIDE = 24
MIN_CONTRAST = 2.0  # grey standard deviation below this: too plain to tell apart
FULL, CENTRE = 0, 1
REGION_NAMES = {FULL: "whole image", CENTRE: "centre 80%"}
CENTRE_BOX = (0.1, 0.1, 0.8, 0.8)
CROP_KEEPS = (0.95, 0.9, 0.85, 0.8)  # crop hypotheses tried at lookup
WINDOW_STEP = 0.04
# distances a match may have: (pHash radius searched, dHash at most)
WHOLE_LIMITS = (10, 14)
WINDOW_LIMITS = (7, 10)

IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


@dataclass(frozen=True)
class Code:
    """pHash and dHash (unsigned 64-bit) of one region."""

    region: int
    phash: int
    dhash: int


@dataclass(frozen=True)
class ImagePrint:
    width: int
    height: int
    codes: list[Code]
    pixels: int  # keyed hash of the decoded pixels, signed 64-bit
    too_plain: str | None = None  # why it cannot be fingerprinted


@dataclass(frozen=True)
class Probe:
    """One hash of the query compared with one kind of stored region."""

    target: int  # FULL or CENTRE
    box: tuple[float, float, float, float]  # x, y, w, h as fractions of the query
    phash: int
    dhash: int
    radius: int
    max_dhash: int


def sniff_image(head: bytes) -> str | None:
    for magic, media in IMAGE_MAGIC:
        if head.startswith(magic):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def require() -> None:
    """Import Pillow and ImageHash now, with a clear error when they are missing."""
    _pil()
    try:
        import imagehash  # noqa: F401
        import scipy.fftpack  # noqa: F401  (imagehash imports it on the first pHash)
    except ImportError:
        raise ConfigError(
            "image fingerprints need ImageHash: pip install 'provmark[softbind]'"
        ) from None


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError(
            "image fingerprints need Pillow and ImageHash: pip install 'provmark[softbind]'"
        ) from None
    return Image


def load_image(content: Any) -> PILImage.Image:
    """A decoded image from bytes, a path, a file object or a PIL image."""
    Image = _pil()
    if isinstance(content, Image.Image):
        return content  # type: ignore[no-any-return]
    try:
        if isinstance(content, bytes | bytearray | memoryview):
            img = Image.open(io.BytesIO(bytes(content)))
        elif isinstance(content, os.PathLike | str):
            img = Image.open(Path(content))
        elif hasattr(content, "read"):
            img = Image.open(content)
        else:
            raise ConfigError(f"cannot read an image from a {type(content).__name__}")
        img.load()
    except Image.DecompressionBombError as exc:
        raise ConfigError(f"image too large to fingerprint: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConfigError(f"not an image Pillow can decode: {exc}") from None
    return img  # type: ignore[no-any-return]


def _flatten(img: PILImage.Image) -> PILImage.Image:
    """Upright RGB with transparency composited on white (as most viewers show it)."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _grey(rgb: PILImage.Image) -> PILImage.Image:
    from PIL import Image

    grey = rgb.convert("L")
    w, h = grey.size
    scale = WORK_SIDE / max(w, h)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = grey.resize(size, Image.Resampling.LANCZOS)
    return grey


def _bits(h: Any) -> int:
    return int.from_bytes(np.packbits(np.asarray(h.hash, dtype=bool).ravel()).tobytes(), "big")


def hash_window(grey: PILImage.Image, box: tuple[float, float, float, float]) -> tuple[int, int]:
    """(pHash, dHash) of the part of ``grey`` inside ``box`` (fractions x, y, w, h)."""
    import imagehash

    w, h = grey.size
    x, y, bw, bh = box
    if box != (0.0, 0.0, 1.0, 1.0):
        grey = grey.crop((round(x * w), round(y * h), round((x + bw) * w), round((y + bh) * h)))
    return _bits(imagehash.phash(grey)), _bits(imagehash.dhash(grey))


def _plain(grey: PILImage.Image) -> str | None:
    w, h = grey.size
    if min(w, h) < MIN_SIDE:
        return f"image too small to fingerprint ({w}x{h}; at least {MIN_SIDE}x{MIN_SIDE})"
    if float(np.asarray(grey, dtype=np.float32).std()) < MIN_CONTRAST:
        return "image too plain to fingerprint (almost one colour)"
    return None


def pixel_hash(rgb: PILImage.Image, keyed: Keyed) -> int:
    header = b"px\x00%dx%d\x00" % rgb.size
    h = hashlib.sha256(rgb.tobytes()).digest()
    return keyed.int64(header + h)


def fingerprint_image(content: Any, keyed: Keyed) -> ImagePrint:
    rgb = _flatten(load_image(content))
    grey = _grey(rgb)
    plain = _plain(grey)
    codes = []
    if plain is None:
        for region, box in ((FULL, (0.0, 0.0, 1.0, 1.0)), (CENTRE, CENTRE_BOX)):
            p, d = hash_window(grey, box)
            codes.append(Code(region, p, d))
    return ImagePrint(rgb.size[0], rgb.size[1], codes, pixel_hash(rgb, keyed), plain)


def crop_windows() -> list[tuple[float, float, float, float]]:
    """Where the original's centre 80 % lies in a query that is a crop of it."""
    boxes = []
    for keep in CROP_KEEPS:
        size = CENTRE_BOX[2] / keep
        room = 1.0 - size
        n = max(1, int(np.ceil(room / WINDOW_STEP - 1e-9)) + 1)
        offsets = np.linspace(0.0, room, n) if n > 1 else np.array([room / 2])
        boxes += [(float(x), float(y), size, size) for x in offsets for y in offsets]
    return boxes


def query_probes(content: Any, keyed: Keyed) -> tuple[ImagePrint, list[Probe]]:
    """The query's own fingerprint and every probe to search with."""
    rgb = _flatten(load_image(content))
    grey = _grey(rgb)
    plain = _plain(grey)
    pixels = pixel_hash(rgb, keyed)
    if plain is not None:
        return ImagePrint(rgb.size[0], rgb.size[1], [], pixels, plain), []
    whole = (0.0, 0.0, 1.0, 1.0)
    p, d = hash_window(grey, whole)
    probes = [Probe(FULL, whole, p, d, *WHOLE_LIMITS)]
    cp, cd = hash_window(grey, CENTRE_BOX)
    probes.append(Probe(CENTRE, CENTRE_BOX, cp, cd, *WHOLE_LIMITS))
    for box in crop_windows():
        wp, wd = hash_window(grey, box)
        probes.append(Probe(CENTRE, box, wp, wd, *WINDOW_LIMITS))
    codes = [Code(FULL, p, d), Code(CENTRE, cp, cd)]
    return ImagePrint(rgb.size[0], rgb.size[1], codes, pixels), probes
