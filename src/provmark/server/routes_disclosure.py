"""AI-disclosure answers: the same ``provmark.disclosure`` code as ``provmark disclose``.

``POST /v1/disclose``          the disclosure of uploaded content: a multipart ``file``
                               (its file name helps find the media type), or JSON
                               ``{"text": ...}`` / ``{"content_base64": ..., "name": ...}``
``GET  /v1/disclose/{id}``     the disclosure of a record (id or slug)
``GET  /v1/disclosure/report`` coverage over ``since`` (an age like 30d, or RFC 3339)
                               .. ``until`` (default now)

Every answer is 200 with the fields, their sources and the verdict (``verified`` true or
false); bad input is a problem+json 4xx naming the field.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..disclosure import coverage, disclose_bytes, disclose_record
from ..errors import ConfigError, NotFoundError
from .context import Reader, get_context
from .problems import Problem
from .routes_records import read_body

router = APIRouter(tags=["AI disclosure"])


def _bad(field: str, reason: str) -> Problem:
    return Problem(422, "invalid-parameter", f"{field}: {reason}", field=field, reason=reason)


async def _upload(request: Request, limit: int) -> tuple[bytes, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _bad("body.file", "send the content as a file field 'file'")
        data = await upload.read(limit + 1)
        name = upload.filename or "content"
        await form.close()
        if len(data) > limit:
            raise Problem(413, "too-large", f"the file is over {limit} bytes", field="body.file")
        return data, name
    try:
        body = json.loads(await read_body(request, limit))
    except ValueError as exc:
        raise Problem(400, "malformed-json", f"the body is not JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    name = body.get("name", "content.txt" if "text" in body else "content")
    if not isinstance(name, str):
        raise _bad("body.name", "must be a string")
    if isinstance(body.get("text"), str):
        return body["text"].encode("utf-8", errors="surrogatepass"), name
    if isinstance(body.get("content_base64"), str):
        try:
            return base64.b64decode(body["content_base64"], validate=True), name
        except (binascii.Error, ValueError):
            raise _bad("body.content_base64", "not base64") from None
    raise _bad("body", "give text or content_base64 (or GET /v1/disclose/{id})")


@router.post(
    "/v1/disclose", summary="The AI-disclosure fields of content, with sources and verdict"
)
async def post_disclose(request: Request, who: Reader) -> dict[str, Any]:
    ctx = get_context(request)
    data, name = await _upload(request, ctx.settings.max_body_bytes)
    try:
        result = await run_in_threadpool(disclose_bytes, ctx.pm, data, name=name)
    except ConfigError as exc:
        raise _bad("body", str(exc)) from None
    answer: dict[str, Any] = result.to_json()
    return answer


@router.get("/v1/disclose/{record_id}", summary="The AI-disclosure fields of a record")
async def get_disclose(request: Request, record_id: str, who: Reader) -> dict[str, Any]:
    ctx = get_context(request)
    try:
        result = await run_in_threadpool(disclose_record, ctx.pm, record_id)
    except NotFoundError as exc:
        raise Problem(404, "not-found", str(exc), field="path.record_id") from None
    answer: dict[str, Any] = result.to_json()
    return answer


@router.get("/v1/disclosure/report", summary="Disclosure coverage over a period")
async def get_report(
    request: Request,
    who: Reader,
    since: str = Query("30d", description="an age (30d, 12h) or an RFC 3339 time"),
    until: str | None = Query(None, description="an age or an RFC 3339 time; default now"),
) -> dict[str, Any]:
    ctx = get_context(request)
    try:
        report = await run_in_threadpool(lambda: coverage(ctx.pm, since=since, until=until))
    except ConfigError as exc:
        raise _bad("query.since", str(exc)) from None
    answer: dict[str, Any] = report.to_json()
    return answer
