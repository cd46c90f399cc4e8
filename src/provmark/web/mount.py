"""``mount(app)``: serve the web UI at ``/``, its files under ``/ui/``, its JSON under ``/v1/ui/``.

The files are plain HTML, CSS and JavaScript modules shipped inside the package
(``static/``): nothing is fetched from another host, no build step, no CDN. They
are read once when the app is built and answered with a strong ``ETag``. Every
UI response carries a Content-Security-Policy that allows this origin only.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from .assets import ASSET_PREFIX, SECURITY_HEADERS, Asset, WebState, load_assets


def _answer(request: Request, asset: Asset, cache: str) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": cache}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def mount(app: FastAPI) -> None:
    """Serve the web UI on ``app`` (built by ``provmark.server.create_app``).

    Replaces the placeholder page at ``/``; adds ``/ui/<file>`` and the ``/v1/ui/...``
    endpoints. Calling it twice on one app does nothing the second time.
    """
    if getattr(app.state, "provmark_web", None) is not None:
        return
    from . import routes

    state = WebState(assets=load_assets())
    app.state.provmark_web = state
    app.router.routes = [
        r
        for r in app.router.routes
        if not (isinstance(r, APIRoute) and r.path == "/" and "GET" in (r.methods or ()))
    ]
    app.include_router(routes.router)

    @app.get("/", include_in_schema=False)
    def ui_index(request: Request) -> Response:
        # no-cache: revalidated on every load, so a new version is picked up at once
        return _answer(request, state.assets["index.html"], "no-cache")

    @app.get(ASSET_PREFIX, include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/", status_code=308)

    @app.get(ASSET_PREFIX + "/{name}", include_in_schema=False)
    def ui_asset(request: Request, name: str) -> Response:
        asset = state.assets.get(name)
        if asset is None or name == "index.html":
            from ..server.problems import Problem

            raise Problem(404, "not-found", f"no UI file {name!r}")
        return _answer(request, asset, "no-cache")
