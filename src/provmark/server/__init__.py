"""The provmark HTTP API (``provmark serve``): FastAPI app factory and runner.

    from provmark.server import Settings, create_app, serve

    app = create_app(pm, settings=Settings(state="server.db"))   # an ASGI app
    serve("provmark.db", port=8000)                               # or run it with uvicorn

See ``docs/server.md``.
"""

from .app import create_app
from .run import serve
from .settings import Settings, WebhookSettings

__all__ = ["Settings", "WebhookSettings", "create_app", "serve"]
