"""The UI's files and per-app state: read once from ``static/`` when the app is built."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from importlib.resources import files

from .dashboard import DashboardCache

ASSET_PREFIX = "/ui"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@dataclass
class WebState:
    """What the UI keeps per app (on ``app.state.provmark_web``)."""

    assets: dict[str, Asset]
    cache: DashboardCache = field(default_factory=DashboardCache)
    started_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )


def load_assets() -> dict[str, Asset]:
    """Every file of ``static/`` by name (the folder is flat)."""
    found: dict[str, Asset] = {}
    for item in files("provmark.web").joinpath("static").iterdir():
        name = item.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if not item.is_file() or suffix not in MEDIA_TYPES:
            continue
        body = item.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found[name] = Asset(body, MEDIA_TYPES[suffix], etag)
    if "index.html" not in found:
        raise RuntimeError("provmark.web: static/index.html is missing from the package")
    return found
