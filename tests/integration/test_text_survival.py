"""What of a marked text survives copy and paste (the table in docs/standards.md)."""

from __future__ import annotations

from pathlib import Path

import provmark
from provmark.disclosure.text_survival import carried, survival, vs_decode, vs_encode, wrapper
from provmark.export.c2pa import mark
from provmark.export.c2pa_certs import make_dev_cert

TEXT = (
    "The council approved the harbour budget after a long debate on Tuesday. "
    "Opponents argued that the dredging plan had not been costed properly.\n"
    "The mayor said work would begin in spring and finish within two years; the cafe\u0301 "
    "on the quay gets a \ufb01nal permit."  # a combining accent (NFC) and a ligature (NFKC)
)

# transform -> (sidecar manifest, exact record, soft binding, variation-selector carrier)
EXPECTED = {
    "unchanged": ("Valid", True, "identical", True),
    "trailing newline added": ("Invalid", False, "derived", True),
    "CRLF line ends": ("Invalid", False, "derived", True),
    "whitespace collapsed": ("Invalid", False, "derived", True),
    "NFC": ("Invalid", False, "derived", True),
    "NFKC": ("Invalid", False, "derived", True),
    "non-breaking spaces (HTML copy)": ("Invalid", False, "derived", True),
    "variation selectors stripped": ("Valid", True, "identical", False),
    "format characters stripped (U+FEFF, Cf)": ("Valid", True, "identical", True),
    "first sentence quoted": ("Invalid", False, "derived", False),
}


def test_vs_encoding_round_trips() -> None:
    data = bytes(range(256))
    assert vs_decode("x" + vs_encode(data) + "y") == data
    assert carried("text" + wrapper(b"manifest")) == b"manifest"
    assert carried("text" + wrapper(b"manifest")[:-1]) is None


def test_what_survives_copy_and_paste(tmp_path: Path) -> None:
    with provmark.open(tmp_path / "p.db", home=tmp_path, fingerprint=True) as pm:
        model = provmark.Model("acme/writer", version="1", provider="Acme Corp")
        with pm.record(model=model, input="write about the harbour") as rec:
            rec.set_output(TEXT)
        pm.flush()
        stored = pm.store.get(str(rec.record_id))
        assert stored is not None
        cert = make_dev_cert()
        (tmp_path / "in.txt").write_text(TEXT)
        done = mark(tmp_path / "in.txt", tmp_path / "out.txt", stored, cert.chain_pem, cert.key_pem)
        assert done.sidecar is not None
        rows = survival(pm, tmp_path / "out.txt", done.sidecar, tmp_path)
    got = {
        r.transform: (r.sidecar_manifest, r.exact_record, r.soft_binding, r.vs_carrier)
        for r in rows
    }
    for r in rows:
        print(r.to_json())
    assert got == EXPECTED
