"""Image fingerprints: the hashes, their robustness, plain and unreadable images."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from provmark.errors import ConfigError
from provmark.softbind import image as img
from provmark.softbind.text import Keyed

KEY = Keyed(b"k" * 32)


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = random.Random(seed)
    im = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    w, h = size
    for _ in range(12):
        x, y = rng.randrange(w), rng.randrange(h)
        box = [x, y, x + rng.randint(10, w // 2), y + rng.randint(10, h // 2)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return im


def encode(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def dist(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def test_hashes_are_imagehash_phash_and_dhash() -> None:
    imagehash = pytest.importorskip("imagehash", reason="ImageHash is not installable here")
    for seed in range(8):
        grey = scene(seed).convert("L")
        rgb = np.zeros((grey.size[1], grey.size[0], 3))
        ((p, d, _),) = img.hash_windows(grey, rgb, [img.WHOLE], resample=1)
        assert p == int(str(imagehash.phash(grey)), 16)
        assert d == int(str(imagehash.dhash(grey)), 16)


def test_fingerprint_regions_and_pixels() -> None:
    fp = img.fingerprint_image(encode(scene(1)), KEY)
    assert (fp.width, fp.height) == (320, 240) and fp.too_plain is None
    assert [c.region for c in fp.codes] == [img.FULL, img.CENTRE]
    # stripped metadata: other bytes, the same pixels
    again = img.fingerprint_image(encode(scene(1), "PNG", compress_level=1), KEY)
    assert again.pixels == fp.pixels and again.codes == fp.codes


@pytest.mark.parametrize(
    "edit",
    [
        lambda im: encode(im.resize((160, 120))),
        lambda im: encode(im, "JPEG", quality=60),
        lambda im: encode(ImageEnhance.Brightness(im).enhance(1.2)),
        lambda im: encode(ImageEnhance.Brightness(im).enhance(0.8)),
    ],
    ids=["resize50", "jpeg60", "brighter", "darker"],
)
def test_light_edits_move_the_whole_image_hash_a_little(edit: object) -> None:
    for seed in range(5):
        im = scene(seed)
        a = img.fingerprint_image(encode(im), KEY).codes[0]
        b = img.fingerprint_image(edit(im), KEY).codes[0]  # type: ignore[operator]
        assert dist(a.phash, b.phash) <= img.WHOLE_LIMITS.radius
        assert dist(a.dhash, b.dhash) <= img.WHOLE_LIMITS.max_dhash


def test_a_crop_window_finds_the_stored_centre() -> None:
    hits = 0
    for seed in range(10):
        im = scene(seed)
        centre = img.fingerprint_image(encode(im), KEY).codes[1]
        cropped = im.crop((16, 12, 304, 228))  # 90 % of each side
        _, probes = img.query_probes(encode(cropped), KEY)
        windows = [p for p in probes if p.limits == img.WINDOW_LIMITS]
        best = min(dist(p.phash, centre.phash) for p in windows)
        hits += best <= img.WINDOW_LIMITS.radius
    assert hits >= 9


def test_probes_cover_the_crop_hypotheses() -> None:
    _, probes = img.query_probes(encode(scene(2)), KEY)
    assert probes[0].target == img.FULL and probes[0].box == img.WHOLE
    assert len(probes) == 2 + len(img.crop_windows())
    for p in probes[2:]:
        x, y, w, h = p.box
        assert x >= 0 and y >= 0 and x + w <= 1.0 + 1e-9 and y + h <= 1.0 + 1e-9
    assert probes[0].aspect == pytest.approx(320 / 240)


def test_transparency_is_flattened_on_white() -> None:
    rgba = scene(3).convert("RGBA")
    rgba.putalpha(255)
    flat = img.fingerprint_image(encode(scene(3)), KEY)
    assert img.fingerprint_image(encode(rgba), KEY).codes == flat.codes


def test_plain_and_tiny_images_are_not_fingerprinted() -> None:
    plain = img.fingerprint_image(encode(Image.new("RGB", (200, 200), (9, 9, 9))), KEY)
    assert plain.codes == [] and "too plain" in str(plain.too_plain)
    tiny = img.fingerprint_image(encode(scene(4, (20, 20))), KEY)
    assert tiny.codes == [] and "too small" in str(tiny.too_plain)


def test_unreadable_images_say_so() -> None:
    with pytest.raises(ConfigError, match="not an image Pillow can decode"):
        img.load_image(b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(ConfigError, match="cannot read an image"):
        img.load_image(12345)


def test_sniff() -> None:
    assert img.sniff_image(encode(scene(1))[:16]) == "image/png"
    assert img.sniff_image(encode(scene(1), "JPEG")[:16]) == "image/jpeg"
    assert img.sniff_image(encode(scene(1), "WEBP")[:16]) == "image/webp"
    assert img.sniff_image(b"plain text") is None


def test_chromaticity_divides_out_brightness() -> None:
    c = img.chromaticity(np.array([0x804020, 0x402010]))
    assert np.allclose(c[0], c[1])
