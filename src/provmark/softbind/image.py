"""Image fingerprints: perceptual hashes (pHash + dHash) and mean colour of regions.

At capture an image gets, for the whole image and for its centre 80 %, a 64-bit
pHash (8x8 lowest DCT frequencies of a 32x32 thumbnail against their median), a
64-bit dHash (each pixel of a 9x8 thumbnail against its left neighbour) -- the
algorithms ImageHash defines, computed here with numpy in one batch -- and the
mean colour; plus a keyed hash of the decoded pixels (a copy whose metadata was
stripped has the same pixels). Resizing, JPEG re-compression and brightness
changes move the whole-image pHash by a few bits.

A crop cannot be undone, but the centre of the original survives inside a
10 % crop: at lookup the query is also hashed over a grid of windows, each the
size the original's centre would have if the query were a crop keeping 95, 90,
85 or 80 % of each side, and those are compared with the stored centres.
A candidate must be close in pHash (found through the Hamming index), then in
dHash, in chromaticity (mean colour with brightness divided out) and in aspect
ratio, which keeps false matches between plain images with similar layouts rare.

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

PARAMS = "image/2 phash8+dhash8+colour+aspect regions=full,centre80 work=160"
WORK_SIDE = 160  # hashes are taken on a copy at most this large
RESAMPLE = 2  # PIL.Image.Resampling.BILINEAR for the thumbnails of each window
MIN_SIDE = 24
MIN_CONTRAST = 2.0  # grey standard deviation below this: too plain to tell apart
FULL, CENTRE = 0, 1
REGION_NAMES = {FULL: "whole image", CENTRE: "centre 80%"}
WHOLE = (0.0, 0.0, 1.0, 1.0)
CENTRE_BOX = (0.1, 0.1, 0.8, 0.8)
CROP_KEEPS = (0.95, 0.9, 0.85, 0.8)  # crop hypotheses tried at lookup
WINDOW_STEP = 0.04


@dataclass(frozen=True)
class Limits:
    """How close a stored code must be to a probe."""

    radius: int  # pHash Hamming distance accepted
    piece_radius: int  # multi-index search radius per 16-bit piece (radius // 4 is exact)
    max_dhash: int
    max_chroma: float  # largest difference of the r/(r+g+b), g/(r+g+b) means
    max_aspect: float = 0.15  # largest |log(width/height ratio)| difference (about 16 %)


# the whole image: exact search to 10 bits. Crop windows: 51 probes per lookup, so
# the search is approximate (a piece within 1 bit): every code within 7 bits is
# found, and most at 8 (all but those with exactly 2 differing bits in each piece)
WHOLE_LIMITS = Limits(10, 2, 14, 0.05)
WINDOW_LIMITS = Limits(8, 1, 12, 0.03)

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
    """pHash, dHash (unsigned 64-bit) and mean colour (0xRRGGBB) of one region."""

    region: int
    phash: int
    dhash: int
    colour: int


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
    colour: int
    limits: Limits
    aspect: float  # width / height of the window, in pixels


def sniff_image(head: bytes) -> str | None:
    for magic, media in IMAGE_MAGIC:
        if head.startswith(magic):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def require() -> None:
    """Import Pillow now, with a clear error when it is missing."""
    _pil()


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError(
            "image fingerprints need Pillow: pip install 'provmark[softbind]'"
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


def _working(rgb: PILImage.Image) -> tuple[PILImage.Image, np.ndarray[Any, Any]]:
    """A copy at most WORK_SIDE large: grey (for the hashes) and RGB as an array."""
    from PIL import Image

    w, h = rgb.size
    scale = WORK_SIDE / max(w, h)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return rgb.convert("L"), np.asarray(rgb, dtype=np.float64)


def _dct_rows() -> np.ndarray[Any, np.dtype[np.float64]]:
    """The first 8 rows of the unnormalised 32-point DCT-II (scipy.fftpack's ``dct``)."""
    n = np.arange(32)
    k = np.arange(8)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / 64)


def _pack(bits: np.ndarray[Any, np.dtype[np.bool_]]) -> list[int]:
    packed = np.packbits(bits.reshape(bits.shape[0], 64), axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in packed]


def hash_windows(
    grey: PILImage.Image,
    rgb: np.ndarray[Any, Any],
    boxes: list[tuple[float, float, float, float]],
    resample: int = RESAMPLE,
) -> list[tuple[int, int, int]]:
    """(pHash, dHash, mean colour) of the parts inside ``boxes`` (fractions x, y, w, h).

    With ``resample`` LANCZOS (1) the hashes of the whole box equal ImageHash's
    ``phash``/``dhash`` of the same grey image (up to float ties at the median).
    """
    w, h = grey.size
    area = np.zeros((h + 1, w + 1, 3))  # summed-area table: any window's mean in O(1)
    area[1:, 1:] = rgb.cumsum(axis=0).cumsum(axis=1)
    small, tiny, colours = [], [], []
    for x, y, bw, bh in boxes:
        x0, y0, x1, y1 = round(x * w), round(y * h), round((x + bw) * w), round((y + bh) * h)
        part = grey.crop((x0, y0, x1, y1))
        small.append(np.asarray(part.resize((32, 32), resample)))
        tiny.append(np.asarray(part.resize((9, 8), resample)))
        total = area[y1, x1] - area[y0, x1] - area[y1, x0] + area[y0, x0]
        r, g, b = (int(v) for v in np.round(total / max(1, (x1 - x0) * (y1 - y0))))
        colours.append(r << 16 | g << 8 | b)
    c = _dct_rows()
    low = c @ np.stack(small).astype(np.float64) @ c.T  # (n, 8, 8), all windows at once
    flat = low.reshape(len(boxes), 64)
    phash = flat > np.median(flat, axis=1, keepdims=True)
    t = np.stack(tiny)
    dhash = t[:, :, 1:] > t[:, :, :-1]
    return list(zip(_pack(phash), _pack(dhash), colours, strict=True))


def chromaticity(colours: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """r/(r+g+b) and g/(r+g+b) of packed 0xRRGGBB colours: brightness divided out."""
    c = np.asarray(colours, dtype=np.int64)
    rgb = np.stack([(c >> 16) & 255, (c >> 8) & 255, c & 255], axis=-1).astype(np.float64)
    out: np.ndarray[Any, np.dtype[np.float64]] = rgb[..., :2] / np.maximum(
        rgb.sum(axis=-1, keepdims=True), 1.0
    )
    return out


def _plain(grey: PILImage.Image, size: tuple[int, int]) -> str | None:
    w, h = size
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
    grey, arr = _working(rgb)
    plain = _plain(grey, rgb.size)
    codes = []
    if plain is None:
        found = hash_windows(grey, arr, [WHOLE, CENTRE_BOX])
        codes = [Code(region, *f) for region, f in zip((FULL, CENTRE), found, strict=True)]
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
    grey, arr = _working(rgb)
    plain = _plain(grey, rgb.size)
    pixels = pixel_hash(rgb, keyed)
    if plain is not None:
        return ImagePrint(rgb.size[0], rgb.size[1], [], pixels, plain), []
    windows = crop_windows()
    boxes = [WHOLE, CENTRE_BOX, *windows]
    found = hash_windows(grey, arr, boxes)
    limits = [WHOLE_LIMITS, WHOLE_LIMITS] + [WINDOW_LIMITS] * len(windows)
    targets = [FULL, CENTRE] + [CENTRE] * len(windows)
    ratio = rgb.size[0] / rgb.size[1]
    probes = [
        Probe(t, box, *f, lim, ratio * box[2] / box[3])
        for t, box, f, lim in zip(targets, boxes, found, limits, strict=True)
    ]
    codes = [Code(FULL, *found[0]), Code(CENTRE, *found[1])]
    return ImagePrint(rgb.size[0], rgb.size[1], codes, pixels), probes
