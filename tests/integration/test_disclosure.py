"""`provmark disclose` on text, PNG and JPEG outputs, marked and unmarked; the store's
default provider; the coverage report."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import provmark
from provmark.cli import main
from provmark.disclosure import coverage, disclose, disclose_bytes
from provmark.disclosure.disclose import DIGITAL_SOURCE_TYPE
from provmark.export.c2pa_certs import make_dev_cert, write_dev_cert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
import make_golden as g

SUMMARY = "The council approved the budget after a long debate, said the mayor."


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 40)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A store whose config names the provider; a text, a PNG and a JPEG captured."""
    home, db = tmp_path / "home", tmp_path / "p.db"
    home.mkdir()
    (home / "config.toml").write_text('provider = "Acme Corp"\n')
    write_dev_cert(make_dev_cert(), home / "c2pa")
    files = {"txt": tmp_path / "summary.txt", "png": tmp_path / "paint.png"}
    files["jpg"] = tmp_path / "photo.jpg"
    files["txt"].write_text(SUMMARY)
    files["png"].write_bytes(g.png())
    files["jpg"].write_bytes(jpeg_bytes())
    ids = {}
    with provmark.open(db, home=home, flush_interval=0.01) as pm:
        for kind, path in files.items():
            model = provmark.Model("acme/writer" if kind == "txt" else "acme/painter", version="3")
            with pm.record(model=model, input="a prompt") as rec:
                rec.set_output(path.read_text() if kind == "txt" else path.read_bytes())
            ids[kind] = rec.record_id
        unversioned = provmark.Model("acme/old", provider="Old Co")
        with pm.record(model=unversioned, input="x") as rec:
            rec.set_output("an output of a model without a version")
        ids["old"] = rec.record_id
        with pytest.raises(RuntimeError), pm.record(model=unversioned, input="y"):
            raise RuntimeError("the generation failed")
    args = ["--db", str(db), "--home", str(home)]
    yield {"home": home, "db": db, "files": files, "ids": ids, "args": args, "tmp": tmp_path}


def run(site: dict[str, Any], capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main([*argv, *site["args"]])
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in argv else out


def fields(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in d["fields"]}


def test_capture_carries_the_default_provider_and_image_types(site: dict[str, Any]) -> None:
    with provmark.open(site["db"], home=site["home"]) as pm:
        text = pm.get(site["ids"]["txt"])
        image = pm.get(site["ids"]["png"])
        photo = pm.get(site["ids"]["jpg"])
        old = pm.get(site["ids"]["old"])
    assert text.model.provider == "Acme Corp" and text.operation == "text_completion"
    assert image.model.provider == "Acme Corp"
    assert (image.output.media_type, image.operation) == ("image/png", "image_generation")  # type: ignore[union-attr]
    assert (photo.output.media_type, photo.operation) == ("image/jpeg", "image_generation")  # type: ignore[union-attr]
    assert old.model.provider == "Old Co"  # a model's own provider wins


@pytest.mark.parametrize("kind", ["txt", "png", "jpg"])
def test_unmarked_outputs(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    code, d = run(site, capsys, "disclose", str(site["files"][kind]), "--json")
    assert code == 0 and d["verdict"]["status"] == "verified" and d["marking"] == "none", d[
        "verdict"
    ]
    f = fields(d)
    assert f["provider"]["value"] == "Acme Corp" and f["provider"]["signed"]
    assert f["provider"]["sources"][0]["where"] == "record model.provider"
    assert f["system_version"]["value"] == "3"
    assert f["unique_id"]["value"] == site["ids"][kind] == d["record_id"]
    assert f["ai_generated"]["value"] == DIGITAL_SOURCE_TYPE
    assert d["complete"] and not d["missing"]
    assert [c["check"] for c in d["verdict"]["checks"]][:2] == ["output_hash", "record_signature"]
    code, text = run(site, capsys, "disclose", str(site["files"][kind]))
    assert (
        code == 0 and text.startswith("VERIFIED") and "from record model.provider (signed" in text
    )


@pytest.mark.parametrize("kind", ["txt", "png", "jpg"])
def test_marked_outputs(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    src = site["files"][kind]
    out = site["tmp"] / f"marked-{src.name}"
    assert main(["mark", str(src), "-o", str(out), *site["args"]]) == 0  # found by its hash
    capsys.readouterr()
    ca = str(site["home"] / "c2pa" / "ca.pem")
    code, d = run(site, capsys, "disclose", str(out), "--json", "--trust", ca)
    assert code == 0, d["verdict"]
    assert d["marking"] == ("c2pa-sidecar" if kind == "txt" else "c2pa-embedded")
    assert d["verdict"]["c2pa_state"] == "Trusted" and d["record_id"] == site["ids"][kind]
    f = fields(d)
    for name in ("provider", "system_name", "system_version", "created_at", "unique_id"):
        wheres = [s["where"] for s in f[name]["sources"]]
        assert wheres[0].startswith("record ") and "dev.provmark.disclosure" in wheres[1], wheres
        assert f[name]["sources_agree"] and f[name]["signed"]
    manifest_ai = f["ai_generated"]["sources"][1]
    assert manifest_ai["value"] == DIGITAL_SOURCE_TYPE and "c2pa.created" in manifest_ai["where"]
    if kind != "txt":  # embedding changed the bytes: the record is found through the manifest
        assert "c2pa_record" in [c["check"] for c in d["verdict"]["checks"]]


def test_tampered_and_unknown_outputs(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    src = site["files"]["png"]
    out = site["tmp"] / "marked.png"
    assert main(["mark", str(src), "-o", str(out), *site["args"]]) == 0
    capsys.readouterr()
    bad = site["tmp"] / "edited.png"
    bad.write_bytes(g.change_one_pixel(out.read_bytes()))
    code, d = run(site, capsys, "disclose", str(bad), "--json")
    assert code == 1 and d["verdict"]["status"] == "not_verified"
    assert (
        d["verdict"]["c2pa_state"] == "Invalid" and d["verdict"]["failed_check"] == "c2pa_manifest"
    )
    record_src, manifest_src = fields(d)["provider"]["sources"]
    assert record_src["signed"] and not manifest_src["signed"]  # the manifest no longer holds

    stranger = site["tmp"] / "stranger.png"
    stranger.write_bytes(g.png(3, 3))
    code, d = run(site, capsys, "disclose", str(stranger), "--json")
    assert code == 1 and d["verdict"]["status"] == "no_record" and d["marking"] == "none"
    assert set(d["missing"]) == {
        "provider",
        "system_name",
        "system_version",
        "created_at",
        "unique_id",
        "ai_generated",
    }
    code, text = run(site, capsys, "disclose", str(stranger))
    assert code == 1 and text.startswith("NO RECORD") and "provider        MISSING" in text


def test_record_ids_and_incomplete_records(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, d = run(site, capsys, "disclose", site["ids"]["old"], "--json")
    assert code == 0 and not d["complete"] and d["missing"] == ["system_version"]
    assert fields(d)["provider"]["value"] == "Old Co"
    with provmark.open(site["db"], home=site["home"]) as pm:
        by_bytes = disclose_bytes(pm, SUMMARY.encode(), name="x.txt")
        by_id = disclose(pm, site["ids"]["txt"])
    assert by_bytes.record_id == by_id.record_id and by_id.verdict.status == "verified"
    assert main(["disclose", "no-such-thing", *site["args"]]) == 2
    assert "neither a file nor a record id" in capsys.readouterr().err


def test_coverage_report(site: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = site["tmp"] / "m.png"
    assert main(["mark", str(site["files"]["png"]), "-o", str(out), *site["args"]]) == 0
    assert (
        main(["mark", str(site["files"]["txt"]), "-o", str(site["tmp"] / "m.txt"), *site["args"]])
        == 0
    )
    capsys.readouterr()
    code, r = run(site, capsys, "disclose", "--report", "--since", "30d", "--json")
    assert code == 0
    assert r["records"] == 5 and r["outputs_captured"] == 4
    assert r["with_manifest_or_sidecar"] == 2
    assert (r["with_manifest_embedded"], r["with_sidecar"]) == (1, 1)
    assert r["with_all_sb942_fields"] == 3 and r["missing_fields"] == {"system_version": 1}
    assert r["failures"] == {"generations": 1, "markings": 0}
    assert r["outputs_by_media"] == {"image/jpeg": 1, "image/png": 1, "text/plain": 2}
    assert len(r["days"]) >= 30 and sum(b["captured"] for b in r["days"]) == 4
    code, text = run(site, capsys, "disclose", "--report")
    assert code == 0 and "with all SB 942 fields     3 (75.0%)" in text
    with provmark.open(site["db"], home=site["home"]) as pm:
        assert coverage(pm, since="30d").to_json()["outputs_captured"] == 4
        assert coverage(pm, since="2000-01-01T00:00:00Z", until="2000-02-01T00:00:00Z").records == 0
