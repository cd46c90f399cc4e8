"""Security headers on every answer, and ``/docs``: the API reference, served from here.

FastAPI's default ``/docs`` page loads Swagger UI's script and CSS from a CDN without
subresource integrity, so whoever serves that CDN could run script in the page of an
auditor holding a token. provmark renders the reference itself instead: plain HTML
built from the app's own OpenAPI document (``/openapi.json``), no script at all, and a
Content-Security-Policy that allows nothing but its one inline style sheet.

:class:`SecurityHeaders` adds ``Content-Security-Policy`` (API answers: nothing may
load, nothing may frame them), ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` to each answer that
does not set them itself (the web UI sets its own policy, see ``web/mount.py``).
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DEFAULT_HEADERS = (
    (b"content-security-policy", API_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every HTTP answer that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend((n, v) for n, v in DEFAULT_HEADERS if n not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_headers)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
    "line-height:1.45;color:#1b1f24}code,pre{font-family:ui-monospace,monospace}"
    "h3{margin-bottom:.2em}.method{display:inline-block;min-width:4.5em;font-weight:700}"
    "table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccd;"
    "padding:.2em .5em;text-align:left;vertical-align:top}section{margin-bottom:2em}"
    ".muted{color:#57606a}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
DOCS_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
_METHODS = ("get", "post", "put", "patch", "delete")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    parts = [
        f'<h3 id="{_e(op.get("operationId", path))}"><span class="method">{method.upper()}</span>'
        f" <code>{_e(path)}</code></h3>",
        f"<p>{_e(op.get('summary', ''))}</p>",
    ]
    if op.get("description"):
        parts.append(f'<p class="muted">{_e(op["description"])}</p>')
    params = op.get("parameters") or []
    if params:
        rows = "".join(
            f"<tr><td><code>{_e(p.get('name'))}</code></td><td>{_e(p.get('in'))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{_e(p.get('description') or (p.get('schema') or {}).get('type', ''))}</td></tr>"
            for p in params
        )
        parts.append(
            "<table><thead><tr><th>parameter</th><th>in</th><th>required</th>"
            f"<th>meaning</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    body = op.get("requestBody")
    if body:
        kinds = ", ".join(f"<code>{_e(k)}</code>" for k in (body.get("content") or {}))
        parts.append(f"<p>Body: {kinds}. {_e(body.get('description', ''))}</p>")
    answers = op.get("responses") or {}
    if answers:
        listed = "; ".join(
            f"<code>{_e(code)}</code> {_e(r.get('description', ''))}" for code, r in answers.items()
        )
        parts.append(f'<p class="muted">Answers: {listed}</p>')
    return "".join(parts)


def render_docs(doc: dict[str, Any]) -> str:
    """The API reference page of an OpenAPI document (every string escaped)."""
    info = doc.get("info", {})
    by_tag: dict[str, list[str]] = {}
    for path, item in sorted(doc.get("paths", {}).items()):
        for method in _METHODS:
            op = item.get(method)
            if op is not None:
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(_operation(path, method, op))
    sections = "".join(
        f"<section><h2>{_e(tag)}</h2>{''.join(ops)}</section>" for tag, ops in by_tag.items()
    )
    description = "".join(
        f"<p>{_e(line)}</p>" for line in str(info.get("description", "")).split("\n\n") if line
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(info.get('title', 'provmark'))} API reference</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{_e(info.get('title', 'provmark'))} {_e(info.get('version', ''))}: API reference</h1>"
        f'{description}<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> '
        "(OpenAPI 3.1). Errors are <code>application/problem+json</code>.</p>"
        f"{sections}</body></html>"
    )


def with_record_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the record's JSON Schema in ``components`` (the batch
    ingest body refers to ``#/components/schemas/Record``), so that tools resolve it
    without fetching anything."""
    from ..record import Record

    schema = Record.model_json_schema(ref_template="#/components/schemas/RecordPart{model}")
    parts = schema.pop("$defs", {})
    found = doc.setdefault("components", {}).setdefault("schemas", {})
    found["Record"] = schema
    found.update({f"RecordPart{name}": part for name, part in parts.items()})
    return doc


def install_api_docs(app: FastAPI) -> None:
    """``GET /docs``: the reference page of this app's OpenAPI document (which gets the
    record schema in its components, :func:`with_record_schema`)."""
    page: dict[str, str] = {}
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None or "Record" not in app.openapi_schema.get(
            "components", {}
        ).get("schemas", {}):
            app.openapi_schema = with_record_schema(base_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        if "html" not in page:  # the document is final once the app serves requests
            page["html"] = render_docs(app.openapi())
        return HTMLResponse(page["html"], headers={"Content-Security-Policy": DOCS_CSP})
