"""What every route needs: the ``Provmark`` object, settings, state, metrics; and the auth check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..client import Provmark
from ..privacy.views import RecordView, sanitize_document, sanitizer
from ..record import Record
from ..redaction import Redactor
from ..store.base import StoredRecord
from .auth import ANONYMOUS_LOCAL, AuditLog, Principal, TokenStore
from .delivery import WebhookService
from .metrics import Metrics
from .problems import Problem
from .settings import Settings
from .state import StateDB
from .views import split, stored_json
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
    developer_redactor: Redactor | None = None

    def records(self, request: Request, who: Principal) -> RecordView:
        """The privacy layer's view for this caller: auditors read decrypted records (each
        decryption logged in the vault), developers and admins the sanitized view."""
        role = "auditor" if who.full_view else who.role
        principal = f"token:{who.token_id}" + (f" ({who.name})" if who.name else "")
        return self.pm.view(
            role, principal=principal, reason=request.headers.get("x-provmark-reason")
        )

    def sanitize_json(self, data: dict[str, Any]) -> dict[str, Any]:
        """The developer view of a record's payload fields (``pm.view("developer")``'s code)."""
        if self.developer_redactor is None:
            self.developer_redactor = sanitizer(self.pm)
        return sanitize_document(self.pm, self.developer_redactor, data)

    def view(self, record: StoredRecord | dict[str, Any], who: Principal) -> dict[str, Any]:
        """A record JSON object (or stored record) as ``who`` may see it."""
        data = stored_json(record) if isinstance(record, StoredRecord) else record
        if who.full_view:
            return {**data, "view": "full"}
        body, rest = split(data)
        return {**self.sanitize_json(body), **rest, "view": "sanitized"}

    def shown(self, record: Record, who: Principal) -> dict[str, Any]:
        """A record (already this caller's view) as the API returns it."""
        return {
            "slug": record.slug,
            **record.model_dump(mode="json", exclude_none=True),
            "view": "full" if who.full_view else "sanitized",
        }

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
