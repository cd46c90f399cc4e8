"""Verify by content, checkpoints, consistency proofs and the public key set.

``POST /v1/verify`` takes the content as a multipart upload (``file``) or form text
(``text``), or JSON ``{"text": ...}`` / ``{"content_base64": ...}`` / ``{"sha256": ...}``
(the remote client sends only the hash). Optional: ``record_id`` (check against that
record only) and ``trusted_checkpoint`` (an older signed checkpoint note: also
require consistency). The answer is always 200 with ``verified`` true or false and
every check as ``pass``, ``fail`` (with the reason) or ``not_run``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile

from ..errors import ProvmarkError, VerificationError
from ..privacy.views import RecordView
from ..verify import Verified, parse_checkpoint_body
from .auth import Principal
from .context import Reader, ServerContext, get_context
from .problems import Problem
from .routes_records import _HEX64, read_body

log = logging.getLogger("provmark.server")
router = APIRouter(tags=["verification and log"])


_VERIFY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "content to check (raw bytes)",
                        },
                        "text": {
                            "type": "string",
                            "description": "content to check (hashed as UTF-8)",
                        },
                        "record_id": {"type": "string"},
                        "trusted_checkpoint": {
                            "type": "string",
                            "description": "older signed checkpoint note",
                        },
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "content_base64": {"type": "string"},
                        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "record_id": {"type": "string"},
                        "trusted_checkpoint": {"type": "string"},
                    },
                }
            },
        },
    }
}


def _form_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Problem(
            422,
            "invalid-parameter",
            f"{name} must be a text field",
            field=f"body.{name}",
            reason="not text",
        )
    return value


async def _content(request: Request, limit: int) -> tuple[str, dict[str, Any]]:
    """(sha256 of the content, options) from a multipart form or a JSON body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        upload = form.get("file")
        options = {n: _form_text(form.get(n), n) for n in ("record_id", "trusted_checkpoint")}
        if isinstance(upload, UploadFile):
            h = hashlib.sha256()
            while chunk := await upload.read(1 << 20):
                h.update(chunk)
            await form.close()
            return h.hexdigest(), options
        text = _form_text(form.get("text"), "text")
        if text is None:
            raise Problem(
                422,
                "invalid-parameter",
                "send a file field 'file' or a text field 'text'",
                field="body.file",
                reason="missing",
            )
        return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest(), options
    if kind not in ("application/json", ""):
        raise Problem(
            415,
            "unsupported-media-type",
            f"send multipart/form-data or application/json, not {kind!r}",
            field="header.content-type",
            reason=f"{kind} is not accepted",
        )
    raw = await read_body(request, limit)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise Problem(
            400, "malformed-json", f"the body is not JSON: {exc}", field="body", reason=str(exc)
        ) from None
    if not isinstance(data, dict):
        raise Problem(
            422,
            "invalid-parameter",
            "the body must be a JSON object",
            field="body",
            reason="not an object",
        )
    options = {n: data.get(n) for n in ("record_id", "trusted_checkpoint")}
    for name, value in options.items():
        if value is not None and not isinstance(value, str):
            raise Problem(
                422,
                "invalid-parameter",
                f"{name} must be a string",
                field=f"body.{name}",
                reason="not a string",
            )
    given = [n for n in ("text", "content_base64", "sha256") if data.get(n) is not None]
    if len(given) != 1:
        raise Problem(
            422,
            "invalid-parameter",
            "give exactly one of text, content_base64, sha256",
            field="body",
            reason=f"got {len(given)} of them",
        )
    name = given[0]
    value = data[name]
    if not isinstance(value, str):
        raise Problem(
            422,
            "invalid-parameter",
            f"{name} must be a string",
            field=f"body.{name}",
            reason="not a string",
        )
    if name == "sha256":
        if not _HEX64.match(value):
            raise Problem(
                422,
                "invalid-parameter",
                "sha256 must be 64 lowercase hex digits",
                field="body.sha256",
                reason="not a SHA-256 hex digest",
            )
        return value, options
    if name == "content_base64":
        try:
            content = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Problem(
                422,
                "invalid-parameter",
                "content_base64 is not base64",
                field="body.content_base64",
                reason="not base64",
            ) from None
        return hashlib.sha256(content).hexdigest(), options
    return hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest(), options


def trusted_from(note: str | None) -> tuple[int, bytes] | None:
    """The (size, root) of a ``trusted_checkpoint`` note given to verify."""
    if not note:
        return None
    try:
        cp = parse_checkpoint_body(note)
    except VerificationError as exc:
        raise Problem(
            422,
            "invalid-parameter",
            f"trusted_checkpoint: {exc.detail}",
            field="body.trusted_checkpoint",
            reason=exc.detail,
        ) from None
    return cp.size, cp.root_hash


def verify_sha(
    ctx: ServerContext, sha: str, record_id: str | None, trusted_note: str | None
) -> Verified:
    """``Provmark.verify`` given the content's SHA-256 (the content itself never needed)."""
    return ctx.pm.verify_digest(
        sha, record_id=record_id, trusted_checkpoint=trusted_from(trusted_note)
    )


def _answer(
    ctx: ServerContext, view: RecordView, who: Principal, sha: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The one Verifier's report, rendered (revocations apply as in every other surface)."""
    trusted = trusted_from(options.get("trusted_checkpoint"))
    report = ctx.pm.verification(
        sha, record_id=options.get("record_id"), trusted_checkpoint=trusted
    )
    out = report.to_json()
    out["content_sha256"] = sha
    failed = report.failed
    if report.verified:
        ctx.metrics.verifications.labels("verified").inc()
        out["record"] = ctx.shown(view.get(out["record_id"]), who)
        return out
    name = failed.name if failed is not None else "record"
    ctx.metrics.verifications.labels("failed").inc()
    ctx.metrics.verification_failures.labels(name).inc()
    data = {
        "check": name,
        "detail": failed.detail if failed is not None else "",
        "content_sha256": sha,
        "record_id": options.get("record_id"),
    }
    try:
        ctx.hooks.emit("verification.failed", {k: x for k, x in data.items() if x is not None})
        if ctx.service is not None:
            ctx.service.wake()
    except Exception as hook_exc:  # the answer must not depend on the webhook state
        log.warning("verification.failed event not queued: %s", hook_exc)
    return out


@router.post(
    "/v1/verify",
    summary="Was this content made here, by what, and is it intact?",
    openapi_extra=_VERIFY_BODY,
)
async def verify(
    request: Request,
    who: Reader,
) -> dict[str, Any]:
    ctx = get_context(request)
    sha, options = await _content(request, ctx.settings.max_body_bytes)
    view = ctx.records(request, who)
    answer = await run_in_threadpool(_answer, ctx, view, who, sha, options)
    if answer["verified"]:
        await run_in_threadpool(ctx.audit_read, request, who, "record.verify", answer["record_id"])
    return answer


@router.post(
    "/v1/verify/fuzzy",
    summary="Find the record of edited, quoted or re-encoded content (soft binding)",
)
async def verify_fuzzy(request: Request, who: Reader) -> dict[str, Any]:
    """``identical`` (signed and proven), ``derived`` (a lead with similarity and the
    matching parts, not a proof), ``no_match`` or ``too_short``. JSON ``{"text": ...}``
    or ``{"content_base64": ..., "media_type": ...}``, or a multipart ``file``."""
    ctx = get_context(request)
    content, media_type = await _raw_content(request, ctx.settings.max_body_bytes)
    try:
        result = await run_in_threadpool(ctx.pm.verify_fuzzy, content, media_type)
    except ProvmarkError as exc:  # unsupported media, a store without fingerprints
        raise Problem(422, "cannot-fingerprint", str(exc), field="body", reason=str(exc)) from None
    answer: dict[str, Any] = result.to_json()
    return answer


async def _raw_content(request: Request, limit: int) -> tuple[str | bytes, str | None]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(
                422,
                "invalid-parameter",
                "send a file field 'file'",
                field="body.file",
                reason="missing",
            )
        data = await upload.read(limit + 1)
        await form.close()
        if len(data) > limit:
            raise Problem(413, "too-large", f"the file is over {limit} bytes", field="body.file")
        return data, upload.content_type
    try:
        body = json.loads(await read_body(request, limit))
    except ValueError as exc:
        raise Problem(400, "malformed-json", f"the body is not JSON: {exc}", field="body") from None
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return body["text"], None
    if isinstance(body, dict) and isinstance(body.get("content_base64"), str):
        try:
            raw = base64.b64decode(body["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise Problem(
                422,
                "invalid-parameter",
                "content_base64 is not base64",
                field="body.content_base64",
                reason="not base64",
            ) from None
        media = body.get("media_type")
        return raw, media if isinstance(media, str) else None
    raise Problem(
        422, "invalid-parameter", "give text or content_base64", field="body", reason="missing"
    )


@router.get(
    "/v1/checkpoints/latest",
    summary="The latest signed checkpoint (JSON, or the note as text/plain)",
)
def latest_checkpoint(
    request: Request,
    who: Reader,
) -> Response:
    ctx = get_context(request)
    cp = ctx.pm.store.latest_checkpoint()
    if cp is None:
        raise Problem(404, "empty-log", "the log is empty: no checkpoint yet")
    if "text/plain" in request.headers.get("accept", "") and "json" not in request.headers.get(
        "accept", ""
    ):
        return PlainTextResponse(cp.note)
    return JSONResponse(
        {
            "origin": ctx.pm.store.origin,
            "size": cp.size,
            "root": base64.b64encode(cp.root).decode(),
            "note": cp.note,
            "created_at": cp.created_at,
            "log_key": ctx.pm.log_verifier.key_string(),
        }
    )


@router.get("/v1/checkpoints/consistency", summary="Consistency proof between two tree sizes")
def consistency(
    request: Request,
    who: Reader,
    from_size: int = Query(..., alias="from", ge=0, le=2**63 - 1, description="older tree size"),
    to_size: int | None = Query(
        None, alias="to", ge=0, le=2**63 - 1, description="newer tree size; default: the latest"
    ),
) -> dict[str, Any]:
    ctx = get_context(request)
    latest = ctx.pm.store.latest_checkpoint()
    size = latest.size if latest else 0
    to = size if to_size is None else to_size
    if to > size:
        raise Problem(
            422,
            "invalid-parameter",
            f"to={to} is beyond the log's size {size}",
            field="query.to",
            reason=f"greater than the tree size {size}",
        )
    if from_size > to:
        raise Problem(
            422,
            "invalid-parameter",
            f"from={from_size} is greater than to={to}",
            field="query.from",
            reason="greater than to",
        )
    proof = ctx.pm.log.consistency_proof(from_size, to)
    out: dict[str, Any] = {
        "from": from_size,
        "to": to,
        "proof": [base64.b64encode(h).decode() for h in proof],
    }
    for key, n in (("from_checkpoint", from_size), ("to_checkpoint", to)):
        cp = ctx.pm.store.checkpoint(n) if n else None
        if cp is not None:
            out[key] = cp.note
    return out


@router.get(
    "/.well-known/provmark/keys",
    summary="Public keys with validity windows, the log verifier key and the signed "
    "revocation list",
)
def keys(request: Request) -> dict[str, Any]:
    ctx = get_context(request)
    pm = ctx.pm
    return {
        "origin": pm.store.origin,
        "keys": [
            k.to_json() for k in sorted(pm.public_keys(), key=lambda k: (k.not_before, k.key_id))
        ],
        "log_key": pm.log_verifier.key_string(),
        "revocations": pm.log.signed_revocations(),  # signed by the log key, as in keys export
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
