"""RFC 9457 problem details (``application/problem+json``) for every error.

Every error body has ``type``, ``title``, ``status`` and ``detail``; errors about
input also name the ``field`` and the ``reason``, and list every problem found in
``errors: [{"field", "reason"}]``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ConfigError,
    DataRefused,
    KeyStoreError,
    NotFoundError,
    ProvmarkError,
    RecordError,
    StoreError,
    VerificationError,
)
from ..privacy.errors import AccessDenied

log = logging.getLogger("provmark.server")

PROBLEM_TYPE = "https://provmark.dev/problems/"
MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.field = field
        self.reason = reason
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers
        self.extra = extra


def problem_body(
    status: int,
    kind: str,
    detail: str,
    *,
    instance: str | None = None,
    field: str | None = None,
    reason: str | None = None,
    title: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + kind,
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if field is not None:
        body["field"] = field
        body["reason"] = reason if reason is not None else detail
        body.setdefault("errors", [{"field": field, "reason": body["reason"]}])
    body.update(extra)
    return body


def problem_response(
    request: Request | None,
    status: int,
    kind: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem_body(status, kind, detail, instance=instance, **extra),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "body", "cookie"):
        where, rest = parts[0], parts[1:]
        return f"{where}.{'.'.join(rest)}" if rest else where
    return ".".join(parts) or "<request>"


def install_handlers(app: FastAPI) -> None:
    """Map every error to a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        extra = dict(exc.extra)
        if exc.field is not None:
            extra.update(field=exc.field, reason=exc.reason)
        return problem_response(
            request, exc.status, exc.kind, exc.detail, title=exc.title, headers=exc.headers, **extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(e.get("loc", ())), "reason": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "<request>", "reason": "invalid request"}
        return problem_response(
            request,
            422,
            "invalid-parameter",
            f"{first['field']}: {first['reason']}",
            field=first["field"],
            reason=first["reason"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, kind, detail, headers=headers)

    @app.exception_handler(RecordError)
    async def _record(request: Request, exc: RecordError) -> JSONResponse:
        return problem_response(
            request, 422, "invalid-record", str(exc), field=exc.field, reason=exc.reason
        )

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return problem_response(request, 404, "not-found", str(exc))

    @app.exception_handler(VerificationError)
    async def _verification(request: Request, exc: VerificationError) -> JSONResponse:
        return problem_response(request, 409, "check-failed", str(exc), check=exc.check)

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError) -> JSONResponse:
        if exc.field:
            return problem_response(
                request, 400, "bad-request", str(exc), field=exc.field, reason=exc.message
            )
        return problem_response(request, 400, "bad-request", str(exc))

    @app.exception_handler(DataRefused)
    async def _refused(request: Request, exc: DataRefused) -> JSONResponse:
        log.warning("store refused a value on %s: %s", request.url.path, exc)
        return problem_response(
            request,
            422,
            "value-refused",
            "the store cannot take a value of this request (out of its range or limits)",
        )

    # Store, key and other failures: the details (host, port, database, file names) go to
    # the server log only; the caller learns what failed and that a retry may work.
    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error on %s: %s", request.url.path, exc)
        return problem_response(
            request,
            503,
            "store-unavailable",
            "the record store is unavailable; try again (details are in the server log)",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(KeyStoreError)
    async def _keys(request: Request, exc: KeyStoreError) -> JSONResponse:
        log.error("key store error on %s: %s", request.url.path, exc)
        return problem_response(
            request, 500, "key-error", "a signing or verification key is unavailable"
        )

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        return problem_response(
            request,
            400,
            "malformed-json",
            "the body is nested too deeply to read",
            field="body",
            reason="nested too deeply",
        )

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied) -> JSONResponse:
        return problem_response(request, 403, "forbidden", str(exc))

    @app.exception_handler(ProvmarkError)
    async def _provmark(request: Request, exc: ProvmarkError) -> JSONResponse:
        log.error("error on %s: %s", request.url.path, exc)
        return problem_response(
            request,
            503,
            "unavailable",
            f"{type(exc).__name__}: the request could not be served now; try again "
            "(details are in the server log)",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem_response(
            request, 500, "internal", f"unexpected {type(exc).__name__}; see the server log"
        )
