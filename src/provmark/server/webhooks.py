"""Webhook subscriptions, events and their signatures (Standard Webhooks).

Events (``EVENTS``):

``record.stored``        new records appeared in the log; ``data.records`` lists up to
                         ``records_per_event`` of them (id, slug, log index, model,
                         output sha256, ...), never input snapshots or user ids
``checkpoint.signed``    the log grew; ``data`` is the latest signed checkpoint
``verification.failed``  ``POST /v1/verify`` answered "not verified"; ``data`` names the check

``record.stored`` and ``checkpoint.signed`` are derived from the log itself by a
watcher thread (``server/delivery.py``), not by the ingest path, so they cover
records written by any server, worker or embedded writer, and a slow subscriber
cannot slow ingest. Several servers share one state database: a compare-and-set
on the log cursor makes exactly one of them emit each range.

Every delivery is a POST of ``{"type", "timestamp", "data"}`` with the headers
``webhook-id`` (same on retries), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA-256(secret, id + "." + timestamp + "." + body)>``
where the secret is the base64 part of ``whsec_...``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..crypto.fieldenc import MasterKey
from ..errors import ConfigError, NotFoundError
from .state import Cursor, StateDB

EVENTS = ("record.stored", "checkpoint.signed", "verification.failed")
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        raise ConfigError("a webhook secret is whsec_ followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(
    secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300
) -> bool:
    """Check a delivery as a receiver would (used by tests and documented for receivers)."""
    h = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, ts = h["webhook-id"], int(h["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for part in h.get("webhook-signature", "").split():
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


@dataclass(frozen=True)
class Subscription:
    sub_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    description: str
    created_at: float

    def to_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.sub_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "created_at": _iso(self.created_at),
        }
        out["secret"] = self.secret if with_secret else self.secret[:10] + "..."
        return out


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    sub_id: str
    event_id: str
    event_type: str
    body: str
    status: str  # pending | delivered | dead
    attempts: int
    next_at: float
    created_at: float
    last_error: str | None
    finished_at: float | None

    def to_json(self, *, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delivery_id": self.delivery_id,
            "subscription": self.sub_id,
            "event_id": self.event_id,
            "event": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_at) if self.status == "pending" else None,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "last_error": self.last_error,
        }
        if with_body:
            out["body"] = json.loads(self.body)
        return out


_DELIVERY_COLUMNS = (
    "delivery_id, sub_id, event_id, event_type, body, status, attempts, next_at, created_at,"
    " last_error, finished_at"
)


def _context(sub_id: str) -> bytes:
    return f"provmark/webhook-secret/v1:{sub_id}".encode()


def master_key_for(pm: Any) -> MasterKey | None:
    """The master key the server seals webhook secrets under: its vault's, else the
    ``master`` secret of its key store (the one a vault would use); None (secrets in
    clear, logged) when the key store has none to give."""
    vault = pm.privacy.vault if pm.privacy is not None else None
    master = getattr(vault, "master", None)
    if master is not None:
        return master  # type: ignore[no-any-return]
    from ..crypto.fieldenc import LocalMasterKey
    from ..errors import KeyStoreError

    try:
        return LocalMasterKey(pm.keystore.secret("master"))
    except KeyStoreError as exc:
        logging.getLogger("provmark.server").warning(
            "webhook secrets are stored in clear: no master key (%s)", exc
        )
        return None


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"webhook url must be http(s)://host/..., not {url!r}")
    return url


_SEALED = "sealed:v1:"


class WebhookStore:
    """Subscriptions and deliveries in the server's state database.

    With ``master`` (the master key of the store's privacy vault: the ``master`` secret,
    or a KMS) signing secrets are kept sealed (AES-256-GCM, bound to the subscription
    id) and secrets written in clear by an older provmark are sealed on open."""

    def __init__(self, db: StateDB, master: MasterKey | None = None) -> None:
        self.db = db
        self.master = master
        if master is not None:
            self._seal_clear_secrets()

    def _seal(self, sub_id: str, secret: str) -> str:
        if self.master is None:
            return secret
        wrapped = self.master.wrap(secret.encode(), _context(sub_id))
        return f"{_SEALED}{self.master.key_id}:{base64.b64encode(wrapped).decode()}"

    def secret_of(self, sub_id: str, stored: str) -> str:
        """The signing secret from its stored (sealed) form."""
        if not stored.startswith(_SEALED):
            return stored  # written in clear (no master key given)
        key_id, _, data = stored[len(_SEALED) :].rpartition(":")
        if self.master is None:
            raise ConfigError(
                f"webhook {sub_id}: its secret is sealed under master key {key_id}; "
                "give the master key (the store's home) to read it"
            )
        return self.master.unwrap(base64.b64decode(data), _context(sub_id)).decode()

    def _seal_clear_secrets(self) -> None:
        rows = self.db.query("SELECT sub_id, secret FROM pmsrv_webhooks")
        for sub_id, secret in rows:
            if not str(secret).startswith(_SEALED):
                self.db.execute(
                    "UPDATE pmsrv_webhooks SET secret = ? WHERE sub_id = ? AND secret = ?",
                    (self._seal(sub_id, secret), sub_id, secret),
                )

    # ------------------------------------------------------------ subscriptions
    def add(
        self, url: str, events: list[str], description: str = "", secret: str | None = None
    ) -> Subscription:
        check_url(url)
        chosen = tuple(dict.fromkeys(events or EVENTS))
        unknown = [e for e in chosen if e not in EVENTS]
        if unknown:
            raise ConfigError(f"unknown event {unknown[0]!r}; choose from {', '.join(EVENTS)}")
        secret = secret or new_secret()
        secret_bytes(secret)
        sub = Subscription(uuid.uuid4().hex[:16], url, chosen, secret, description, time.time())
        self.db.execute(
            "INSERT INTO pmsrv_webhooks (sub_id, url, events, secret, description, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                sub.sub_id,
                url,
                json.dumps(list(chosen)),
                self._seal(sub.sub_id, secret),
                description,
                sub.created_at,
            ),
        )
        return sub

    def subscriptions(self) -> list[Subscription]:
        """Every subscription; ``secret`` as stored (sealed): only the delivery worker
        opens it (:meth:`secret_of`), a listing never needs it."""
        rows = self.db.query(
            "SELECT sub_id, url, events, secret, description, created_at FROM pmsrv_webhooks"
            " ORDER BY created_at"
        )
        return [Subscription(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5]) for r in rows]

    def get(self, sub_id: str) -> Subscription:
        for sub in self.subscriptions():
            if sub.sub_id == sub_id:
                return sub
        raise NotFoundError(f"no webhook subscription {sub_id!r}")

    def remove(self, sub_id: str) -> None:
        """Remove a subscription; its pending deliveries are dropped, the log is kept."""
        with self.db.transaction() as cur:
            if cur.execute("DELETE FROM pmsrv_webhooks WHERE sub_id = ?", (sub_id,)) != 1:
                raise NotFoundError(f"no webhook subscription {sub_id!r}")
            cur.execute(
                "UPDATE pmsrv_deliveries SET status = 'dead', last_error = 'subscription removed',"
                " finished_at = ? WHERE sub_id = ? AND status = 'pending'",
                (time.time(), sub_id),
            )

    # ------------------------------------------------------------ events
    def enqueue(
        self, cur: Cursor, event_type: str, data: dict[str, Any], subs: list[Subscription]
    ) -> int:
        """Queue one event for every subscription that wants it (inside a transaction)."""
        wanted = [s for s in subs if event_type in s.events]
        if not wanted:
            return 0
        now = time.time()
        event_id = "msg_" + uuid.uuid4().hex
        body = json.dumps(
            {"type": event_type, "timestamp": _iso(now), "data": data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for sub in wanted:
            cur.execute(
                f"INSERT INTO pmsrv_deliveries ({_DELIVERY_COLUMNS}, lease_until)"
                " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, NULL, NULL, 0)",
                (uuid.uuid4().hex, sub.sub_id, event_id, event_type, body, now, now),
            )
        return len(wanted)

    def emit(self, event_type: str, data: dict[str, Any]) -> int:
        """Queue one event now (used for ``verification.failed``)."""
        subs = self.subscriptions()
        if not any(event_type in s.events for s in subs):
            return 0
        with self.db.transaction() as cur:
            return self.enqueue(cur, event_type, data, subs)

    # ------------------------------------------------------------ deliveries
    def deliveries(
        self, *, sub_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where: list[str] = []
        args: list[Any] = []
        if sub_id:
            where.append("sub_id = ?")
            args.append(sub_id)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM pmsrv_deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        return [Delivery(*r) for r in self.db.query(sql, [*args, limit])]

    def attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT attempt, at, status_code, error, duration_ms FROM pmsrv_attempts"
            " WHERE delivery_id = ? ORDER BY attempt",
            (delivery_id,),
        )
        return [
            {
                "attempt": r[0],
                "at": _iso(r[1]),
                "status_code": r[2],
                "error": r[3],
                "duration_ms": r[4],
            }
            for r in rows
        ]

    def retry(self, delivery_id: str) -> None:
        """Send a dead letter again (attempts start over)."""
        n = self.db.execute(
            "UPDATE pmsrv_deliveries SET status = 'pending', attempts = 0, next_at = ?,"
            " lease_until = 0, finished_at = NULL WHERE delivery_id = ? AND status = 'dead'",
            (time.time(), delivery_id),
        )
        if n != 1:
            raise NotFoundError(f"no dead letter {delivery_id!r}")

    def counts(self) -> dict[str, int]:
        rows = self.db.query(
            "SELECT status, COUNT(*) FROM pmsrv_deliveries WHERE status IN ('pending', 'dead')"
            " GROUP BY status"
        )
        found = {str(r[0]): int(r[1]) for r in rows}
        return {"pending": found.get("pending", 0), "dead": found.get("dead", 0)}
