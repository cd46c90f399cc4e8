"""What happens to sensitive values of a captured record before it is signed.

:class:`Privacy` runs inside ``CapturePipeline.prepare`` (the writer thread, or the
caller's thread just before the durable journal line):

1. The raw input becomes ``input.snapshot`` after redaction by the policy (built-in
   detectors, keyed HMAC placeholders); the error message is redacted the same way.
2. Where the policy says ``encrypt`` (by default: ``input.snapshot``, the whole
   original prompt) the original value is encrypted for the record's *subject*
   (the actor's ``user_id``, else the ``tenant`` tag, else ``"*"``) and the record
   gets a reference ``{"$encrypted": path, "hmac": "hmac-sha256:<hex>"}`` in
   ``extra["$encrypted"]``. The record (and so its signature and log proofs) never
   depends on the plaintext; the HMAC lets an auditor check a decrypted value.
3. Ciphertexts are written to the vault before the records that reference them:
   at once (durable mode), or by :class:`VaultedStore` just before each batch.

Records given to ``Provmark.ingest`` were built elsewhere and are stored as given.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from ..canonical import Fragment, to_json_value
from ..capture.draft import ABSENT, Draft
from ..capture.drafts import json_text
from ..crypto.fieldenc import LocalMasterKey, MasterKey, encode_value
from ..crypto.keystore import KeyStore
from ..errors import CaptureError, ConfigError, KeyStoreError, StoreError
from ..record import MAX_EXTRA_BYTES, MAX_SNAPSHOT_CHARS
from ..redaction import HMAC_PREFIX, MASKED, Action, Policy, Redactor
from ..redaction.policy import TERMINAL_ACTIONS
from ..store.base import Entry, SealFn, Store, StoredCheckpoint
from .base import UNATTRIBUTED, Plaintext, Vault

__all__ = [
    "ENCRYPTED_KEY",
    "Privacy",
    "TextRedactor",
    "VaultedStore",
    "default_policy",
    "writer_store",
]

log = logging.getLogger("provmark.privacy")

#: Key in ``extra`` listing a record's encrypted fields.
ENCRYPTED_KEY = "$encrypted"
MAX_ERROR_CHARS = 2048
_FAILED = "[REDACTION FAILED]"
_TOP = ("input.snapshot", "error.message", "params")
_PLAIN = (int, float, bool, type(None))


class _HasText(Protocol):
    @property
    def text(self) -> str: ...


class TextRedactor(Protocol):
    """Anything with ``redact_text(text).text`` (a :class:`Redactor`, or your own)."""

    def redact_text(self, text: str) -> _HasText: ...


def default_policy() -> Policy:
    """Built-in detectors everywhere; the whole original prompt is also encrypted."""
    return Policy(fields={"input.snapshot": Action.ENCRYPT, "params": Action.ENCRYPT})


def _effective(policy: Policy, path: str) -> Action:
    """The action a scalar at ``path`` gets, as ``Redactor.redact_document`` decides it."""
    parts = path.split(".")
    inherited = policy.default
    for i in range(1, len(parts) + 1):
        explicit = policy.action_for(parts[:i])
        action = explicit if explicit is not None else inherited
        if action in TERMINAL_ACTIONS and (explicit is not None or i == len(parts)):
            return action
        inherited = action
    return inherited


def _secret(keystore: KeyStore, name: str, why: str) -> bytes:
    try:
        value = keystore.secret(name)
    except (KeyStoreError, OSError, ValueError) as exc:
        raise ConfigError(
            f"{why} needs the key store secret {name!r} ({exc}); set "
            f"PROVMARK_SECRET_{name.upper()} (32 random bytes, base64) or make the key "
            "folder writable, or turn the feature off (redact=False / encrypt=False)"
        ) from None
    if len(value) < 16:
        raise ConfigError(f"key store secret {name!r} is {len(value)} bytes; 32 are needed")
    return value


class Privacy:
    """Redaction and field encryption for one ``Provmark`` (thread-safe)."""

    def __init__(
        self,
        *,
        redactor: TextRedactor | None,
        policy: Policy,
        hmac_key: bytes,
        vault: Vault | None,
        subject_key: bytes | None,
        subject_tag: str = "tenant",
        direct: bool = False,
    ) -> None:
        self.redactor = redactor
        self.policy = policy
        self.vault = vault
        self.subject_tag = subject_tag
        self.direct = direct
        self.hmac_key = hmac_key
        self._hasher = Redactor(Policy(default=Action.HASH, detectors=()), hmac_key)
        self._subject_key = subject_key
        self._pending: list[Plaintext] = []
        self._lock = threading.Lock()
        self._actions = {path: _effective(policy, path) for path in _TOP}
        self._nested = isinstance(redactor, Redactor) and any(
            p.count(".") >= 2 or "**" in p for p in policy.fields
        )

    @classmethod
    def configure(
        cls,
        store: Store,
        keystore: KeyStore,
        *,
        redact: bool = True,
        redaction_policy: Policy | Mapping[str, Any] | None = None,
        redactor: TextRedactor | None = None,
        encrypt: bool = True,
        master_key: MasterKey | None = None,
        vault: Vault | None = None,
        subject_tag: str = "tenant",
        durable: bool = False,
    ) -> Privacy | None:
        """Build from ``provmark.open`` options; ``None`` when privacy is off (``redact=False``)."""
        if not redact:
            if redactor is not None or redaction_policy is not None:
                raise ConfigError("redact=False contradicts redactor= / redaction_policy=")
            return None
        if isinstance(redaction_policy, Mapping):
            redaction_policy = Policy.from_dict(redaction_policy)
        policy = redaction_policy if redaction_policy is not None else default_policy()
        key = _secret(keystore, "redaction", "redaction (on by default)")
        text_redactor: TextRedactor = redactor if redactor is not None else Redactor(policy, key)
        wants_vault = encrypt and any(
            a is Action.ENCRYPT for a in (policy.default, *policy.fields.values())
        )
        chosen: Vault | None = vault
        if wants_vault and chosen is None:
            from .vault import vault_for

            master = master_key or LocalMasterKey(
                _secret(keystore, "master", "field encryption (on by default)")
            )
            chosen = vault_for(store, master)
            if chosen is None:
                log.warning("provmark: no vault for %r; encrypt fields are hashed only", store)
        subject_key = _secret(keystore, "actor", "field encryption") if chosen else None
        return cls(
            redactor=text_redactor,
            policy=policy,
            hmac_key=key,
            vault=chosen if encrypt else None,
            subject_key=subject_key,
            subject_tag=subject_tag,
            direct=durable,
        )

    # ------------------------------------------------------------ helpers
    @property
    def encrypting(self) -> bool:
        return self.vault is not None

    def hash_subject(self, subject: str) -> str:
        """The stored form of a subject: the same HMAC as ``Provmark.hash_user_id``."""
        if subject.startswith(HMAC_PREFIX):
            return subject
        if self._subject_key is None:
            raise ConfigError("subjects are only hashed when field encryption is on")
        data = subject.encode("utf-8", "surrogatepass")
        return HMAC_PREFIX + hmac.digest(self._subject_key, data, "sha256").hex()

    def hmac_value(self, value: Any) -> str:
        """``hmac-sha256:<hex>`` of a value, as the ``hmac`` of an encrypted-field reference
        (the same bytes the redactor's ``hash``/``encrypt`` actions HMAC)."""
        if isinstance(value, str):
            data = value.encode("utf-8", "surrogatepass")
            return HMAC_PREFIX + hmac.digest(self.hmac_key, data, "sha256").hex()
        return cast(str, self._hasher.redact_document({"v": value}).doc["v"])

    def redact_text(self, text: str) -> str:
        return text if self.redactor is None else self.redactor.redact_text(text).text

    def subject_of(self, draft: Mapping[str, Any]) -> str:
        actor = draft.get("actor") or {}
        tags = draft.get("tags") or {}
        return str(actor.get("user_id") or tags.get(self.subject_tag) or UNATTRIBUTED)

    # ------------------------------------------------------------ capture
    def protect(self, draft: Draft) -> None:
        """Redact and seal one draft in place: its raw input becomes ``input.snapshot``.
        Never lets PII through: on any failure the affected text is replaced by
        ``[REDACTION FAILED]`` and the error logged."""
        record = draft.record
        has_raw, raw = draft.has_raw_input, draft.raw_input
        draft.raw_input = ABSENT
        err = record.get("error")
        captured = isinstance(record.get("context"), Fragment)
        message = err.get("message") if captured and isinstance(err, dict) else None
        params = _has_text(record.get("params"))
        if not has_raw and not message and not params:
            return
        try:
            self._protect(record, has_raw, raw, message, params)
        except Exception as exc:
            log.error(
                "provmark: redaction of record %s failed (%s); its text fields are withheld",
                record.get("record_id"),
                type(exc).__name__,
            )
            if has_raw:
                record.setdefault("input", {})["snapshot"] = _FAILED
            if message:
                record["error"]["message"] = _FAILED
            if params:
                record["params"] = {"$redaction": _FAILED}
            if self.direct:  # the caller's thread: fail the capture, never store PII
                detail = str(exc) if isinstance(exc, StoreError | KeyStoreError) else ""
                raise CaptureError(
                    f"record {record.get('record_id')}: redaction/encryption failed "
                    f"({type(exc).__name__}{': ' + detail if detail else ''})"
                ) from None

    def _protect(
        self, draft: dict[str, Any], has_raw: bool, raw: Any, message: str | None, params: bool
    ) -> None:
        sealed: list[tuple[str, Any]] = []
        if has_raw:
            value = raw if isinstance(raw, str) else json.loads(json_text(raw))
            text, seal = self._render("input.snapshot", value)
            inp = draft.setdefault("input", {})
            if text is None:
                inp.pop("snapshot", None)
            else:
                inp["snapshot"] = text[:MAX_SNAPSHOT_CHARS]
            sealed += seal
        if message:
            text, seal = self._render("error.message", message)
            if text is None:
                draft["error"].pop("message", None)
            else:
                draft["error"]["message"] = text[:MAX_ERROR_CHARS]
            sealed += seal
        if params:
            sealed += self._protect_params(draft)
        if sealed and self.vault is not None:
            self._seal(draft, str(draft["record_id"]), sealed)

    def _protect_params(self, draft: dict[str, Any]) -> list[tuple[str, Any]]:
        """Redact the text values of ``params`` (a prompt template or an e-mail passed as
        a keyword argument would otherwise be signed as given). With ``encrypt`` (the
        default) the original of each value that had a finding is sealed under its path
        (``params.user``, ``params.messages[0].content``) for auditors."""
        action = self._actions["params"]
        if action is Action.KEEP or self.redactor is None:
            return []
        if action is Action.DROP:
            draft.pop("params", None)
            return []
        params = draft["params"]
        value = params.value if isinstance(params, Fragment) else params
        found: list[tuple[str, Any]] = []
        out = self._params_value(value, "params", action, found)
        if not found:
            return []
        draft["params"] = Fragment(out) if isinstance(params, Fragment) else out
        return found if action is Action.ENCRYPT else []

    def _params_value(
        self, value: Any, path: str, action: Action, found: list[tuple[str, Any]]
    ) -> Any:
        if isinstance(value, str):
            if action is Action.MASK:
                out: Any = MASKED
            elif action is Action.HASH:
                out = self.hmac_value(value)
            else:
                out = self.redact_text(value)
            if out != value:
                found.append((path, value))
            return out
        if isinstance(value, Mapping):
            return {
                k: self._params_value(v, f"{path}.{k}", action, found) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [
                self._params_value(v, f"{path}[{i}]", action, found) for i, v in enumerate(value)
            ]
        return value

    def _render(self, path: str, value: Any) -> tuple[str | None, list[tuple[str, Any]]]:
        """The text the signed record keeps at ``path`` and the values to encrypt.

        An ``encrypt`` field keeps a redacted copy: developers still read the prompt
        with its PII replaced, an auditor gets the exact original from the vault."""
        action = self._actions[path]
        if action is Action.DROP:
            return None, []
        if action is Action.MASK:
            return MASKED, []
        if action is Action.HASH:
            return self.hmac_value(value), []
        text = value if isinstance(value, str) else json_text(value)
        if action is Action.ENCRYPT:
            return self.redact_text(text), [(path, value)]
        if isinstance(value, str) or not self._nested:
            return (text if action is Action.KEEP else self.redact_text(text)), []
        # A structured input with rules below the field (messages.*.content, ...).
        assert isinstance(self.redactor, Redactor)
        top, leaf = path.split(".")
        red = self.redactor.redact_document({top: {leaf: value}})
        out = red.doc[top][leaf]
        return (out if isinstance(out, str) else json_text(out)), [
            (item.path, item.value) for item in red.to_encrypt
        ]

    def _seal(self, draft: dict[str, Any], record_id: str, sealed: list[tuple[str, Any]]) -> None:
        subject = self.hash_subject(self.subject_of(draft))
        refs = [{"$encrypted": path, "hmac": self.hmac_value(value)} for path, value in sealed]
        extra = draft.get("extra") or {}
        grown = {**extra, ENCRYPTED_KEY: refs}
        if extra and len(json.dumps(to_json_value(grown)).encode()) > MAX_EXTRA_BYTES:
            log.warning("provmark: record %s: extra is full; originals not encrypted", record_id)
            return
        items = [Plaintext(record_id, path, subject, encode_value(value)) for path, value in sealed]
        assert self.vault is not None
        if self.direct:
            self.vault.put(items)  # before the journal line: a record never outlives its ciphertext
        else:
            with self._lock:
                self._pending.extend(items)
        draft["extra"] = grown

    def flush(self) -> None:
        """Write every pending ciphertext (called just before each batch of records)."""
        with self._lock:
            items, self._pending = self._pending, []
        if not items or self.vault is None:
            return
        try:
            self.vault.put(items)
        except BaseException:
            with self._lock:
                self._pending[:0] = items  # retried with the batch
            raise

    def close(self) -> None:
        if self.vault is not None:
            self.vault.close()


def _has_text(params: Any) -> bool:
    """Whether ``params`` holds any string (numbers alone need no redaction: the common case,
    decided without walking nested values)."""
    if isinstance(params, Fragment):
        params = params.value
    if not isinstance(params, Mapping) or not params:
        return False
    return not all(type(v) in _PLAIN for v in params.values())


class VaultedStore:
    """The store as the writer sees it: pending ciphertexts are written before each batch."""

    def __init__(self, store: Store, privacy: Privacy) -> None:
        self._store = store
        self._privacy = privacy

    def append(self, entries: Sequence[Entry], seal: SealFn) -> StoredCheckpoint:
        self._privacy.flush()
        return self._store.append(entries, seal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"VaultedStore({self._store!r})"


def writer_store(store: Store, privacy: Privacy | None) -> Store:
    """What to hand the writer: the store itself, or a :class:`VaultedStore` around it."""
    if privacy is None or privacy.vault is None or privacy.direct:
        return store
    return cast(Store, VaultedStore(store, privacy))
