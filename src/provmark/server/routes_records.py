"""``/v1/records``: batch ingest, read one, list with filters, proof, bundle.

Ingest rule for a batch with invalid records: **all or nothing**. Every record is
validated first; if any is invalid the answer is 422 with one entry per invalid
record in ``errors`` (``field`` = ``[i].path.to.field``) and nothing is stored, so
a client can fix or drop the named records and send the batch again. Records whose
``record_id`` is already stored are skipped (idempotent re-POST) and listed in
``duplicates``; the same id twice in one batch is invalid. The validation is
``Provmark.validate`` (``provmark.capture.intake``), the same in direct and queue mode and in the
worker. A record the store itself refuses is dead-lettered: 422 ``record-refused``
naming it, with the ids that were stored (docs/server.md, "Dead letters").
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..canonical import to_json_value
from ..client import Provmark
from ..errors import ConfigError, InvalidBatch, NotFoundError, RecordsRefused, VerificationError
from ..privacy.errors import AccessDenied
from ..record import slug_for
from ..store.base import StoredRecord
from ..verify import parse_checkpoint_body
from .context import Reader, ServerContext, Writer, get_context
from .problems import Problem

router = APIRouter(tags=["records"])

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NDJSON = (
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/ndjson",
)

_BATCH_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A JSON array of unsigned records (schema_version 1 or 2), "
        "or NDJSON: one record per line. Within the I-JSON limits: no NaN/Infinity, "
        "integers within +-(2^53 - 1), no NUL or lone surrogate, at most 32 levels deep; "
        "no record_id twice in one batch.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Record"},
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 once it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(
            413,
            "body-too-large",
            f"the body is {declared} bytes; the limit is {limit}",
            field="body",
            reason=f"over {limit} bytes",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                413,
                "body-too-large",
                f"the body is over the limit of {limit} bytes",
                field="body",
                reason=f"over {limit} bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)


# Where orjson's reading is not exact: it reads integers past 64 bits as floats (2**70
# became 1.18e+21; integers up to 64 bits stay integers and the I-JSON check refuses
# those past 2^53) and refuses NaN/Infinity and lone surrogates. A body with a number
# token of 19 digits or more (every integer past 64 bits has one; a hex digest inside a
# string does not follow ':', '[' or ',') or that orjson refuses is read by json, whose
# integers are exact, and the I-JSON check then names the field (intake.validate_batch).
_LONG_DIGITS = re.compile(rb"[:\[,]\s*-?[0-9]{19}")


def _not_json_number(name: str) -> float:
    return float(name)  # NaN, Infinity, -Infinity: kept so that the check names the field


def parse_json(text: bytes, where: str) -> Any:
    """One JSON document, read exactly; 400 naming ``where`` when it is not JSON or is
    nested too deeply to read."""
    try:
        if _LONG_DIGITS.search(text) is None:
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
        return json.loads(text, parse_constant=_not_json_number)
    except RecursionError:
        reason = "nested too deeply to read"
    except ValueError as exc:
        reason = str(exc)
    raise Problem(
        400, "malformed-json", f"{where} is not JSON: {reason}", field=where, reason=reason
    )


def parse_batch(body: bytes, content_type: str) -> list[Any]:
    """A JSON array (or one object), or NDJSON; 400 naming the line/position when malformed."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in _NDJSON:
        return [
            parse_json(line, f"body.line[{n}]")
            for n, line in enumerate(body.splitlines(), 1)
            if line.strip()
        ]
    if kind not in ("application/json", "") and not kind.endswith("+json"):
        raise Problem(
            415,
            "unsupported-media-type",
            f"send application/json or application/x-ndjson, not {kind!r}",
            field="header.content-type",
            reason=f"{kind} is not accepted",
        )
    data = parse_json(body, "body")
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise Problem(
            422,
            "invalid-batch",
            "the body must be a JSON array of records",
            field="body",
            reason=f"got a JSON {type(data).__name__}",
        )
    return data


def validate_batch(pm: Provmark, items: list[Any]) -> list[dict[str, Any]]:
    """Every record validated as ``pm.ingest`` does (``Provmark.validate``); 422 listing
    each invalid one."""
    try:
        return pm.validate(items)
    except InvalidBatch as exc:
        raise invalid_batch(exc) from None


def invalid_batch(exc: InvalidBatch) -> Problem:
    errors = [{"field": f, "reason": r} for f, r in exc.errors]
    first = errors[0]
    return Problem(
        422,
        "invalid-record",
        f"{len(errors)} of {exc.total} records are invalid; nothing was stored "
        f"(first: {first['field']}: {first['reason']})",
        field=first["field"],
        reason=first["reason"],
        errors=errors,
    )


def refused_records(exc: RecordsRefused) -> Problem:
    errors = [
        {"field": f"[{exc.positions.get(rid, '?')}]", "reason": f"refused by the store: {why}"}
        for rid, why in exc.refused.items()
    ]
    return Problem(
        422,
        "record-refused",
        f"the store refused {len(errors)} record(s); they are in the dead-letter list and "
        f"not stored; the other {len(exc.stored)} were stored",
        field=errors[0]["field"],
        reason=errors[0]["reason"],
        errors=errors,
        refused=list(exc.refused),
        stored=exc.stored,
    )


@router.post(
    "/v1/records",
    summary="Store a batch of records (JSON array or NDJSON); idempotent by record_id",
    openapi_extra=_BATCH_SCHEMA,
    responses={
        202: {"description": "Queued (server started with --queue)"},
        413: {"description": "Body or batch too large"},
        422: {"description": "Invalid records"},
    },
)
async def post_records(
    request: Request,
    who: Writer,
) -> JSONResponse:
    ctx = get_context(request)
    started = time.perf_counter()
    s = ctx.settings
    body = await read_body(request, s.max_body_bytes)
    items = await run_in_threadpool(parse_batch, body, request.headers.get("content-type", ""))
    if len(items) > s.max_batch_records:
        ctx.metrics.ingest_rejected.labels("too_many_records").inc()
        raise Problem(
            413,
            "too-many-records",
            f"{len(items)} records in one batch; the limit is {s.max_batch_records}",
            field="body",
            reason=f"over {s.max_batch_records} records",
        )
    if not items:
        raise Problem(
            422, "invalid-batch", "the batch has no records", field="body", reason="empty"
        )
    try:
        result = await run_in_threadpool(_store_batch, ctx, items)
    except Problem:
        ctx.metrics.ingest_rejected.labels("invalid").inc()
        raise
    ctx.metrics.batch_records.observe(len(items))
    ctx.metrics.ingest_latency.observe(time.perf_counter() - started)
    mode = "queue" if ctx.queue is not None else "direct"
    ctx.metrics.records_ingested.labels(mode).inc(result.get("stored", result["accepted"]))
    return JSONResponse(result, status_code=202 if ctx.queue is not None else 200)


def _store_batch(ctx: ServerContext, items: list[Any]) -> dict[str, Any]:
    prints = _client_fingerprints(items)
    result = _store_records(ctx, items)
    if prints:
        result["fingerprints"] = _store_fingerprints(ctx, prints)
    return result


def _client_fingerprints(items: list[Any]) -> list[Any]:
    """Text fingerprints a client sent with its records (docs/soft-binding.md), taken off
    the records before they are validated; 422 naming the field when one is malformed."""
    if not any(isinstance(d, Mapping) and "fingerprint" in d for d in items):
        return []
    from ..errors import RecordError
    from ..softbind import client_prints

    try:
        return client_prints.take(items)
    except RecordError as exc:
        raise Problem(
            422, "invalid-record", f"{exc.field}: {exc.reason}", field=exc.field, reason=exc.reason
        ) from None


def _store_fingerprints(ctx: ServerContext, prints: list[Any]) -> int:
    from ..softbind import client_prints

    return client_prints.store(ctx.pm, prints)


def _store_records(ctx: ServerContext, items: list[Any]) -> dict[str, Any]:
    if ctx.queue is not None:
        drafts = validate_batch(ctx.pm, items)  # the worker validates again, the same way
        ctx.queue.publish([to_json_value(d) for d in drafts])
        return {
            "accepted": len(drafts),
            "queued": True,
            "record_ids": [d["record_id"] for d in drafts],
        }
    ids = [d.get("record_id") for d in items if isinstance(d, Mapping)]
    known = ctx.pm.store.has([i for i in ids if isinstance(i, str)])
    try:
        stored = ctx.pm.ingest(items, timeout=ctx.settings.ingest_timeout)
    except InvalidBatch as exc:
        raise invalid_batch(exc) from None
    except RecordsRefused as exc:
        ctx.metrics.ingest_rejected.labels("refused_by_store").inc()
        raise refused_records(exc) from None
    dupes = [i for i in stored if i in known]
    return {
        "accepted": len(stored),
        "stored": len(stored) - len(dupes),
        "duplicates": dupes,
        "record_ids": stored,
    }


@router.get(
    "/v1/dead-letters",
    summary="Records the store refused: id, when, why, how often (newest first)",
)
def dead_letters(
    request: Request,
    who: Reader,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    ctx = get_context(request)
    letters = ctx.pm.dead_letters(limit)
    return {
        "count": ctx.pm.dead_letter_count(),
        "dead_letters": [d.to_json() for d in letters],
    }


def _stored(ctx: ServerContext, record_id: str) -> StoredRecord:
    stored = ctx.pm.store.get(record_id)
    if stored is None:
        raise NotFoundError(
            f"no record {record_id!r} (give a record id or a slug pm-YYYYMMDD-xxxxxx)"
        )
    return stored


@router.get("/v1/records/{record_id}", summary="One record by id or slug")
def get_record(
    request: Request,
    record_id: str,
    who: Reader,
) -> dict[str, Any]:
    ctx = get_context(request)
    record = ctx.records(request, who).get(record_id)
    ctx.audit_read(request, who, "record.read", record.record_id)
    return ctx.shown(record, who)


@router.get("/v1/records", summary="Records matching every filter, newest first, cursor-paginated")
def list_records(
    request: Request,
    who: Reader,
    output: str | None = Query(None, description="output SHA-256 (64 lowercase hex)"),
    model: str | None = None,
    actor: str | None = Query(None, description="actor user id as stored"),
    operation: str | None = None,
    status: str | None = Query(None, pattern="^(ok|error)$"),
    since: str | None = Query(None, description="RFC 3339 time or an age: 30m, 6h, 2d, 1w"),
    until: str | None = Query(None, description="RFC 3339 time or an age"),
    tag: Annotated[list[str] | None, Query(description="KEY=VALUE, repeatable")] = None,
    limit: int = Query(50, ge=1, le=10_000),
    cursor: str | None = None,
    order: str = Query("desc", pattern="^(asc|desc)$"),
) -> dict[str, Any]:
    ctx = get_context(request)
    if limit > ctx.settings.max_page:
        raise Problem(
            422,
            "invalid-parameter",
            f"limit is at most {ctx.settings.max_page}",
            field="query.limit",
            reason=f"over {ctx.settings.max_page}",
        )
    if output is not None and not _HEX64.match(output):
        raise Problem(
            422,
            "invalid-parameter",
            "output must be a SHA-256 in 64 lowercase hex digits",
            field="query.output",
            reason="not a SHA-256 hex digest",
        )
    tags = {}
    for t in tag or []:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise Problem(
                422,
                "invalid-parameter",
                f"tag {t!r}: use KEY=VALUE",
                field="query.tag",
                reason="not KEY=VALUE",
            )
        tags[key] = value
    try:
        page = ctx.records(request, who).find(
            output=output,
            model=model,
            actor=actor,
            operation=operation,
            status=status,
            since=since,
            until=until,
            tags=tags,
            limit=limit,
            cursor=cursor,
            order=order,
        )
    except ConfigError as exc:
        field = f"query.{exc.field}" if exc.field else "query"
        raise Problem(422, "invalid-parameter", str(exc), field=field, reason=exc.message) from None
    records = [ctx.shown(r, who) for r in page.records]
    if records:
        ctx.audit_read(request, who, "record.list", ",".join(r["record_id"] for r in records))
    out: dict[str, Any] = {
        "records": records,
        "count": len(records),
        "next_cursor": page.next_cursor,
    }
    if page.next_cursor:
        out["next"] = str(request.url.include_query_params(cursor=page.next_cursor))
    return out


@router.get(
    "/v1/records/{record_id}/proof", summary="Inclusion proof of a record against a checkpoint"
)
def get_proof(
    request: Request,
    who: Reader,
    record_id: str,
    tree_size: int | None = Query(
        None, ge=1, le=2**63 - 1, description="a checkpointed size; default: the latest"
    ),
) -> dict[str, Any]:
    ctx = get_context(request)
    stored = _stored(ctx, record_id)
    checkpoint = None
    if tree_size is not None:
        checkpoint = ctx.pm.store.checkpoint(tree_size)
        if checkpoint is None:
            raise Problem(
                404,
                "not-found",
                f"no checkpoint of size {tree_size}",
                field="query.tree_size",
                reason="no such checkpoint",
            )
    try:
        ev = ctx.pm.log.evidence(stored, checkpoint)
    except VerificationError as exc:
        raise Problem(
            409, "not-logged", exc.detail, field="path.record_id", reason=exc.detail
        ) from None
    return {
        "record_id": stored.record_id,
        "index": ev.index,
        "leaf_hash": base64.b64encode(stored.leaf_hash()).decode(),
        "tree_size": parse_checkpoint_body(ev.checkpoint).size,
        "proof": [base64.b64encode(h).decode() for h in ev.proof],
        "checkpoint": ev.checkpoint,
        "origin": ev.origin,
        "log_key": ctx.pm.log_verifier.key_string(),
    }


@router.get(
    "/v1/records/{record_id}/bundle", summary="Offline bundle (*.provmark.json) of a record"
)
def get_bundle(
    request: Request,
    record_id: str,
    who: Reader,
) -> JSONResponse:
    ctx = get_context(request)
    stored = _stored(ctx, record_id)
    try:
        bundle = ctx.records(request, who).bundle(stored.record_id)
    except AccessDenied as exc:
        raise Problem(
            403,
            "bundle-needs-auditor",
            f"{exc} (a bundle carries the signed record verbatim; developers: POST /v1/verify)",
            field="path.record_id",
            reason="the bundle would reveal data the sanitized view hides",
        ) from None
    ctx.audit_read(request, who, "record.bundle", stored.record_id)
    slug = slug_for(stored.record_id)
    return JSONResponse(
        bundle,
        media_type="application/vnd.provmark.bundle+json",
        headers={"Content-Disposition": f'attachment; filename="{slug}.provmark.json"'},
    )
