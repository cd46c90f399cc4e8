"""``Provmark``, the embedded client: a facade over three services.

It wires a :class:`~provmark.log.service.Log` (the store, the log key, checkpoints, proofs,
evidence, trust), a :class:`~provmark.capture.pipeline.CapturePipeline` (drafts, privacy,
fingerprints, the batching writer) and a key store, and delegates to them; the features
it offers (verification, bundles, role views, erasure) take the service they need.
``provmark.open`` returns it for a store, typed as :class:`~provmark.ProvenanceClient`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

from .canonical import Fragment
from .capture.core import Outcome, Recording, Spec, wrap
from .capture.drafts import DraftBuilder
from .capture.environment import DEFAULT_PACKAGES
from .capture.hashing import digest_output
from .capture.model import Model
from .capture.pipeline import CapturePipeline, Policy
from .capture.pipeline import journal_path as default_journal
from .crypto.keys import PublicKey, Signer
from .crypto.keystore import FileKeyStore, KeyStore, existing_signer, home_of
from .errors import ConfigError, NotFoundError, ProvmarkError
from .log.note import NoteVerifier
from .log.service import Log
from .protocol import ProvenanceClient
from .record import Record
from .store.base import (
    Filters,
    Page,
    Query,
    Store,
    StoredCheckpoint,
    query_of,
)
from .store.deadletters import DeadLetter, DeadLetterStore
from .store.targets import open_store, resolve_target
from .verify import Verified

if TYPE_CHECKING:
    from .privacy.base import Erasure
    from .privacy.views import RecordView
    from .softbind import FuzzyResult
    from .verification.report import CheckResult, Report
    from .witness.policy import TrustPolicy

log = logging.getLogger("provmark")
F = TypeVar("F", bound=Callable[..., Any])


class Provmark:
    """Capture, store, sign, log and verify provenance records."""

    def __init__(
        self,
        store: Store,
        keystore: KeyStore,
        *,
        policy: Policy = "strict",
        durable: bool = False,
        journal_path: str | Path | None = None,
        actor: Mapping[str, str] | None = None,
        packages: Sequence[str] = DEFAULT_PACKAGES,
        config: Mapping[str, Any] | None = None,
        redactor: Any = None,
        hash_user_ids: bool = False,
        batch_size: int = 2048,
        flush_interval: float = 0.05,
        max_queue: int = 50_000,
        signing_processes: int | None = None,
        redact: bool = True,
        redaction_policy: Any = None,
        encrypt: bool = True,
        master_key: Any = None,
        vault: Any = None,
        subject_tag: str = "tenant",
        fingerprint: bool | None = None,
        provider: str | None = None,
        read_only: bool = False,
    ) -> None:
        """``read_only`` (what the CLI's reading commands use) creates nothing: no key, no
        secret, no table; records cannot be captured. A journal left by a dead writer is
        still replayed when the store and a signing key allow (else ``unreplayed`` and
        ``audit`` say so).

        See ``docs/privacy.md`` for the privacy options: ``redact`` (built-in detectors on
        snapshots and error messages, keyed by the ``redaction`` secret), ``redaction_policy``
        (a ``redaction.Policy`` or its dict form), ``redactor`` (your own ``redact_text``),
        ``encrypt`` (originals of ``encrypt`` fields sealed per subject), ``master_key`` (a
        ``crypto.fieldenc.MasterKey``, e.g. a KMS; default the ``master`` secret),
        ``vault`` (default: tables beside the store) and ``subject_tag`` (the tag naming the
        tenant of records without a user id). ``fingerprint`` stores soft-binding
        fingerprints of text and image outputs so that edited copies can be found
        (``docs/soft-binding.md``): on by default where it can be (numpy installed, a
        ``softbind`` key), ``True`` insists, ``False`` turns it off.
        ``provider`` is the SB 942 provider name records carry when their model names none
        (else ``$PROVMARK_PROVIDER``, else ``provider`` in ``$PROVMARK_HOME/config.toml``)."""
        from .privacy.engine import Privacy, writer_store

        if policy not in ("strict", "best_effort"):
            raise ConfigError(f"policy must be 'strict' or 'best_effort', not {policy!r}")
        # the record key first, then the log key: the order keys are made and listed in
        if read_only:
            signer = existing_signer(keystore, store.public_keys(), "records")
        else:
            signer = keystore.signer("records")
        self.log = Log(store, keystore, read_only=read_only, settle=self.flush)
        if not read_only:
            store.put_public_keys(keystore.public_keys())
        from .disclosure.config import default_provider

        self._drafts = DraftBuilder(
            actor=actor,
            packages=packages,
            config=config,
            provider=default_provider(provider, home_of(keystore)),
        )
        self.encoders = self._drafts.encoders
        self._hash_cache = self._drafts.hash_cache
        self.read_only = read_only
        self.privacy = (
            None
            if read_only
            else Privacy.configure(
                store,
                keystore,
                redact=redact,
                redaction_policy=redaction_policy,
                redactor=redactor,
                encrypt=encrypt,
                master_key=master_key,
                vault=vault,
                subject_tag=subject_tag,
                durable=durable,
            )
        )
        self.redactor = self.privacy.redactor if self.privacy is not None else None
        if self.privacy is not None:
            weakref.finalize(self, self.privacy.close)
        self.fingerprinter: Any = None if read_only else _fingerprinter(self.log, fingerprint)
        self._capture = CapturePipeline(
            store,
            keystore,
            signer,
            self.log.seal,
            self._drafts,
            writer_store=writer_store(store, self.privacy),
            privacy=self.privacy,
            fingerprinter=self.fingerprinter,
            on_batch=self._after_batch,
            policy=policy,
            durable=durable,
            journal=Path(journal_path)
            if journal_path
            else default_journal(store, home_of(keystore)),
            read_only=read_only,
            hash_user_ids=hash_user_ids,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            signing_processes=signing_processes,
        )
        self.unreplayed = self._capture.unreplayed
        self._closed = False
        try:
            for problem in self.log.checkpoint_problems():
                log.error("provmark: %s: %s: %s", store, problem.kind, problem.detail)
        except ProvmarkError as exc:  # a damaged store still opens: audit tells what is wrong
            log.error("provmark: %s: cannot compare with the checkpoints seen: %s", store, exc)
        ref = weakref.ref(self)

        def flush_at_exit() -> None:
            pm = ref()
            if pm is not None:
                pm.close()

        self._atexit = flush_at_exit
        atexit.register(self._atexit)  # records captured without close() still reach the store

    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str] | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        keystore: KeyStore | None = None,
        **options: Any,
    ) -> Provmark:
        """:func:`provmark.open` for a store only (a SQLite file or a ``postgresql://`` URL),
        typed as the embedded client; a server URL is a :class:`ConfigError`."""
        text = resolve_target(target)
        if text.startswith(("http://", "https://")):
            raise ConfigError(
                f"{text} is a provmark server; this needs a store",
                field="target",
                hint="give a SQLite file or a postgresql:// URL",
            )
        if keystore is None and os.environ.get("PROVMARK_PKCS11_TOKEN"):
            from .crypto.pkcs11 import Pkcs11KeyStore  # keys held in an HSM

            keystore = Pkcs11KeyStore.from_env(Path(home) if home else None)
        read_only = bool(options.get("read_only"))
        if keystore is None:
            keystore = FileKeyStore(Path(home) / "keys" if home else None, create=not read_only)
        store = open_store(text, create=not read_only)
        try:
            return cls(store, keystore, **options)
        except BaseException:
            store.close()
            raise

    # ------------------------------------------------------------ capture settings
    @property
    def policy(self) -> Policy:
        """``strict`` (a capture that fails raises) or ``best_effort`` (it logs)."""
        return self._capture.policy

    @property
    def capture_failures(self) -> int:
        """Captures that failed since open (under ``best_effort`` they were only logged)."""
        return self._capture.capture_failures

    @capture_failures.setter
    def capture_failures(self, value: int) -> None:  # integrations count their own failures
        self._capture.capture_failures = value

    @property
    def hash_user_ids(self) -> bool:
        return self._capture.hash_user_ids

    @property
    def signer(self) -> Signer:
        """The current record-signing key."""
        return self._capture.signer

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Provmark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until every captured record is signed, stored and logged."""
        self._capture.flush(timeout)

    def _after_batch(self, checkpoint: StoredCheckpoint, count: int) -> None:
        # fingerprints are written by their own thread (softbind.background)
        with contextlib.suppress(Exception):  # never stops the writer
            self.log.remember_checkpoint(every=1.0)

    @property
    def store(self) -> Store:
        return self.log.store

    @property
    def keystore(self) -> KeyStore:
        return self.log.keystore

    @property
    def log_verifier(self) -> NoteVerifier:
        return self.log.log_verifier

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        try:
            self._capture.close()
            with contextlib.suppress(Exception):  # only the rollback protection is lost
                self.log.remember_checkpoint()
        finally:
            self._capture.close_privacy()
            self.store.close()

    def __repr__(self) -> str:
        return f"Provmark({self.store!r})"

    # ------------------------------------------------------------ capture
    @overload
    def capture(self, fn: F) -> F: ...
    @overload
    def capture(self, fn: None = None, **spec: Any) -> Callable[[F], F]: ...

    def capture(self, fn: F | None = None, **spec: Any) -> F | Callable[[F], F]:
        """Decorator: record every call of the function. See :class:`Spec` for options."""
        if fn is not None and not spec:
            raise ConfigError("capture needs model=...: use @pm.capture(model=provmark.Model(...))")
        built = self._spec(**spec)

        def decorate(f: F) -> F:
            return wrap(self, f, built)

        return decorate(fn) if fn is not None else decorate

    def record(
        self, *, input: Any = None, params: Mapping[str, Any] | None = None, **spec: Any
    ) -> Recording:
        """Context manager: ``with pm.record(model=m, input=prompt) as rec: rec.set_output(x)``."""
        return Recording(self, self._spec(**spec), input=input, params=params)

    def _spec(self, *, model: Model | str | dict[str, Any], **options: Any) -> Spec:
        return self._drafts.spec(model=model, **options)

    def acting_for(self, user_id: str) -> contextlib.AbstractContextManager[None]:
        """Records captured inside name ``user_id`` as the actor."""
        return self._drafts.acting_for(user_id)

    def context(self) -> Fragment:
        return self._drafts.context()

    def emit(self, outcome: Outcome) -> str:
        """Turn an outcome into an unsigned record and queue it. Used by capture."""
        return self._capture.emit(outcome)

    def ingest(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        wait: bool = True,
        timeout: float = 60.0,
        protect: bool = True,
    ) -> list[str]:
        """Sign, store and log records built elsewhere (the server's batch API).

        Every record is validated first (:mod:`provmark.capture.intake`: the record model, the
        I-JSON limits, no record id twice); one invalid record rejects the whole batch
        with :class:`~provmark.errors.InvalidBatch` naming every ``[i].field``, and nothing
        is stored. Records whose id is already stored are skipped (idempotent).
        With ``wait`` this returns once the batch is stored and logged; a record the
        store itself refuses is dead-lettered and raises
        :class:`~provmark.errors.RecordsRefused` (the others of the batch are stored).
        With ``protect`` (and redaction on) an input snapshot sent by a client is
        redacted and sealed exactly like one captured here, before it is signed (text
        values of ``params`` always are, see docs/privacy.md).
        """
        return self._capture.ingest(records, wait=wait, timeout=timeout, protect=protect)

    def validate(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """The drafts ``ingest`` would sign, or :class:`~provmark.errors.InvalidBatch`
        naming every invalid record: the one validation at the door, also used by the
        server's queue mode before it answers 202 (see :mod:`provmark.capture.intake`);
        a ``generated_at`` outside the signing key's validity window is invalid too."""
        return self._capture.validate(records)

    def hash_user_id(self, user_id: str) -> str:
        return self._capture.hash_user_id(user_id)

    # ------------------------------------------------------------ log
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self.log.latest_checkpoint()

    def public_keys(self) -> list[PublicKey]:
        return self.log.public_keys()

    def rotate_keys(self, alg: str | None = None) -> PublicKey:
        """Start a new record-signing key; records signed before stay verifiable."""
        self.flush()
        key = self.keystore.rotate("records", alg)
        self._capture.signer = self.keystore.signer("records")
        self.store.put_public_keys(self.keystore.public_keys())
        self.log.keys_changed()
        return key

    # ------------------------------------------------------------ read
    def get(self, record_id: str) -> Record:
        """A record by id or slug (``pm-YYYYMMDD-xxxxxx``)."""
        self.flush()
        stored = self.store.get(record_id)
        if stored is None:
            raise NotFoundError(f"no record {record_id!r}")
        return stored.record()

    def find(self, query: Query | None = None, **filters: Unpack[Filters]) -> Page[Record]:
        """Records matching every filter (:class:`~provmark.store.base.Filters`), newest
        first, ``limit`` at a time; or a whole :class:`~provmark.store.base.Query` (times
        as RFC 3339) built once and reused."""
        self.flush()
        built = query_of(query, filters, lambda o: digest_output(o, self.encoders).sha256)
        page = self.store.find(built)
        return Page([r.record() for r in page.records], page.next_cursor)

    # ------------------------------------------------------------ verify
    def verify_fuzzy(self, content: Any, media_type: str | None = None) -> Any:
        """Find the record of edited, quoted or re-encoded content (soft binding).

        Returns a ``softbind.FuzzyResult``: ``identical`` (signed and proven),
        ``derived`` (similarity and matching parts: a lead, not a proof),
        ``no_match`` or ``too_short``.
        """
        from .softbind import fuzzy_verify

        return fuzzy_verify(self, content, media_type=media_type, fingerprinter=self.fingerprinter)

    @overload
    def verify(
        self,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
        fuzzy: Literal[False] = False,
        c2pa_trust: Any = None,
    ) -> Verified: ...
    @overload
    def verify(self, content: Any, *, fuzzy: Literal[True]) -> FuzzyResult: ...

    def verify(
        self,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
        fuzzy: bool = False,
        c2pa_trust: Any = None,
    ) -> Verified | FuzzyResult:
        """Was ``content`` made here, by what, and is it intact?

        ``content`` is hashed by the output rules (``str`` as UTF-8, bytes,
        ``Path`` as file contents). Returns :class:`Verified` or raises
        :class:`VerificationError` naming the failed check. With ``fuzzy=True``
        edited copies are looked for too (:meth:`verify_fuzzy`).
        """
        if fuzzy:
            return self.verify_fuzzy(content)  # type: ignore[no-any-return]
        report = self.report(
            content,
            record_id=record_id,
            trusted_checkpoint=trusted_checkpoint,
            c2pa_trust=c2pa_trust,
        )
        return report.raise_for_failure()

    def report(
        self,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
        policy: TrustPolicy | None = None,
        c2pa_trust: Any = None,
    ) -> Report:
        """Every check of :meth:`verify` as a :class:`~provmark.verification.Report`.

        A file (``Path``) whose bytes are no recorded output but which carries a C2PA
        manifest (embedded or a ``.c2pa`` sidecar) is judged by its manifest: it must be
        the recorded output once the manifest is removed (hard binding), or be signed by
        a certificate chaining to ``c2pa_trust`` (PEM anchors or paths), never just by
        any valid signature (see ``docs/trust-model.md``).
        """
        from .verification.store import verify_content

        sha = digest_output(content, self.encoders).sha256
        return verify_content(
            self.log,
            sha,
            content,
            record_id=record_id,
            trusted_checkpoint=trusted_checkpoint,
            policy=policy,
            c2pa_trust=c2pa_trust,
        )

    def verify_digest(
        self,
        sha256: str,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
    ) -> Verified:
        """:meth:`verify` given the content's SHA-256 (what the server's verify endpoint has)."""
        report = self.verification(
            sha256, record_id=record_id, trusted_checkpoint=trusted_checkpoint
        )
        return report.raise_for_failure()

    def verification(
        self,
        sha256: str | None,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
        policy: TrustPolicy | None = None,
        prechecks: Sequence[CheckResult] = (),
    ) -> Report:
        """Every check for content (its SHA-256) or for a named record (``sha256=None``),
        as a :class:`~provmark.verification.Report`: pass / fail / not run with the reason.
        Revocations of this key set always apply; ``policy`` adds witnesses and timestamps."""
        from .verification.store import verify_stored

        return verify_stored(
            self.log,
            sha256,
            record_id=record_id,
            trusted_checkpoint=trusted_checkpoint,
            policy=policy,
            prechecks=prechecks,
        )

    def bundle(self, record_id: str) -> dict[str, Any]:
        """An offline bundle: verifiable with no server and no database."""
        from .bundle import make_bundle

        self.flush()
        stored = self.store.get(record_id)
        if stored is None:
            raise NotFoundError(f"no record {record_id!r}")
        return make_bundle(self.log, stored)

    def stats(self) -> dict[str, Any]:
        s = self.store.stats()
        capture = self._capture.stats()
        stuck = capture.pop("writer_stuck_seconds")
        s.update(capture, dead_letters=self.dead_letter_count(), writer_stuck_seconds=stuck)
        return s

    def dead_letter_count(self) -> int:
        """Records the store refused and the writer set aside (``store.deadletters``)."""
        return self.store.dead_letter_count() if isinstance(self.store, DeadLetterStore) else 0

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters: record id, when, why, how often (newest first)."""
        return self.store.dead_letters(limit) if isinstance(self.store, DeadLetterStore) else []

    def writer_stuck_for(self) -> float:
        """Seconds the writer has been failing to store the records it holds (0: it is not)."""
        return self._capture.writer_stuck_for()

    # ------------------------------------------------------------ privacy
    def view(self, role: str, *, principal: str, reason: str | None = None) -> RecordView:
        """What ``principal`` may see and do in ``role``: ``auditor`` (decrypted, every
        decrypted read logged), ``developer`` (sanitized), ``admin`` (sanitized, plus keys,
        erasure, access log) or ``ingest`` (write only). See ``docs/privacy.md``."""
        from .privacy.views import RecordView

        return RecordView(self, role, principal=principal, reason=reason)

    def erase(
        self, subject: str, *, reason: str | None = None, principal: str | None = None
    ) -> Erasure:
        """Crypto-shred a subject (a user id, or a tenant): destroy its data keys, so every
        field encrypted for it is unreadable, while every record still verifies. The
        erasure is itself recorded (operation ``erasure``, subject as HMAC). Idempotent."""
        from .privacy.erasure import erase

        return erase(self, subject, reason=reason, principal=principal)


def _fingerprinter(service: Log, wanted: bool | None) -> Any:
    """Soft-binding fingerprints at capture: on by default where they can be."""
    if wanted is False:
        return None
    try:
        from .softbind import BackgroundFingerprinter, Fingerprinter

        return BackgroundFingerprinter(Fingerprinter.for_provmark(service))
    except (ImportError, ProvmarkError) as exc:
        if wanted:
            raise
        log.info("provmark: outputs are not fingerprinted (%s)", exc)
        return None


def open(
    target: str | os.PathLike[str] | None = None,
    *,
    token: str | None = None,
    home: str | os.PathLike[str] | None = None,
    keystore: KeyStore | None = None,
    **options: Any,
) -> ProvenanceClient:
    """Open provenance storage: a SQLite file path, a ``postgresql://`` URL or ``http(s)://``.

    Keys live in ``home``/keys (default ``$PROVMARK_HOME``, else ``~/.provmark``)
    and are created on first use (never with ``read_only=True``, which also never creates
    or changes a store: a missing, empty or foreign one is a :class:`StoreError`).

    Both kinds answer the :class:`~provmark.ProvenanceClient` API (capture, get, find,
    verify, bundle, keys, checkpoints). The store-only features (role views, erasure,
    evidence, the log itself) are on the embedded client: ``Provmark.open(...)`` returns it,
    typed as such.
    """
    text = resolve_target(target)
    if text.startswith(("http://", "https://")):
        try:
            from .remote import open_remote
        except ImportError as exc:
            raise ConfigError(f"remote provmark servers need provmark[remote]: {exc}") from None
        options.pop("read_only", None)  # the server decides what this token may do
        return open_remote(text, token=token, home=home, **options)
    return Provmark.open(text, home=home, keystore=keystore, **options)
