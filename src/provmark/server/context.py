"""What every route needs: the ``Provmark`` object, settings, state, metrics; and the auth check."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..client import Provmark
from ..store.base import StoredRecord
from .auth import ANONYMOUS_LOCAL, AuditLog, Principal, TokenStore
from .delivery import WebhookService
from .metrics import Metrics
from .problems import Problem
from .settings import Settings
from .state import StateDB
from .views import shown, stored_json
from .webhooks import WebhookStore

log = logging.getLogger("provmark.server")

bearer = HTTPBearer(auto_error=False, description="An API token from `provmark tokens create`")


@dataclass
class ServerContext:
    """Everything the app holds; one per ``create_app`` call (no module-level state)."""

    pm: Provmark
    settings: Settings
    state: StateDB
    tokens: TokenStore
    audit: AuditLog
    hooks: WebhookStore
    metrics: Metrics
    service: WebhookService | None = None
    queue: Any = None
    actor_key: bytes = b""

    def hash_user(self, user_id: str) -> str:
        """The same value as ``Provmark.hash_user_id`` (key loaded once, not per record)."""
        if not self.actor_key:
            self.actor_key = self.pm.keystore.secret("actor")
        digest = hmac.new(self.actor_key, user_id.encode(), hashlib.sha256).hexdigest()
        return "hmac-sha256:" + digest

    def view(self, record: StoredRecord | dict[str, Any], who: Principal) -> dict[str, Any]:
        """The record as ``who`` may see it (see ``views``)."""
        data = stored_json(record) if isinstance(record, StoredRecord) else record
        return shown(data, who.full_view, self.hash_user)

    def audit_read(self, request: Request, who: Principal, action: str, target: str) -> None:
        """Log a full-data read (auditor); ``X-Provmark-Reason`` says why, when given."""
        if who.full_view:
            self.audit.write(who, action, target, request.headers.get("x-provmark-reason"))


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.provmark
    return ctx


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency: the caller's principal, or 401 (no/bad token) / 403 (wrong role)."""
    allowed = tuple(roles)

    def check(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        ctx = get_context(request)
        if not ctx.settings.auth:
            return ANONYMOUS_LOCAL
        challenge = {"WWW-Authenticate": 'Bearer realm="provmark"'}
        if credentials is None or credentials.scheme.lower() != "bearer":
            ctx.metrics.auth_failures.labels("401").inc()
            raise Problem(
                401,
                "unauthorized",
                "an API token is required: Authorization: Bearer <token>",
                field="header.authorization",
                reason="missing",
                headers=challenge,
            )
        who = ctx.tokens.authenticate(credentials.credentials)
        if who is None:
            ctx.metrics.auth_failures.labels("401").inc()
            raise Problem(
                401,
                "unauthorized",
                "the API token is unknown or revoked",
                field="header.authorization",
                reason="invalid token",
                headers={"WWW-Authenticate": 'Bearer realm="provmark", error="invalid_token"'},
            )
        if not who.allowed(allowed):
            ctx.metrics.auth_failures.labels("403").inc()
            raise Problem(
                403,
                "forbidden",
                f"role {who.role!r} may not do this; allowed: {', '.join(allowed)}",
                field="header.authorization",
                reason=f"role {who.role} not allowed",
                role=who.role,
                allowed_roles=list(allowed),
            )
        request.state.principal = who
        return who

    return check


READERS = ("developer", "auditor", "admin")

Reader = Annotated[Principal, Depends(require(*READERS))]
"""Any role that reads: developer and admin (sanitized view) or auditor (full view)."""
Writer = Annotated[Principal, Depends(require("ingest", "developer"))]
"""Services (ingest) and developers capturing through the remote client."""
Admin = Annotated[Principal, Depends(require("admin"))]
AdminOrAuditor = Annotated[Principal, Depends(require("admin", "auditor"))]
