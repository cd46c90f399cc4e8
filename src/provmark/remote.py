"""``provmark.open("http://host:port", token=...)``: the same user API over HTTP.

Capture works exactly as with the embedded store (the same decorator, context
manager and draft building); records are sent to ``POST /v1/records`` in batches
by a background thread, and the server signs and logs them. Reads (``get``,
``find``, ``verify``, ``bundle``) are HTTP calls.

Delivery guarantees:

* **never duplicated**: record ids are idempotency keys; a batch sent again after a
  timeout or a crash is skipped by the server.
* **never dropped**: when the server cannot be reached (or answers 5xx/429), the
  batch and everything queued behind it is appended to a local journal and
  fsync'd; the sender retries with exponential backoff and replays the journal
  when the server is back. The journal is sealed (AES-256-GCM under the
  ``remote-journal`` secret of ``$PROVMARK_HOME/keys``) and its files are 0600: it holds
  prompts as captured, which the server redacts and seals. ``close()`` with the
  server down leaves the records in the journal; the next ``open`` of the same URL
  replays them. Each process takes
  its own journal file (``<home>/remote/<url hash>/<n>.jsonl``, under an exclusive
  lock) and adopts the files of processes that died.
* records the server refuses as invalid (422 naming ``[i]``) are dropped one by one,
  logged and counted in ``rejected``; the rest of the batch is sent again.
* a bad token (401/403) keeps everything in the journal and makes ``flush`` raise.
* ``senders`` (default 2) requests are in flight at once, so that the server works on
  one batch while the next travels (see docs/performance.md).

Records still in memory (normally less than ``flush_interval`` old) are lost if the
process is killed with SIGKILL before they are sent or spilled.

Privacy: input snapshots leave this process as text, after ``redactor=`` (anything
with ``redact_text(text).text``) when one is given; the server signs what it receives.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, TypeVar, Unpack, overload

import httpx

from ._internal.remote_journal import Journal, journal_key
from ._internal.remote_sender import Sender, _problem
from .canonical import canonical_bytes
from .capture.core import Outcome, Recording, not_captured, wrap
from .capture.draft import Draft
from .capture.drafts import DraftBuilder
from .capture.hashing import digest_output
from .crypto.keys import PublicKey
from .crypto.keystore import default_home
from .errors import (
    ConfigError,
    NotFoundError,
    ProvmarkError,
    RecordError,
    StoreError,
    VerificationError,
)
from .record import Record
from .store.base import Filters, Page, Query, StoredCheckpoint, query_of
from .verify import Check, Verified

log = logging.getLogger("provmark.remote")
F = TypeVar("F", bound=Callable[..., Any])


def _raise_for(response: httpx.Response) -> None:
    """Map an HTTP error answer to the provmark error hierarchy."""
    if response.status_code < 400:
        return
    p = _problem(response)
    detail = str(p.get("detail") or response.reason_phrase)
    status = response.status_code
    if status in (401, 403):
        raise ConfigError(f"server refused the token ({status}): {detail}")
    if status == 404:
        raise NotFoundError(detail)
    if status in (400, 413, 422):
        if p.get("field"):
            raise RecordError(str(p["field"]), str(p.get("reason") or detail))
        raise ConfigError(detail)
    raise StoreError(f"server error {status}: {detail}")


_NOT_PAYLOAD = ("slug", "view", "redacted", "signature", "log")


def _record(data: Mapping[str, Any]) -> Record:
    clean = {k: v for k, v in data.items() if k not in ("slug", "view", "redacted")}
    return Record.model_validate(clean)


class RemoteProvmark:
    """What ``provmark.open("http(s)://...")`` returns; see the module doc."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        policy: Literal["strict", "best_effort"] = "strict",
        actor: Mapping[str, str] | None = None,
        packages: Sequence[str] | None = None,
        config: Mapping[str, Any] | None = None,
        redactor: Any = None,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_queue: int = 50_000,
        timeout: float = 30.0,
        retry_max: float = 30.0,
        journal_dir: str | os.PathLike[str] | None = None,
        close_timeout: float = 10.0,
        senders: int = 2,
        home: str | os.PathLike[str] | None = None,
        provider: str | None = None,
        fingerprint: bool | None = None,
    ) -> None:
        """``fingerprint=True`` sends the soft-binding sketch of each text output with its
        record (computed on the caller's thread, so off unless asked; docs/soft-binding.md)."""
        if policy not in ("strict", "best_effort"):
            raise ConfigError(f"policy must be 'strict' or 'best_effort', not {policy!r}")
        self.url = url.rstrip("/")
        self.policy = policy
        self.fingerprint = bool(fingerprint)
        self.capture_failures = 0
        token = token or os.environ.get("PROVMARK_TOKEN")
        headers = {"user-agent": "provmark-remote/1"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        from .disclosure.config import default_provider  # SB 942 provider for models naming none

        options: dict[str, Any] = {
            "actor": actor,
            "config": config,
            "provider": default_provider(provider, home),
        }
        if packages is not None:
            options["packages"] = packages
        self._drafts = DraftBuilder(**options)
        self.encoders = self._drafts.encoders
        url_hash = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        home_dir = Path(home) if home else default_home()
        base = Path(journal_dir) if journal_dir else home_dir / "remote" / url_hash
        self._origin: str | None = None
        self._sender = Sender(
            self._http,
            Journal(base, journal_key(home_dir)),
            redactor=redactor,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            retry_max=retry_max,
            close_timeout=close_timeout,
            senders=senders,
        )

    def __repr__(self) -> str:
        return f"RemoteProvmark({self.url!r})"

    def __enter__(self) -> RemoteProvmark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ capture
    @overload
    def capture(self, fn: F) -> F: ...
    @overload
    def capture(self, fn: None = None, **spec: Any) -> Callable[[F], F]: ...

    def capture(self, fn: F | None = None, **spec: Any) -> F | Callable[[F], F]:
        """Decorator: record every call of the function (as ``Provmark.capture``)."""
        if fn is not None and not spec:
            raise ConfigError("capture needs model=...: use @pm.capture(model=provmark.Model(...))")
        built = self._drafts.spec(**spec)

        def decorate(f: F) -> F:
            return wrap(self, f, built)

        return decorate(fn) if fn is not None else decorate

    def record(
        self, *, input: Any = None, params: Mapping[str, Any] | None = None, **spec: Any
    ) -> Recording:
        """Context manager form (as ``Provmark.record``)."""
        return Recording(self, self._drafts.spec(**spec), input=input, params=params)

    def acting_for(self, user_id: str) -> AbstractContextManager[None]:
        """Records captured inside name ``user_id`` as the actor."""
        return self._drafts.acting_for(user_id)

    def emit(self, outcome: Outcome) -> str:
        """Turn an outcome into an unsigned record and queue it for sending."""
        try:
            draft = self._drafts.build(outcome)
            if self.fingerprint and isinstance(outcome.output, str) and outcome.error is None:
                from .softbind.client_prints import attach

                attach(draft.record, outcome.output)
            self._sender.submit([draft])
        except ProvmarkError as exc:
            self.capture_failures += 1
            return not_captured(self.policy, exc, log)
        return draft.record_id

    def ingest(
        self, records: Sequence[Mapping[str, Any]], *, wait: bool = True, timeout: float = 60.0
    ) -> list[str]:
        """Send records built elsewhere; with ``wait``, return once the server stored them."""
        drafts = [Draft(dict(r)) for r in records]
        ids = [str(d.record.get("record_id")) for d in drafts]
        self._sender.submit(drafts)
        if wait:
            self.flush(timeout)
        return ids

    # ------------------------------------------------------------ delivery
    @property
    def journal(self) -> Journal:
        """Records the server has not acknowledged, kept on disk."""
        return self._sender.journal

    @property
    def rejected(self) -> list[tuple[str, str]]:
        """(record id, reason) of records the server refused as invalid."""
        return self._sender.rejected

    @property
    def last_error(self) -> str | None:
        return self._sender.last_error

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by the server (memory + in flight + journal)."""
        return self._sender.pending

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until the server has stored every record captured so far."""
        self._sender.flush(timeout)

    def close(self) -> None:
        """Send what can be sent within ``close_timeout``; keep the rest in the journal."""
        try:
            self._sender.close()
        finally:
            self._http.close()

    # ------------------------------------------------------------ read
    def _get(self, path: str, **params: Any) -> Any:
        try:
            r = self._http.get(path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.url} unreachable: {exc}") from None
        _raise_for(r)
        return r.json()

    def get(self, record_id: str) -> Record:
        """A record by id or slug (the sanitized view for developer tokens)."""
        self.flush()
        return _record(self._get(f"/v1/records/{record_id}"))

    def find(self, query: Query | None = None, **filters: Unpack[Filters]) -> Page[Record]:
        """Records matching every filter, newest first (as ``Provmark.find``)."""
        self.flush()
        q = query_of(query, filters, lambda o: digest_output(o, self.encoders).sha256)
        params: dict[str, Any] = {
            "output": q.output,
            "model": q.model,
            "actor": q.actor,
            "operation": q.operation,
            "status": q.status,
            "since": q.since,
            "until": q.until,
            "limit": q.limit,
            "cursor": q.cursor,
            "order": q.order,
            "tag": [f"{k}={v}" for k, v in q.tags.items()] or None,
        }
        page = self._get("/v1/records", **params)
        return Page([_record(r) for r in page["records"]], page.get("next_cursor"))

    def verify(
        self,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
    ) -> Verified:
        """Ask the server to verify ``content`` (only its SHA-256 is sent)."""
        import base64

        self.flush()
        body: dict[str, Any] = {"sha256": digest_output(content, self.encoders).sha256}
        if record_id is not None:
            body["record_id"] = record_id
        if trusted_checkpoint is not None:
            size, root = trusted_checkpoint
            body["trusted_checkpoint"] = (
                f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\n"
            )
        try:
            r = self._http.post("/v1/verify", json=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.url} unreachable: {exc}") from None
        _raise_for(r)
        answer = r.json()
        if not answer.get("verified"):
            raise VerificationError(str(answer.get("failed_check")), str(answer.get("reason")))
        shown = answer["record"]
        payload = {k: v for k, v in shown.items() if k not in _NOT_PAYLOAD}
        return Verified(
            payload=canonical_bytes(payload),  # the signed bytes, unless the view is sanitized
            signature=dict(shown["signature"]),
            checks=[
                Check(c["check"], c["result"] == "pass", c["detail"]) for c in answer["checks"]
            ],
            index=int(answer["log_index"]),
            tree_size=int(answer["tree_size"]),
            checkpoint=str(answer.get("checkpoint", "")),
            leaf_hash=base64.b64decode(shown["log"]["leaf_hash"]),
        )

    def bundle(self, record_id: str) -> dict[str, Any]:
        """The offline bundle (auditors; developers when the bundle hides nothing)."""
        self.flush()
        data: dict[str, Any] = self._get(f"/v1/records/{record_id}/bundle")
        return data

    def public_keys(self) -> list[PublicKey]:
        return [PublicKey.from_json(k) for k in self._get("/.well-known/provmark/keys")["keys"]]

    @property
    def origin(self) -> str:
        if self._origin is None:
            self._origin = str(self._get("/.well-known/provmark/keys")["origin"])
        return self._origin

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The latest signed checkpoint (``None`` while the log is empty), as embedded."""
        import base64

        self.flush()
        try:
            data: dict[str, Any] = self._get("/v1/checkpoints/latest")
        except NotFoundError:
            return None
        return StoredCheckpoint(
            size=int(data["size"]),
            root=base64.b64decode(data["root"]),
            note=str(data["note"]),
            created_at=str(data["created_at"]),
        )

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "remote",
            "url": self.url,
            "pending": self.pending,
            "journal": str(self.journal.path),
            "journaled": self.journal.count,
            "capture_failures": self.capture_failures,
            "rejected": len(self.rejected),
            "last_error": self.last_error,
        }


def open_remote(url: str, token: str | None = None, **options: Any) -> RemoteProvmark:
    """A client of a provmark server; ``token`` defaults to ``$PROVMARK_TOKEN``."""
    for ignored in ("durable", "journal_path", "hash_user_ids", "flush_timeout"):
        if ignored in options:
            raise ConfigError(f"{ignored}= does not apply to a remote server (see provmark.remote)")
    try:
        return RemoteProvmark(url, token, **options)
    except TypeError as exc:
        raise ConfigError(f"provmark.open({url!r}): {exc}") from None
