"""``CapturePipeline``: from a capture outcome (or a record built elsewhere) to the writer.

It owns the draft builder, the privacy engine, the soft-binding fingerprinter, the
background writer and its durable journal, and the capture policy. What it needs of
the log it is given: the store the writer appends to, the record signer, the function
that seals a checkpoint, what to do after each batch, and the key store (the ``actor``
secret that hashes user ids, the signing key's validity window). It never sees the
``Provmark`` facade, and the privacy engine and fingerprinter are typed by the small
protocols below (``privacy.engine.Privacy`` and ``softbind.BackgroundFingerprinter``
satisfy them): capture imports no feature.

A draft goes: :meth:`emit` (caller's thread: build, queue) -> the writer thread, which
calls :meth:`prepare` (fingerprint handed on, raw input rendered as the redacted
snapshot, originals sealed, user id hashed), signs and stores it. With ``durable=True``
:meth:`prepare` runs on the caller's thread, before the fsync'd journal line.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from .._internal.hot_journal import Unreplayed, open_journal, replay_dead_journals
from .._internal.writer import Journal, Writer
from ..crypto.keys import Signer
from ..crypto.keystore import KeyStore, VerifyOnlySigner
from ..errors import CaptureError, ConfigError, ProvmarkError
from ..jsonlimits import replace_unstorable
from ..record import parse_time
from ..store.base import SealFn, Store, StoredCheckpoint
from ..store.features import StoreFile
from .core import Outcome, not_captured
from .draft import Draft
from .drafts import DraftBuilder, render_snapshot

__all__ = [
    "CapturePipeline",
    "FingerprintSink",
    "Policy",
    "PrivacyEngine",
    "journal_path",
    "storable_renderings",
]

log = logging.getLogger("provmark")
Policy = Literal["strict", "best_effort"]


class PrivacyEngine(Protocol):
    """Redaction and sealing of a draft before it is signed (``privacy.engine.Privacy``)."""

    @property
    def redactor(self) -> Any: ...

    def protect(self, draft: Draft) -> None: ...

    def close(self) -> None: ...


class FingerprintSink(Protocol):
    """Soft-binding fingerprints, computed off the writer's thread
    (``softbind.BackgroundFingerprinter``)."""

    def add(self, record_id: str, content: Any, media_type: str | None = None) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class CapturePipeline:
    """Drafts in, signed and logged records out (through the writer)."""

    def __init__(
        self,
        store: Store,
        keystore: KeyStore,
        signer: Signer,
        seal: SealFn,
        drafts: DraftBuilder,
        *,
        writer_store: Store | None = None,
        privacy: PrivacyEngine | None = None,
        fingerprinter: FingerprintSink | None = None,
        on_batch: Callable[[StoredCheckpoint, int], None] | None = None,
        policy: Policy = "strict",
        durable: bool = False,
        journal: Path,
        read_only: bool = False,
        hash_user_ids: bool = False,
        batch_size: int = 2048,
        flush_interval: float = 0.05,
        max_queue: int = 50_000,
        signing_processes: int | None = None,
    ) -> None:
        """``writer_store``: what the writer appends to (the store, or the privacy
        engine's wrapper writing ciphertexts first). ``journal``: the first journal
        path of the store (``durable`` writes to it; every open replays dead ones)."""
        self.store = store
        self.keystore = keystore
        self.drafts = drafts
        self.privacy = privacy
        self.fingerprinter = fingerprinter
        self.policy: Policy = policy
        self.read_only = read_only
        self.hash_user_ids = hash_user_ids
        self.capture_failures = 0
        self._seal = seal
        self._writer_store = writer_store if writer_store is not None else store
        own = open_journal(journal) if durable and not read_only else None
        self.writer = Writer(
            self._writer_store,
            signer,
            seal,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            signing_processes=signing_processes,
            journal=own,
            prepare=self.prepare,
            on_batch=on_batch,
        )
        try:
            self.unreplayed = self._replay_dead_journals(journal, own)
        except BaseException:
            self.writer.close(timeout=0)
            raise

    @property
    def signer(self) -> Signer:
        """The record signer (the writer's: ``Provmark.rotate_keys`` replaces it)."""
        return self.writer.signer

    @signer.setter
    def signer(self, signer: Signer) -> None:
        self.writer.signer = signer

    @property
    def redactor(self) -> Any:
        return self.privacy.redactor if self.privacy is not None else None

    # ------------------------------------------------------------ caller side
    def emit(self, outcome: Outcome) -> str:
        """Turn an outcome into a draft and queue it; its record id ("" when the capture
        failed under ``best_effort``)."""
        try:
            if self.read_only:
                raise CaptureError(f"{self.store!r} was opened read-only: nothing is captured")
            draft = self.drafts.build(outcome, fingerprint=self.fingerprinter is not None)
            self.writer.submit(draft)
        except ProvmarkError as exc:
            self.capture_failures += 1
            return not_captured(self.policy, exc, log)
        return draft.record_id

    def ingest(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        wait: bool = True,
        timeout: float = 60.0,
        protect: bool = True,
    ) -> list[str]:
        """Validate, sign, store and log records built elsewhere (``Provmark.ingest``)."""
        if self.read_only:
            raise ConfigError(f"{self.store!r} was opened read-only: nothing is ingested")
        from ..errors import RecordsRefused

        drafts = []
        for record in self.validate(records):  # InvalidBatch naming every invalid record
            inp = record.get("input")
            if protect and self.privacy is not None and inp and "snapshot" in inp:
                drafts.append(Draft(record, raw_input=inp.pop("snapshot")))
            else:
                drafts.append(Draft(record))
        ids = [d.record_id for d in drafts]
        self.writer.take_refused(ids)  # forget refusals of an earlier try of these ids
        ticket = 0
        for draft in drafts:
            ticket = self.writer.submit(draft)
        if wait and ticket:
            self.writer.wait(ticket, timeout)
            refused = self.writer.take_refused(ids)
            if refused:
                stored = [i for i in ids if i not in refused]
                raise RecordsRefused(refused, stored, {rid: n for n, rid in enumerate(ids)})
        return ids

    def validate(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """The records ``ingest`` would sign, or :class:`~provmark.errors.InvalidBatch`
        naming every invalid one (see :mod:`provmark.capture.intake`)."""
        from .intake import validate_batch

        records_ = validate_batch(records)
        self.check_signable(records_)
        return records_

    def check_signable(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Each record's ``generated_at`` must lie in the validity window of the key that
        will sign it (and not in the future): otherwise it would be signed, logged and
        fail ``key_validity`` forever. :class:`InvalidBatch` naming ``[i].generated_at``."""
        from datetime import UTC, datetime

        from ..crypto.keys import ROTATION_SKEW, check_key_window
        from ..errors import InvalidBatch, VerificationError

        signer = self.signer
        key = next((k for k in self.keystore.public_keys() if k.key_id == signer.key_id), None)
        latest = datetime.now(UTC) + ROTATION_SKEW
        window = f"{key.not_before} .. {key.not_after or 'now'}" if key else "now"
        errors = []
        for i, record in enumerate(records):
            generated_at = str(record.get("generated_at", ""))
            try:
                if parse_time(generated_at) > latest:
                    raise VerificationError("key_validity", "it lies in the future")
                if key is not None:
                    check_key_window(key, generated_at)
            except VerificationError as exc:
                errors.append(
                    (
                        f"[{i}].generated_at",
                        f"{generated_at} is outside the validity window of the signing key "
                        f"{signer.key_id} ({window}): {exc.detail}; such a record could "
                        "never verify",
                    )
                )
        if errors:
            raise InvalidBatch(errors, len(records))

    # ------------------------------------------------------------ writer side
    def prepare(self, draft: Draft) -> dict[str, Any]:
        """The record to sign: sensitive values redacted and sealed, user ids hashed
        (writer thread, or before the journal line with ``durable=True``; a prepared
        draft is not prepared twice). Its fingerprint is handed to the fingerprinter."""
        record = draft.record
        if draft.fingerprint is not None and self.fingerprinter is not None:
            prints, draft.fingerprint = draft.fingerprint, None
            try:
                self.fingerprinter.add(draft.record_id, prints.content, prints.media_type)
            except Exception as exc:  # a fingerprint never costs a record
                log.warning("provmark: fingerprint of %s not stored: %s", draft.record_id, exc)
        if draft.prepared:
            return record
        if self.privacy is not None:
            self.privacy.protect(draft)
        else:
            render_snapshot(draft)
        storable_renderings(record)
        actor = record.get("actor")
        if (
            self.hash_user_ids
            and actor
            and actor.get("user_id")
            and not str(actor["user_id"]).startswith("hmac-sha256:")
        ):
            actor["user_id"] = self.hash_user_id(actor["user_id"])
        draft.prepared = True
        return record

    def hash_user_id(self, user_id: str) -> str:
        key = self.keystore.secret("actor")
        return "hmac-sha256:" + hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()

    def _replay_dead_journals(self, primary: Path, own: Journal | None) -> list[Unreplayed]:
        """Replay the journals of dead writers of this store (see ``_internal.hot_journal``);
        those it cannot replay are logged and returned."""
        signs = not isinstance(self.signer, VerifyOnlySigner)
        writable = not getattr(self.store, "read_only", False)
        why = "" if signs else f"no signing key in {self.keystore!r} to sign them"
        why = why or ("" if writable else f"{self.store!r} is read-only")

        def replay_writer() -> Writer:
            return Writer(
                self._writer_store,
                self.signer,
                self._seal,
                flush_interval=0.01,
                signing_processes=0,
                prepare=self.prepare,
            )

        left = replay_dead_journals(
            primary, self.store, own, replay_writer, can_write=signs and writable, why_not=why
        )
        for item in left:
            log.error(
                "provmark: %s holds %d acknowledged records not in the store, left by a dead "
                "writer and not replayed: %s",
                item.path,
                item.records,
                item.reason,
            )
        return left

    # ------------------------------------------------------------ lifecycle
    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until every captured record is signed, stored and logged."""
        self.writer.flush(timeout)
        if self.fingerprinter is not None:
            self.fingerprinter.flush()

    def close(self) -> None:
        """Store what is queued and stop the writer and the fingerprinter (the privacy
        engine is closed by :meth:`close_privacy`, after the log had its last word)."""
        self.writer.close()
        if self.fingerprinter is not None:
            self.fingerprinter.close()

    def close_privacy(self) -> None:
        if self.privacy is not None:
            self.privacy.close()

    def stats(self) -> dict[str, Any]:
        """What the capture side counts: records waiting, failures, refusals."""
        writer = self.writer
        return {
            "pending": writer.pending,
            "capture_failures": self.capture_failures,
            "writer_failures": writer.failures,
            "rejected": len(writer.rejected),
            "writer_stuck_seconds": writer.stuck_for(),
        }

    def writer_stuck_for(self) -> float:
        """Seconds the writer has been failing to store the records it holds (0: it is not)."""
        return self.writer.stuck_for()


def journal_path(store: Store, home: Path) -> Path:
    """The first durable journal of ``store``: ``<file>.journal`` beside a SQLite file,
    else ``<home>/journal-<log id>.jsonl`` (one journal family per log)."""
    if isinstance(store, StoreFile):
        return store.path.with_name(store.path.name + ".journal")
    log_id = hashlib.sha256(store.origin.encode()).hexdigest()[:16]
    return home / f"journal-{log_id}.jsonl"


def storable_renderings(draft: dict[str, Any]) -> None:
    """The input snapshot and the error message are renderings (redacted, truncated; the
    input itself is identified by ``input.sha256``): a NUL or lone surrogate in them is
    written as U+FFFD, so that the record stays within the I-JSON limits every store and
    the server's door enforce (``provmark.jsonlimits``)."""
    for part, key in (("input", "snapshot"), ("error", "message")):
        holder = draft.get(part)
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            holder[key] = replace_unstorable(holder[key])
