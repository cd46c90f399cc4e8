"""Serve the provmark API with the web UI mounted, for the UI tests.

This is what ``provmark serve`` runs once ``create_app`` calls ``provmark.web.mount``
(``mount`` does nothing the second time, so this keeps working after that).

    python tests/e2e/ui_server.py --db provmark.db --home home --state server.db --port 8123
"""

from __future__ import annotations

import argparse

import uvicorn

from provmark.client import open as open_provmark
from provmark.server import Settings, create_app
from provmark.web import mount


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db", required=True)
    p.add_argument("--home", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--no-auth", action="store_true")
    args = p.parse_args()
    pm = open_provmark(args.db, home=args.home)
    app = create_app(
        pm, settings=Settings(state=args.state, auth=not args.no_auth), on_shutdown=pm.close
    )
    mount(app)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
