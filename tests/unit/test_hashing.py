from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from provmark.capture.hashing import Encoders, StreamHasher, digest_output
from provmark.errors import CaptureError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_str_is_utf8() -> None:
    d = digest_output("héllo")
    assert d.sha256 == sha("héllo".encode()) and d.size == 6


def test_bytes_and_path_and_filelike_agree(tmp_path: Path) -> None:
    data = b"\x00\x01binary" * 1000
    path = tmp_path / "out.png"
    path.write_bytes(data)
    stream = io.BytesIO(data)
    stream.seek(0)
    assert digest_output(data).sha256 == sha(data)
    by_path = digest_output(path)
    assert by_path.sha256 == sha(data) and by_path.media_type == "image/png"
    assert digest_output(stream).sha256 == sha(data)
    assert stream.tell() == 0, "seekable streams are rewound"
    assert digest_output(bytearray(data)).sha256 == sha(data)
    assert digest_output(memoryview(data)).sha256 == sha(data)


def test_json_values_hash_canonically() -> None:
    assert digest_output({"b": 1, "a": [1.0]}).sha256 == sha(b'{"a":[1],"b":1}')


@dataclass
class Image:
    pixels: bytes


def test_registered_encoder() -> None:
    enc = Encoders()
    with pytest.raises(CaptureError, match="register an encoder"):
        digest_output(Image(b"px"), enc)
    enc.register(Image, lambda im: im.pixels, "image/x-raw")
    d = digest_output(Image(b"px"), enc)
    assert d.sha256 == sha(b"px") and d.media_type == "image/x-raw"


def test_stream_hash_equals_whole() -> None:
    h = StreamHasher()
    for chunk in ["ab", "c", "", "dé"]:
        h.update(chunk)
    assert h.digest().sha256 == digest_output("abcdé").sha256
    with pytest.raises(CaptureError, match="mixed"):
        h.update(b"x")


def test_unreadable_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot read"):
        digest_output(tmp_path / "missing.txt")


def test_image_bytes_are_sniffed_and_name_the_operation() -> None:
    import sys
    from pathlib import Path

    from provmark.capture.hashing import StreamHasher, digest_output, operation_for

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
    import make_golden as g

    assert digest_output(g.png()).media_type == "image/png"
    assert digest_output(b"\xff\xd8\xff\xe0rest").media_type == "image/jpeg"
    assert digest_output(b"RIFF\x00\x00\x00\x00WEBPVP8 ").media_type == "image/webp"
    assert digest_output(b"\x00\x01 not a format").media_type == "application/octet-stream"
    h = StreamHasher()
    h.update(g.png()[:5])
    h.update(g.png()[5:])
    assert h.digest().media_type == "image/png"
    assert operation_for("image/png") == "image_generation"
    assert operation_for("text/plain; charset=utf-8") == "text_completion"
    assert operation_for(None) == "text_completion"
