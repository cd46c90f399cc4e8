"""The auditor web UI, served by ``provmark serve`` at ``/``.

    from provmark.server import Settings, create_app
    from provmark.web import mount

    app = create_app(pm, settings=Settings(state="server.db"))
    mount(app)          # the UI at /, its files at /ui/*, its JSON at /v1/ui/*

Pages: sign in with an API token, dashboard, search, record detail (with the lineage
graph, checks and exports), verify by upload, and the log. Plain HTML/CSS/JS modules
shipped in ``static/``; nothing is fetched from the network. See ``docs/webui.md``.
"""

from __future__ import annotations

from .mount import mount

__all__ = ["mount"]
