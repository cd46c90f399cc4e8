"""Client-side fingerprints posted with records, answered by another server.

Two real ``provmark serve`` processes on one PostgreSQL database with the same keys
(one key home): records are posted to the first with the fingerprint their client
computed (the server never sees the output), and the second finds an edited copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from server_harness import make_record, start_server

import provmark
from provmark.softbind.client_prints import attach

TEXT = (
    "The incident review found that the nightly export stopped when the archive bucket "
    "ran out of quota. Nothing was lost: the exporter retried every hour and caught up "
    "once the quota was raised. The team added an alert on the bucket size and a weekly "
    "check that the archive manifests still verify against the transparency log."
)


@pytest.mark.postgres
def test_fingerprints_posted_to_one_server_are_found_by_another(
    tmp_path: Path, pg_url: str
) -> None:
    a = start_server(tmp_path / "a", db=pg_url)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "home").symlink_to(a.home, target_is_directory=True)
    b = start_server(tmp_path / "b", db=pg_url)
    try:
        record = make_record(TEXT)
        attach(record, TEXT)
        bad = make_record("another output of a few words, enough to fingerprint here")
        bad["fingerprint"] = {**record["fingerprint"], "minhash": "AAAA"}
        with a.client(a.token("ingest")) as ing:
            refused = ing.post("/v1/records", json=[record, bad])
            assert refused.status_code == 422
            assert refused.json()["field"] == "[1].fingerprint.minhash"
            stored = ing.post("/v1/records", json=[record]).json()
            assert stored["stored"] == 1 and stored["fingerprints"] == 1
        edited = TEXT.replace("quota", "qouta").replace("Nothing", "nothing")
        with b.client(b.token("auditor")) as aud:
            lead = aud.post("/v1/verify/fuzzy", json={"text": edited}).json()
            assert lead["status"] == "derived" and not lead["proven"]
            assert lead["matches"][0]["record_id"] == record["record_id"]
            assert lead["matches"][0]["record_verified"]
            quote = " ".join(TEXT.split()[20:40])
            got = aud.post("/v1/verify/fuzzy", json={"text": quote}).json()
            assert got["matches"][0]["record_id"] == record["record_id"]

        # the Python client computes the fingerprint when asked (fingerprint=True)
        with provmark.open(
            a.url, token=a.token("developer"), home=tmp_path / "client", fingerprint=True
        ) as remote:
            with remote.record(model=provmark.Model("acme/reviewer"), input="review") as rec:
                rec.set_output(TEXT.replace("incident", "outage"))
            remote.flush()
        with b.client(b.token("auditor")) as aud:
            again = aud.post("/v1/verify/fuzzy", json={"text": TEXT.replace("incident", "outgae")})
            ids = [m["record_id"] for m in again.json()["matches"]]
            assert rec.record_id in ids
    finally:
        a.stop()
        b.stop()
