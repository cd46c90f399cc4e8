"""Admin API: tokens, webhook subscriptions, deliveries, dead letters; the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from .auth import ROLES
from .context import Admin, AdminOrAuditor, get_context
from .webhooks import EVENTS

router = APIRouter(tags=["admin"])


class TokenRequest(BaseModel):
    role: str = Field(description=f"one of {', '.join(ROLES)}", pattern=f"^({'|'.join(ROLES)})$")
    name: str = Field("", max_length=200, description="who or what uses it")


class WebhookRequest(BaseModel):
    url: str = Field(description="http(s) URL that receives POSTs", max_length=2000)
    events: list[str] = Field(
        default_factory=lambda: list(EVENTS), description=f"any of {', '.join(EVENTS)}"
    )
    description: str = Field("", max_length=500)


@router.get("/v1/tokens", summary="Active tokens (never the tokens themselves)")
def list_tokens(
    request: Request,
    who: Admin,
    include_revoked: bool = False,
) -> dict[str, Any]:
    ctx = get_context(request)
    return {"tokens": [t.to_json() for t in ctx.tokens.tokens(include_revoked)]}


@router.post(
    "/v1/tokens", status_code=201, summary="Create a token; it is shown in this answer only"
)
def create_token(
    request: Request,
    body: TokenRequest,
    who: Admin,
) -> dict[str, Any]:
    ctx = get_context(request)
    token, info = ctx.tokens.create(body.role, body.name)
    ctx.audit.write(who, "token.create", info.token_id)
    return {**info.to_json(), "token": token}


@router.delete("/v1/tokens/{token_id}", summary="Revoke a token (effective on the next request)")
def revoke_token(
    request: Request,
    token_id: str,
    who: Admin,
) -> dict[str, Any]:
    ctx = get_context(request)
    info = ctx.tokens.revoke(token_id)
    ctx.audit.write(who, "token.revoke", info.token_id)
    return info.to_json()


@router.get("/v1/audit", summary="The audit log: full-data reads and admin actions, newest first")
def audit_log(
    request: Request,
    who: AdminOrAuditor,
    limit: int = Query(100, ge=1, le=10_000),
    token_id: str | None = None,
) -> dict[str, Any]:
    ctx = get_context(request)
    return {"entries": [e.to_json() for e in ctx.audit.entries(limit=limit, token_id=token_id)]}


@router.get("/v1/webhooks", summary="Webhook subscriptions")
def list_webhooks(
    request: Request,
    who: Admin,
) -> dict[str, Any]:
    ctx = get_context(request)
    return {"webhooks": [s.to_json() for s in ctx.hooks.subscriptions()], "events": list(EVENTS)}


@router.post(
    "/v1/webhooks", status_code=201, summary="Subscribe a URL; the signing secret is shown once"
)
def add_webhook(
    request: Request,
    body: WebhookRequest,
    who: Admin,
) -> dict[str, Any]:
    ctx = get_context(request)
    sub = ctx.hooks.add(body.url, body.events, body.description)
    ctx.audit.write(who, "webhook.add", f"{sub.sub_id} {sub.url}")
    return sub.to_json(with_secret=True)


@router.get("/v1/webhooks/dead-letters", summary="Deliveries that gave up after every retry")
def dead_letters(
    request: Request,
    who: Admin,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    ctx = get_context(request)
    return {
        "dead_letters": [
            d.to_json(with_body=True) for d in ctx.hooks.deliveries(status="dead", limit=limit)
        ]
    }


@router.post("/v1/webhooks/deliveries/{delivery_id}/retry", summary="Send a dead letter again")
async def retry_delivery(
    request: Request,
    delivery_id: str,
    who: Admin,
) -> dict[str, Any]:
    ctx = get_context(request)
    await run_in_threadpool(ctx.hooks.retry, delivery_id)
    if ctx.service is not None:
        ctx.service.wake()
    return {"delivery_id": delivery_id, "status": "pending"}


@router.get("/v1/webhooks/{sub_id}", summary="One subscription")
def get_webhook(
    request: Request,
    sub_id: str,
    who: Admin,
) -> dict[str, Any]:
    return get_context(request).hooks.get(sub_id).to_json()


@router.delete(
    "/v1/webhooks/{sub_id}", summary="Remove a subscription (its pending deliveries are dropped)"
)
def remove_webhook(
    request: Request,
    sub_id: str,
    who: Admin,
) -> dict[str, Any]:
    ctx = get_context(request)
    ctx.hooks.remove(sub_id)
    ctx.audit.write(who, "webhook.remove", sub_id)
    return {"id": sub_id, "removed": True}


@router.get(
    "/v1/webhooks/{sub_id}/deliveries", summary="Delivery log of a subscription, with every attempt"
)
def deliveries(
    request: Request,
    who: Admin,
    sub_id: str,
    status: str | None = Query(None, pattern="^(pending|delivered|dead)$"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    ctx = get_context(request)
    ctx.hooks.get(sub_id)
    found = ctx.hooks.deliveries(sub_id=sub_id, status=status, limit=limit)
    return {
        "deliveries": [
            {**d.to_json(), "attempt_log": ctx.hooks.attempts(d.delivery_id)} for d in found
        ]
    }
