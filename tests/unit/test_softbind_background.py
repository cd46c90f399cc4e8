"""The capture-time fingerprint thread and client fingerprints posted with records."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark.errors import RecordError
from provmark.softbind import BackgroundFingerprinter, Fingerprinter, client_prints
from provmark.softbind.background import too_short
from provmark.softbind.store import SQLiteFingerprintStore

KEY = b"k" * 32
TEXT = (
    "The archive job copies last month's records to Parquet and writes a manifest that "
    "names every file with its hash. Restoring checks the manifest before a record is "
    "read back, so a damaged file is found before anyone relies on it."
)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteFingerprintStore:
    path = tmp_path / "p.db"
    provmark.open(path, home=tmp_path / "home", fingerprint=False).close()
    return SQLiteFingerprintStore(path)


class Gate(Fingerprinter):
    """A fingerprinter whose add waits for a gate: a slow fingerprint thread."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.gate = threading.Event()

    def add(self, *args: Any, **kw: Any) -> Any:
        self.gate.wait(10)
        return super().add(*args, **kw)


def test_short_outputs_are_skipped_before_the_queue() -> None:
    assert too_short("three small words")
    assert not too_short(TEXT)
    assert not too_short(b"bytes are classified on the thread")


def test_outputs_are_fingerprinted_on_the_thread_and_flush_waits(
    store: SQLiteFingerprintStore,
) -> None:
    bg = BackgroundFingerprinter(Fingerprinter(store, KEY))
    bg.add("r1", TEXT, "text/plain")
    bg.add("r2", "too short", "text/plain")
    bg.flush()
    assert [i["kind"] for i in store.items_of("r1")] == ["text"] and not store.items_of("r2")
    stats = bg.stats()
    assert stats["text"]["stored"] == 1 and stats["dropped"] == 0 and stats["queued"] == 0
    bg.close()


def test_a_full_backlog_counts_what_it_does_not_fingerprint(
    store: SQLiteFingerprintStore, caplog: pytest.LogCaptureFixture
) -> None:
    slow = Gate(store, KEY)
    bg = BackgroundFingerprinter(slow, backlog=2)
    for i in range(6):
        bg.add(f"r{i}", TEXT + f" Number {i}.", "text/plain")
    assert bg.stats()["dropped"] >= 3  # one on the thread, two queued, the rest dropped
    assert "not fingerprinted" in caplog.text
    slow.gate.set()
    bg.flush()
    stored = bg.stats()["text"]["stored"]
    assert stored + bg.stats()["dropped"] == 6
    bg.close()


def test_client_fingerprints_are_taken_off_and_checked() -> None:
    record = {"record_id": "r1", "output": {"media_type": "text/plain"}}
    client_prints.attach(record, TEXT)
    plain = {"record_id": "r2"}
    (taken,) = client_prints.take([record, plain])
    assert "fingerprint" not in record and taken.record_id == "r1"
    assert taken.sketch.words == 42  # month's is two words

    image = {"record_id": "r3", "output": {"media_type": "image/png"}, "fingerprint": {}}
    with pytest.raises(RecordError) as err:
        client_prints.take([plain, image])
    assert err.value.field.startswith("[1].fingerprint")
    assert "fingerprint" in image  # nothing taken off when the batch is refused
    short: dict[str, Any] = {"record_id": "r4"}
    client_prints.attach(short, "too short to fingerprint")
    assert "fingerprint" not in short


def test_client_fingerprints_are_keyed_and_found(store: SQLiteFingerprintStore) -> None:
    fp = Fingerprinter(store, KEY)
    record = {"record_id": "r9", "output": {"media_type": "text/plain"}}
    client_prints.attach(record, TEXT)

    class Server:
        fingerprinter = fp

    assert client_prints.store(Server(), client_prints.take([record])) == 1
    from provmark.softbind.lookup import match_text

    status, _, matches = match_text(store, fp.keyed, TEXT.replace("Parquet", "parquet files"))
    assert status == "derived" and matches[0].record_id == "r9"
    fp.close()
