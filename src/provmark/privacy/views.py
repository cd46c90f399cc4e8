"""Role views: what each role may read and do, enforced in the library.

``pm.view(role, principal=..., reason=...)`` returns a :class:`RecordView`. Its
``get``/``find``/``verify``/``bundle`` take the same arguments as ``Provmark``'s:

=========  ===============================================================
auditor    full records: encrypted fields decrypted (each read logged first)
developer  sanitized records: detectors over free text, user ids hashed,
           no decrypted values (the ``$encrypted`` references carry only HMACs)
admin      the developer's records, plus keys, erasure and the access log
ingest     write only: ``ingest``; every read raises :class:`AccessDenied`
=========  ===============================================================

A server builds one view per request from the caller's token and never touches
``Provmark`` reads directly (see ``docs/privacy.md``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from ..canonical import canonical_bytes
from ..capture.drafts import json_text
from ..crypto.keys import PublicKey
from ..errors import ConfigError, VerificationError
from ..record import (
    MAX_SNAPSHOT_CHARS,
    MAX_TAG_CHARS,
    Record,
    is_record_id,
    record_from_payload,
)
from ..redaction import HMAC_PREFIX, Action, Policy, Redactor
from ..store.base import Filters, Page, Query
from ..verify import Check, Verified
from .base import AccessEntry, AccessRequest, Erasure, KeyInfo, Revealed, Status, Vault
from .engine import ENCRYPTED_KEY, default_policy
from .errors import AccessDenied

if TYPE_CHECKING:
    from ..crypto.keystore import KeyStore
    from .engine import Privacy

__all__ = ["ROLES", "RecordView", "ViewedClient", "sanitize_document", "sanitizer"]

ROLES = ("auditor", "developer", "ingest", "admin")
_READ = frozenset({"auditor", "developer", "admin"})
_LOG_READERS = frozenset({"auditor", "admin"})

#: The sanitized view denies by default: every string of a record goes through the PII
#: detectors except these fields, which are structural (ids, hashes, times, sizes,
#: versions, the signature) and safe to show as stored. Anything not listed here, a new
#: field included, is sanitized.
_SAFE_FIELDS = (
    "record_id", "schema_version", "started_at", "generated_at", "operation", "status",
    "error.type",
    "model.name", "model.version", "model.provider", "model.revision", "model.digest",
    "model.files.*.sha256", "model.files.*.size",
    "input.sha256", "input.media_type", "input.size", "input.datasets.*.sha256",
    "output.sha256", "output.size", "output.media_type",
    "outputs.*.sha256", "outputs.*.size", "outputs.*.media_type",
    "context.python", "context.platform", "context.packages", "context.gpu",
    "context.git.commit", "context.git.dirty", "context.container.digest",
    "actor.user_id",  # hashed below (HMAC), never shown as captured
    "usage", "fallback.requested_model", "fallback.served_model",
    "signature", "log", f"extra.{ENCRYPTED_KEY}",
)  # fmt: skip


class ViewedClient(Protocol):
    """What a :class:`RecordView` reads and does through: the embedded client."""

    @property
    def privacy(self) -> Privacy | None: ...
    @property
    def keystore(self) -> KeyStore: ...
    def hash_user_id(self, user_id: str) -> str: ...
    def get(self, record_id: str) -> Record: ...
    def find(self, query: Query | None = None, **filters: Unpack[Filters]) -> Page[Record]: ...
    def verify(
        self,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
    ) -> Verified: ...
    def bundle(self, record_id: str) -> dict[str, Any]: ...
    def ingest(
        self, records: Sequence[Mapping[str, Any]], *, wait: bool = True, timeout: float = 60.0
    ) -> list[str]: ...
    def erase(
        self, subject: str, *, reason: str | None = None, principal: str | None = None
    ) -> Erasure: ...
    def public_keys(self) -> list[PublicKey]: ...
    def rotate_keys(self, alg: str | None = None) -> PublicKey: ...


def sanitizer(pm: ViewedClient) -> Redactor:
    """The redactor of the sanitized view: the store's detectors and HMAC key, over every
    field but :data:`_SAFE_FIELDS`."""
    privacy = pm.privacy
    base = privacy.policy if privacy is not None else default_policy()
    key = privacy.hmac_key if privacy is not None else pm.keystore.secret("redaction")
    fields = {path: Action.KEEP for path in _SAFE_FIELDS}
    policy = Policy(Action.REDACT, fields, base.detectors, base.mode)
    return Redactor(policy, key)


def sanitize_document(pm: ViewedClient, redactor: Redactor, data: dict[str, Any]) -> dict[str, Any]:
    """The developer/admin view of a record's payload dict: what ``pm.view``, the server's
    API and the web UI all show (one code path)."""
    clean: dict[str, Any] = redactor.redact_document(data).doc
    parents, shown = data.get("parents"), clean.get("parents")
    if isinstance(parents, list) and isinstance(shown, list) and len(parents) == len(shown):
        # A parent that is a record id is a link, as structural as record_id: the detectors
        # only damage it (about 1 random UUIDv7 in 2,000 holds a Luhn-valid card number).
        clean["parents"] = [
            p if isinstance(p, str) and is_record_id(p) else s
            for p, s in zip(parents, shown, strict=True)
        ]
    # Placeholders can be longer than what they replace: keep the schema's limits.
    for part, key, limit in (
        ("input", "snapshot", MAX_SNAPSHOT_CHARS),
        ("error", "message", 2048),
    ):
        value = (clean.get(part) or {}).get(key)
        if isinstance(value, str) and len(value) > limit:
            clean[part][key] = value[:limit]
    if isinstance(clean.get("tags"), dict):
        clean["tags"] = {k: str(v)[:MAX_TAG_CHARS] for k, v in clean["tags"].items()}
    actor = clean.get("actor")
    if isinstance(actor, dict) and actor.get("user_id"):
        user = str(actor["user_id"])
        if not user.startswith(HMAC_PREFIX):
            actor["user_id"] = pm.hash_user_id(user)
    return clean


class RecordView:
    """One principal's window on a ``Provmark``, limited by role."""

    def __init__(
        self, pm: ViewedClient, role: str, *, principal: str, reason: str | None = None
    ) -> None:
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not principal or not isinstance(principal, str):
            raise ConfigError("principal: say who is reading (a user or token name)")
        self._pm = pm
        self.role = role
        self.principal = principal
        self.reason = reason
        self._sanitizer: Redactor | None = None

    def __repr__(self) -> str:
        return f"RecordView(role={self.role!r}, principal={self.principal!r})"

    def _need(self, roles: frozenset[str] | set[str], action: str) -> None:
        if self.role not in roles:
            raise AccessDenied(self.role, action)

    # ------------------------------------------------------------ reads
    def get(self, record_id: str) -> Record:
        self._need(_READ, "read records")
        return self._shown([self._pm.get(record_id)])[0]

    def find(self, query: Query | None = None, **filters: Unpack[Filters]) -> Page[Record]:
        """``Provmark.find``, each record shown as this role may see it."""
        self._need(_READ, "read records")
        page = self._pm.find(query, **filters)
        return Page(self._shown(page.records), page.next_cursor)

    def verify(
        self,
        content: Any,
        *,
        record_id: str | None = None,
        trusted_checkpoint: tuple[int, bytes] | None = None,
    ) -> Verified:
        """Checks run on the stored signed bytes; the record shown is this role's view.
        A sanitized ``Verified`` carries the sanitized payload and a ``view`` check."""
        self._need(_READ, "verify records")
        v = self._pm.verify(content, record_id=record_id, trusted_checkpoint=trusted_checkpoint)
        shown = self._shown([v.record])[0]
        if shown == v.record:
            return v
        if self.role == "auditor":
            out = dataclasses.replace(v)
        else:
            out = dataclasses.replace(
                v,
                payload=canonical_bytes(shown.payload_dict()),
                checks=[*v.checks, Check("view", True, "sanitized copy of the verified record")],
            )
        out.__dict__["record"] = shown  # the cached_property's slot
        return out

    def bundle(self, record_id: str) -> dict[str, Any]:
        """The offline bundle (signed bytes, verbatim). Developers and admins get it only
        when the sanitized view of the record equals the record itself."""
        self._need(_READ, "export bundles")
        bundle = self._pm.bundle(record_id)
        if self.role != "auditor":
            changed = _changed(bundle["record"], self._sanitize_json(bundle["record"]))
            if changed:
                raise AccessDenied(
                    self.role,
                    "export this bundle",
                    f"its signed bytes hold unsanitized fields ({', '.join(changed)}); "
                    "ask an auditor",
                )
        return bundle

    def reveal(self, record_id: str) -> dict[str, Revealed]:
        """The encrypted fields of one record by path (auditor; logged)."""
        self._need({"auditor"}, "decrypt fields")
        rec = self._pm.get(record_id)
        found = self._decrypt([rec])
        return {path: r for (rid, path), r in found.items() if rid == rec.record_id}

    # ------------------------------------------------------------ writes and admin
    def ingest(
        self, records: Sequence[Mapping[str, Any]], *, wait: bool = True, timeout: float = 60.0
    ) -> list[str]:
        self._need({"ingest"}, "write records")
        return self._pm.ingest(records, wait=wait, timeout=timeout)

    def erase(self, subject: str, *, reason: str | None = None) -> Erasure:
        self._need({"admin"}, "erase subjects")
        return self._pm.erase(subject, reason=reason or self.reason, principal=self.principal)

    def keys(self, subject: str | None = None, limit: int = 100) -> list[KeyInfo]:
        """Data keys (metadata only); ``subject`` as given or already hashed."""
        self._need({"admin"}, "list data keys")
        privacy = self._pm.privacy
        if privacy is None or privacy.vault is None:
            return []
        hashed = privacy.hash_subject(subject) if subject else None
        return privacy.vault.keys(hashed, limit)

    def public_keys(self) -> list[PublicKey]:
        return self._pm.public_keys()

    def rotate_keys(self, alg: str | None = None) -> PublicKey:
        self._need({"admin"}, "rotate keys")
        return self._pm.rotate_keys(alg)

    def access_log(
        self,
        *,
        record_id: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AccessEntry]:
        self._need(_LOG_READERS, "read the access log")
        vault = self._vault()
        return vault.access_log(record_id=record_id, principal=principal, since=since, limit=limit)

    def verify_access_log(self) -> int:
        self._need(_LOG_READERS, "read the access log")
        return self._vault().verify_access_log()

    # ------------------------------------------------------------ internals
    def _vault(self) -> Vault:
        privacy = self._pm.privacy
        if privacy is None or privacy.vault is None:
            raise ConfigError("field encryption is off for this store: there is no access log")
        return privacy.vault

    def _shown(self, records: list[Record]) -> list[Record]:
        if self.role == "auditor":
            found = self._decrypt(records)
            return [_with_revealed(r, found, self._pm) for r in records]
        return [self._sanitize(r) for r in records]

    def _decrypt(self, records: list[Record]) -> dict[tuple[str, str], Revealed]:
        wanted = [(r.record_id, path) for r in records for path in _encrypted_paths(r)]
        if not wanted:
            return {}
        privacy = self._pm.privacy
        if privacy is None or privacy.vault is None:
            return {f: Revealed(f[0], f[1], Status.MISSING) for f in wanted}
        reason = privacy.redact_text(self.reason) if self.reason else None
        by_record: dict[str, list[str]] = {}
        for rid, path in wanted:
            by_record.setdefault(rid, []).append(path)
        privacy.vault.log_access(  # logged before anything is decrypted
            [
                AccessRequest(self.principal, self.role, "decrypt", rid, tuple(paths), reason)
                for rid, paths in by_record.items()
            ]
        )
        return privacy.vault.reveal(wanted)

    def _sanitize_json(self, data: dict[str, Any]) -> dict[str, Any]:
        if self._sanitizer is None:
            self._sanitizer = sanitizer(self._pm)
        return sanitize_document(self._pm, self._sanitizer, data)

    def _sanitize(self, rec: Record) -> Record:
        data = rec.payload_dict()
        clean = self._sanitize_json(data)
        if clean == data:
            return rec
        return record_from_payload(
            clean,
            signature=rec.signature.model_dump() if rec.signature else None,
            log=rec.log.model_dump() if rec.log else None,
        )


def _encrypted_paths(rec: Record) -> list[str]:
    refs = rec.extra.get(ENCRYPTED_KEY)
    if not isinstance(refs, list):
        return []
    return [str(r["$encrypted"]) for r in refs if isinstance(r, dict) and "$encrypted" in r]


def _changed(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for k in sorted(set(before) | set(after)):
            out += _changed(before.get(k), after.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if before == after else [path or "$"]


def _with_revealed(
    rec: Record, found: Mapping[tuple[str, str], Revealed], pm: ViewedClient
) -> Record:
    refs = rec.extra.get(ENCRYPTED_KEY)
    if not isinstance(refs, list) or not refs:
        return rec
    privacy = pm.privacy
    snapshot = rec.input.snapshot
    message = rec.error.message if rec.error else None
    nested: list[tuple[str, Any]] = []
    params_found: dict[str, Any] = {}
    shown_refs = []
    for ref in refs:
        path = str(ref.get("$encrypted", "")) if isinstance(ref, dict) else ""
        got = found.get((rec.record_id, path))
        if got is None:
            shown_refs.append(ref)
            continue
        shown_refs.append({**ref, "status": got.status.value})
        if got.status is not Status.DECRYPTED:
            continue
        if privacy is not None and privacy.hmac_value(got.value) != ref.get("hmac"):
            raise VerificationError(
                "ciphertext",
                f"record {rec.record_id} field {path}: the decrypted value does not match the "
                "HMAC in the signed record (re-encrypted, or a different redaction key)",
            )
        if path == "input.snapshot":
            value = got.value
            snapshot = value if isinstance(value, str) else json_text(value)
        elif path == "error.message":
            message = str(got.value)
        elif path.startswith("input.snapshot."):
            nested.append((path[len("input.snapshot.") :], got.value))
        elif path.startswith(("params.", "params[")):
            params_found[path] = got.value
    if (
        nested
        and snapshot is not None
        and not any(r.get("$encrypted") == "input.snapshot" for r in refs if isinstance(r, dict))
    ):
        snapshot = _fill(snapshot, nested)
    update: dict[str, Any] = {
        "extra": {**rec.extra, ENCRYPTED_KEY: shown_refs},
        "input": rec.input.model_copy(update={"snapshot": snapshot}),
    }
    if rec.error is not None:
        update["error"] = rec.error.model_copy(update={"message": message})
    if params_found:
        update["params"] = _refill(rec.params, "params", params_found)
    return rec.model_copy(update=update)


def _refill(value: Any, path: str, originals: Mapping[str, Any]) -> Any:
    """``params`` with each sealed value put back at its path (``params.a[0].b``)."""
    if path in originals:
        return originals[path]
    if isinstance(value, Mapping):
        return {k: _refill(v, f"{path}.{k}", originals) for k, v in value.items()}
    if isinstance(value, list):
        return [_refill(v, f"{path}[{i}]", originals) for i, v in enumerate(value)]
    return value


def _fill(snapshot: str, nested: list[tuple[str, Any]]) -> str:
    """Put decrypted values back in place of their references inside a JSON snapshot."""
    try:
        doc = json.loads(snapshot)
    except ValueError:
        return snapshot  # truncated: the values are still in reveal()
    doc = copy.deepcopy(doc)
    for sub, value in nested:
        node: Any = doc
        parts = sub.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.get(part, {})
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict) and last in node:
            node[last] = value
    return json_text(doc)
