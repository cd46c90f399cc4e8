"""A TSA that sends its certificate chain (openssl `certs = chain.pem`), and timestamp
tokens carried in offline bundles."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc3161_client
from trust_harness import LocalTsa

import provmark
from provmark.bundle import verify_bundle
from provmark.bundle.timestamps import check_timestamps
from provmark.cli import main
from provmark.errors import VerificationError
from provmark.log.note import Checkpoint
from provmark.timestamp import load_tsa_trust, request_timestamp, timestamp_checkpoint
from provmark.timestamp.der import der_ordered

MODEL = provmark.Model("acme/painter", version="2", provider="acme")


@pytest.fixture
def chain_tsa(tmp_path: Path) -> Iterator[LocalTsa]:
    with LocalTsa(tmp_path / "tsa", chain=True) as server:
        yield server


def add(pm: provmark.Provmark, *outputs: str) -> list[str]:
    ids = []
    for text in outputs:
        with pm.record(model=MODEL, input="a prompt") as rec:
            rec.set_output(text)
        assert rec.record_id is not None
        ids.append(rec.record_id)
    pm.flush()
    return ids


def test_a_reply_with_the_chain_verifies(pm: provmark.Provmark, chain_tsa: LocalTsa) -> None:
    trust = load_tsa_trust([chain_tsa.ca])
    add(pm, "one")
    body = b"provmark.test/log\n1\n" + base64.b64encode(b"\x00" * 32) + b"\n"
    response = request_timestamp(chain_tsa.url, body, trust=trust)
    # openssl sends the certificates in the order configured, which is not DER's SET OF order:
    # a strict DER parser refuses the raw reply; the signed parts are untouched by reordering
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        rfc3161_client.decode_timestamp_response(response)
    fixed = der_ordered(response)
    assert fixed != response and len(fixed) == len(response)
    assert len(rfc3161_client.decode_timestamp_response(fixed).signed_data.certificates) == 2
    stamp, info = timestamp_checkpoint(pm.log, chain_tsa.url, trust=trust)
    assert info is not None and info.tsa == "CN=provmark test TSA"
    assert stamp.response != der_ordered(stamp.response)  # stored as the TSA sent it


def test_der_ordered_leaves_other_input_alone() -> None:
    for data in (b"", b"\x30", b"\x02\x01\x00", b"\x30\x03\x02\x01\x02", b"\x30\x85\xff"):
        assert der_ordered(data) == data


def test_bundle_carries_the_earliest_token_and_it_verifies(
    pm: provmark.Provmark,
    chain_tsa: LocalTsa,
    tmp_path: Path,
    db_path: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trust = load_tsa_trust([chain_tsa.ca])
    first, _second = add(pm, "first", "second")
    assert "timestamps" not in pm.bundle(first)  # nothing stamped yet
    timestamp_checkpoint(pm.log, chain_tsa.url, trust=trust)  # size 2
    (third,) = add(pm, "third")
    timestamp_checkpoint(pm.log, chain_tsa.url, trust=trust)  # size 3

    bundle = pm.bundle(first)
    (entry,) = bundle["timestamps"]
    assert entry["size"] == 2 and entry["tsa"] == chain_tsa.url and entry["consistency"]
    verified = verify_bundle(bundle, content_sha256=verified_sha("first"))
    root = Checkpoint.parse(bundle["log"]["checkpoint"].split("\n\n")[0] + "\n").root_hash
    infos = check_timestamps(
        bundle["timestamps"], origin=pm.store.origin, index=0, tree_size=3, root=root, tsa=trust
    )
    assert infos[0].tsa == "CN=provmark test TSA" and verified.tree_size == 3
    assert pm.bundle(third)["timestamps"][0]["size"] == 3

    # the CLI writes it; `verify --bundle` accepts it offline
    out = tmp_path / "first.provmark.json"
    args = ["--db", str(db_path), "--home", str(home)]
    assert main(["bundle", first, "-o", str(out), *args]) == 0
    assert "timestamps" in json.loads(out.read_text())
    (tmp_path / "first.txt").write_text("first")
    assert main(["verify", str(tmp_path / "first.txt"), "--bundle", str(out)]) == 0
    capsys.readouterr()

    # any change to the carried token or its proof fails
    for mutate in (
        lambda e: e.update(size=1),
        lambda e: e.update(checkpoint=e["checkpoint"].replace("\n2\n", "\n3\n")),
        lambda e: e.update(consistency=[]),
        lambda e: e.update(response=e["response"][:-8] + "AAAAAAA="),
        lambda e: e.pop("tsa"),
    ):
        bad = copy.deepcopy(bundle)
        mutate(bad["timestamps"][0])
        with pytest.raises(VerificationError) as err:
            verify_bundle(bad)
        assert err.value.check in ("timestamp", "bundle_format")
    # a token of another log's checkpoint
    other = copy.deepcopy(bundle)
    other["timestamps"][0]["checkpoint"] = "elsewhere/log\n2\n" + "A" * 43 + "=\n"
    with pytest.raises(VerificationError, match="stamped checkpoint"):
        verify_bundle(other)


def verified_sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_a_token_without_its_chain_still_verifies_in_a_bundle(
    pm: provmark.Provmark, tmp_path: Path
) -> None:
    with LocalTsa(tmp_path / "plain-tsa") as tsa:  # sends only its own certificate
        (rid,) = add(pm, "plain")
        timestamp_checkpoint(pm.log, tsa.url, trust=load_tsa_trust([tsa.ca]))
        bundle = pm.bundle(rid)
        assert len(bundle["timestamps"]) == 1
        verify_bundle(bundle)  # imprint and consistency checked; no root to check against
        root = Checkpoint.parse(bundle["log"]["checkpoint"].split("\n\n")[0] + "\n").root_hash
        pinned = check_timestamps(
            bundle["timestamps"],
            origin=pm.store.origin,
            index=0,
            tree_size=1,
            root=root,
            tsa=load_tsa_trust([tsa.ca]),
        )
        assert pinned[0].tsa == "CN=provmark test TSA"
        other = copy.deepcopy(bundle)
        body = other["timestamps"][0]["checkpoint"]
        other["timestamps"][0]["checkpoint"] = body.replace(body.split("\n")[2], "A" * 43 + "=")
        with pytest.raises(VerificationError):
            verify_bundle(other)
