"""API tokens, roles and the audit log of full-data reads.

A token is ``pmk_<token id>_<secret>``; only its SHA-256 is stored (the secret is
256 random bits, so a plain hash is enough: nothing to brute-force). It is shown
once, by ``provmark tokens create``. Roles (design section 5):

``ingest``     may only ``POST /v1/records`` (services that capture).
``developer``  reads the sanitized view (the privacy layer's ``pm.view("developer")``:
               PII detectors over free text, user ids hashed), verifies, reads proofs
               and checkpoints, and may
               ``POST /v1/records`` (so one token serves an app that captures and checks).
``auditor``    reads everything (encrypted fields decrypted, each decryption logged in
               the vault); every such read is also written to the server's audit log.
``admin``      manages tokens and webhooks and reads the audit log; reads records
               through the sanitized view like a developer.

``--no-auth`` gives every request the ``local`` principal, which may do
everything; it is for a demo on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, NotFoundError
from .state import StateDB

ROLES = ("ingest", "developer", "auditor", "admin")
LOCAL = "local"
TOKEN_PREFIX = "pmk_"
_LAST_USED_EVERY = 60.0  # seconds between last_used_at writes per token


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token id (never the token) and its role."""

    token_id: str
    role: str
    name: str = ""

    @property
    def full_view(self) -> bool:
        """True when this caller sees unsanitized records (and is audited for it)."""
        return self.role in ("auditor", LOCAL)

    def allowed(self, roles: Iterable[str]) -> bool:
        return self.role == LOCAL or self.role in roles


ANONYMOUS_LOCAL = Principal(token_id="no-auth", role=LOCAL, name="--no-auth")


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    role: str
    name: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "role": self.role,
            "name": self.name,
            "created_at": _iso(self.created_at),
            "last_used_at": _iso(self.last_used_at),
            "revoked_at": _iso(self.revoked_at),
            "active": self.revoked_at is None,
        }


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Create, look up, list and revoke tokens; stored hashed in the state database."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._last_write: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, role: str, name: str = "") -> tuple[str, TokenInfo]:
        """A new token (returned once, never stored in clear) and its info."""
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        self.db.execute(
            "INSERT INTO pmsrv_tokens (token_id, token_hash, role, name, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_id, hash_token(token), role, name, now),
        )
        return token, TokenInfo(token_id, role, name, now, None, None)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of an active token, or None (unknown, malformed or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        rows = self.db.query(
            "SELECT token_id, token_hash, role, name, revoked_at FROM pmsrv_tokens"
            " WHERE token_hash = ?",
            (hash_token(token),),
        )
        if not rows:
            return None
        token_id, stored, role, name, revoked = rows[0]
        if revoked is not None or not hmac.compare_digest(stored, hash_token(token)):
            return None
        self._touch(token_id)
        return Principal(token_id=token_id, role=role, name=name)

    def _touch(self, token_id: str) -> None:
        now = time.time()
        with self._lock:
            if now - self._last_write.get(token_id, 0.0) < _LAST_USED_EVERY:
                return
            self._last_write[token_id] = now
        self.db.execute(
            "UPDATE pmsrv_tokens SET last_used_at = ? WHERE token_id = ?", (now, token_id)
        )

    def tokens(self, include_revoked: bool = False) -> list[TokenInfo]:
        sql = "SELECT token_id, role, name, created_at, last_used_at, revoked_at FROM pmsrv_tokens"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return [TokenInfo(*row) for row in self.db.query(sql + " ORDER BY created_at")]

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke by token id (or by the token itself); takes effect on the next request."""
        if token_id.startswith(TOKEN_PREFIX):
            rows = self.db.query(
                "SELECT token_id FROM pmsrv_tokens WHERE token_hash = ?", (hash_token(token_id),)
            )
            if not rows:
                raise NotFoundError("no such token")
            token_id = rows[0][0]
        self.db.execute(
            "UPDATE pmsrv_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (time.time(), token_id),
        )
        found = [t for t in self.tokens(include_revoked=True) if t.token_id == token_id]
        if not found:
            raise NotFoundError(f"no token with id {token_id!r}")
        return found[0]


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    at: float
    token_id: str
    role: str
    action: str
    target: str
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "at": _iso(self.at),
            "token_id": self.token_id,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
        }


class AuditLog:
    """Append-only log of full-data reads and admin actions: who, what, when, why."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def write(self, who: Principal, action: str, target: str, reason: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO pmsrv_audit (entry_id, at, token_id, role, action, target, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, time.time(), who.token_id, who.role, action, target[:4000], reason),
        )

    def entries(
        self, *, limit: int = 100, token_id: str | None = None, since: float | None = None
    ) -> list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        if token_id:
            where.append("token_id = ?")
            args.append(token_id)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        sql = "SELECT entry_id, at, token_id, role, action, target, reason FROM pmsrv_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC LIMIT ?"
        return [AuditEntry(*row) for row in self.db.query(sql, [*args, limit])]
