"""JSON endpoints the web UI needs beyond the public API, under ``/v1/ui/``.

They use the server's own auth dependencies, so tokens, roles, the sanitized view
and the audit log work exactly as in the API:

``GET  /v1/ui/session``                     who the token is (any role; ingest may not read)
``GET  /v1/ui/dashboard?window=1h``         records per bucket, totals, checkpoint, failures
``GET  /v1/ui/checkpoints?limit=``          signed checkpoints, newest first
``GET  /v1/ui/records/{id}/checks``         every check of the stored record but the content,
                                            and the fields the caller's view changes
``GET  /v1/ui/records/{id}/signed``         its exact signed bytes (auditors, or when the
                                            sanitized view would change nothing)
``GET  /v1/ui/records/{id}/lineage``        ancestors and descendants (see ``lineage``)
``GET  /v1/ui/records/{id}/export/{fmt}``   PROV / in-toto / OpenLineage of the record and
                                            its ancestors, as a download
``POST /v1/ui/c2pa``                        the C2PA manifest of an uploaded file, and the
                                            record it names, verified

They are left out of the OpenAPI document: they serve the UI and may change with it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from .._version import __version__
from ..errors import VerificationError
from ..export import get_exporter, lineage
from ..record import slug_for
from ..server.auth import ROLES, Principal
from ..server.context import Reader, ServerContext, get_context, require
from ..server.problems import Problem
from ..server.views import record_json, sensitive_fields
from ..store.base import StoredRecord
from .assets import WebState
from .dashboard import WINDOWS, activity, checkpoint_status
from .lineage import MAX_DEPTH, lineage_graph

router = APIRouter(include_in_schema=False)


# format -> (file name suffix, label)
EXPORTS: dict[str, tuple[str, str]] = {
    "prov-json": (".prov.json", "W3C PROV-JSON"),
    "prov-jsonld": (".prov.jsonld", "W3C PROV JSON-LD"),
    "prov-o": (".prov.ttl", "W3C PROV-O (Turtle)"),
    "prov-n": (".provn", "W3C PROV-N"),
    "in-toto": (".intoto.jsonl", "in-toto statements (DSSE)"),
    "openlineage": (".openlineage.jsonl", "OpenLineage run events"),
}

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.provmark_web
    return state


def _stored(ctx: ServerContext, record_id: str) -> StoredRecord:
    stored = ctx.pm.store.get(record_id)
    if stored is None:
        raise Problem(
            404,
            "not-found",
            f"no record {record_id!r} (give a record id or a slug pm-YYYYMMDD-xxxxxx)",
            field="path.record_id",
            reason="no such record",
        )
    return stored


def _counter(metric: Any) -> dict[str, float]:
    """label value -> count of a one-label prometheus Counter."""
    out: dict[str, float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels:
                out[next(iter(sample.labels.values()))] = sample.value
    return out


@router.get("/v1/ui/config")
def config(request: Request) -> dict[str, Any]:
    """What the page needs before sign-in (no token): whether the server asks for one."""
    return {"auth": get_context(request).settings.auth, "version": __version__}


@router.get("/v1/ui/session")
def session(
    request: Request,
    who: Principal = Depends(require(*ROLES)),  # noqa: B008
) -> dict[str, Any]:
    ctx = get_context(request)
    readers = ("developer", "auditor", "admin")
    return {
        "role": who.role,
        "name": who.name,
        "token_id": who.token_id,
        "view": "full" if who.full_view else "sanitized",
        "can_read": who.allowed(readers),
        "auth": ctx.settings.auth,
        "origin": ctx.pm.store.origin,
        "version": __version__,
    }


@router.get("/v1/ui/dashboard")
def dashboard(
    request: Request,
    who: Reader,
    window: str = Query("1h", description=f"one of {', '.join(WINDOWS)}"),
) -> dict[str, Any]:
    if window not in WINDOWS:
        raise Problem(
            422,
            "invalid-parameter",
            f"window must be one of {', '.join(WINDOWS)}, not {window!r}",
            field="query.window",
            reason="unknown window",
        )
    ctx = get_context(request)
    pm = ctx.pm
    answer = dict(activity(pm, window, web_state(request).cache))
    stats = pm.stats()
    answer["checkpoint"] = checkpoint_status(pm, datetime.now(UTC))
    answer["totals"] = {"records": stats.get("records", 0), "tree_size": stats.get("tree_size", 0)}
    verification = _counter(ctx.metrics.verification_failures)
    outcomes = _counter(ctx.metrics.verifications)
    answer["failures"] = {
        "since": web_state(request).started_at,
        "capture": int(stats.get("capture_failures", 0)) + int(stats.get("rejected", 0)),
        "writer_retries": int(stats.get("writer_failures", 0)),
        "ingest_rejected": int(sum(_counter(ctx.metrics.ingest_rejected).values())),
        "error_records": int(answer["by_status"].get("error", 0)),
        "verifications": {k: int(v) for k, v in outcomes.items()},
        "verification_failures": {k: int(v) for k, v in sorted(verification.items())},
    }
    answer["pending"] = int(stats.get("pending", 0))
    answer["dead_letters"] = {
        "count": int(stats.get("dead_letters", 0)),
        "newest": [d.to_json() for d in pm.dead_letters(10)] if stats.get("dead_letters") else [],
    }
    return answer


@router.get("/v1/ui/checkpoints")
def checkpoints(
    request: Request,
    who: Reader,
    limit: int = Query(500, ge=1, le=5000),
) -> dict[str, Any]:
    ctx = get_context(request)
    found = ctx.pm.store.checkpoints(limit)
    return {
        "origin": ctx.pm.store.origin,
        "log_key": ctx.pm.log_verifier.key_string(),
        "checkpoints": [
            {
                "size": cp.size,
                "created_at": cp.created_at,
                "root": base64.b64encode(cp.root).decode(),
            }
            for cp in found
        ],
        "complete": len(found) < limit,
    }


def _record_checks(ctx: ServerContext, stored: StoredRecord) -> dict[str, Any]:
    """The one Verifier's report on a stored record (no content: ``output_hash`` not run)."""
    report = ctx.pm.verification(None, record_id=stored.record_id)
    out: dict[str, Any] = {"verified": report.verified, "checks": report.to_json()["checks"]}
    failed = report.failed
    if failed is not None:
        out.update(failed_check=failed.name, reason=failed.detail)
    if report.outcome is not None:
        out.update(tree_size=report.outcome.tree_size, checkpoint=report.outcome.checkpoint)
    return out


def hidden_fields(ctx: ServerContext, who: Principal, payloads: list[bytes]) -> list[str]:
    """The fields of these stored records that ``who``'s view changes ([] for auditors)."""
    if who.full_view:
        return []
    found: set[str] = set()
    for payload in payloads:
        found.update(sensitive_fields(json.loads(payload), ctx.sanitize_json))
    return sorted(found)


@router.get("/v1/ui/records/{record_id}/checks")
def record_checks(request: Request, record_id: str, who: Reader) -> dict[str, Any]:
    """Signature, key window, checkpoint and inclusion proof of the stored record, and
    which of its fields the caller's view changes (``sanitized_fields``)."""
    ctx = get_context(request)
    stored = _stored(ctx, record_id)
    return {
        "record_id": stored.record_id,
        **_record_checks(ctx, stored),
        "view": "full" if who.full_view else "sanitized",
        "sanitized_fields": hidden_fields(ctx, who, [stored.payload]),
    }


@router.get("/v1/ui/records/{record_id}/signed")
def record_signed(request: Request, record_id: str, who: Reader) -> dict[str, Any]:
    """The exact signed bytes of a record (RFC 8785 text), its signature and log position,
    for re-checking in the browser. Like a bundle: auditors, or records the sanitized
    view would not change."""
    ctx = get_context(request)
    stored = _stored(ctx, record_id)
    hidden = hidden_fields(ctx, who, [stored.payload])
    if hidden:
        raise Problem(
            403,
            "signed-needs-auditor",
            f"the signed record holds {', '.join(hidden)}, which your view hides; "
            "only an auditor may read its bytes",
            field=hidden[0],
            reason="would reveal data the sanitized view hides",
        )
    ctx.audit_read(request, who, "record.signed", stored.record_id)
    return {
        "record_id": stored.record_id,
        "payload": stored.payload.decode("utf-8"),
        "signature": stored.signature,
        "log": {
            "index": stored.index,
            "leaf_hash": base64.b64encode(stored.leaf_hash()).decode(),
        },
    }


@router.get("/v1/ui/records/{record_id}/lineage")
def record_lineage(
    request: Request,
    record_id: str,
    who: Reader,
    depth: int = Query(3, ge=1, le=MAX_DEPTH),
) -> dict[str, Any]:
    ctx = get_context(request)
    graph = lineage_graph(ctx.pm.store, record_id, depth=depth)
    if who.full_view:
        return graph
    # parents that are not records here are free text (URIs, ids of other systems): shown
    # as the sanitized view shows ``parents[]``
    external = [n["id"] for n in graph["nodes"] if n.get("kind") == "external"]
    if not external:
        return graph
    shown = dict(zip(external, ctx.sanitize_json({"parents": external})["parents"], strict=True))
    for node in graph["nodes"]:
        node["id"] = shown.get(node["id"], node["id"])
    for edge in graph["edges"]:
        edge["from"] = shown.get(edge["from"], edge["from"])
        edge["to"] = shown.get(edge["to"], edge["to"])
    return graph


@router.get("/v1/ui/records/{record_id}/export/{fmt}")
def record_export(request: Request, record_id: str, fmt: str, who: Reader) -> Response:
    """The record and its ancestors in an open standard; records are exported as stored,
    so (like bundles) only an auditor gets records holding data the sanitized view hides."""
    ctx = get_context(request)
    if fmt not in EXPORTS:
        raise Problem(
            404,
            "not-found",
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORTS)}",
            field="path.fmt",
            reason="unknown format",
        )
    stored = _stored(ctx, record_id)
    chain = lineage(ctx.pm.store, stored.record_id)
    hidden = hidden_fields(ctx, who, [s.payload for s in chain])
    if hidden:
        raise Problem(
            403,
            "export-needs-auditor",
            "an export carries the records as stored and these hold "
            f"{', '.join(hidden)}; only an auditor may export them",
            field=hidden[0],
            reason="would reveal data the sanitized view hides",
        )

    def resolve(ref: str) -> Any:
        found = ctx.pm.store.get(ref)
        return found.record() if found is not None else None

    try:
        exporter = get_exporter(
            fmt, signer=ctx.pm.signer if fmt == "in-toto" else None, resolve=resolve
        )
        result = exporter.export(chain)
        body = result if isinstance(result, bytes) else b"".join(result)
    except ImportError as exc:
        raise Problem(
            501,
            "export-unavailable",
            f"this server cannot export {fmt}: {exc} (install provmark[standards])",
        ) from None
    ctx.audit_read(request, who, "record.export", ",".join(s.record_id for s in chain))
    suffix = EXPORTS[fmt][0]
    return Response(
        body,
        media_type=exporter.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{slug_for(stored.record_id)}{suffix}"'
        },
    )


def _c2pa_answer(
    ctx: ServerContext, who: Principal, path: Path, sidecar: Path | None
) -> dict[str, Any]:
    try:
        from ..export import c2pa as c2pa_export
    except ImportError as exc:
        raise Problem(
            501,
            "c2pa-unavailable",
            f"this server cannot read C2PA manifests: {exc} (install provmark[standards])",
        ) from None
    with path.open("rb") as fh:
        head = fh.read(64)
    if sidecar is None and c2pa_export.sniff(head) is None:
        return {
            "found": False,
            "reason": f"{path.name} is not an image format that embeds C2PA manifests "
            "(send its .c2pa sidecar with it)",
        }
    from ..verification.store import load_anchors, verify_marked

    try:
        verdict, report = verify_marked(
            ctx.pm.log, path, sidecar=sidecar, trust_anchors=load_anchors(ctx.settings.c2pa_trust)
        )
    except VerificationError as exc:
        return {"found": False, "reason": exc.detail.replace(str(path.parent) + os.sep, "")}
    manifest = report.to_json()
    manifest["sidecar"] = report.sidecar is not None
    answer: dict[str, Any] = {
        "found": True,
        "manifest": manifest,
        "verified": verdict.verified,
        "checks": verdict.to_json()["checks"],
    }
    failed = verdict.failed
    if failed is not None:
        answer.update(failed_check=failed.name, reason=failed.detail)
    v = verdict.outcome
    if verdict.verified and v is not None:
        answer.update(
            record_id=v.record_id,
            record=ctx.view(record_json(v.payload, v.signature, v.index, v.leaf_hash), who),
        )
    return answer


async def _save(upload: UploadFile, folder: Path, fallback: str, limit: int) -> Path:
    name = _SAFE_NAME.sub("_", Path(upload.filename or fallback).name).lstrip(".") or fallback
    target = folder / name
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise Problem(
                    413,
                    "body-too-large",
                    f"the upload is over the limit of {limit} bytes",
                    field="body.file",
                    reason=f"over {limit} bytes",
                )
            out.write(chunk)
    return target


@router.post("/v1/ui/c2pa")
async def c2pa_manifest(request: Request, who: Reader) -> dict[str, Any]:
    """The C2PA manifest of an uploaded file (embedded, or a ``sidecar`` .c2pa upload)."""
    ctx = get_context(request)
    limit = ctx.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(
            413, "body-too-large", f"the body is over {limit} bytes", field="body", reason="size"
        )
    form = await request.form()
    upload, side = form.get("file"), form.get("sidecar")
    if not isinstance(upload, UploadFile):
        raise Problem(
            422,
            "invalid-parameter",
            "send the file as a multipart field 'file'",
            field="body.file",
            reason="missing",
        )
    with tempfile.TemporaryDirectory(prefix="provmark-ui-") as tmp:
        folder = Path(tmp)
        path = await _save(upload, folder, "upload", limit)
        sidecar = None
        if isinstance(side, UploadFile):
            sidecar = await _save(side, folder, "upload.c2pa", limit)
            if sidecar == path:
                raise Problem(
                    422,
                    "invalid-parameter",
                    "the sidecar has the same name as the file",
                    field="body.sidecar",
                    reason="same name as file",
                )
        await form.close()
        answer = await run_in_threadpool(_c2pa_answer, ctx, who, path, sidecar)
    if answer.get("verified"):
        ctx.audit_read(request, who, "record.verify", answer["record_id"])
    return answer
