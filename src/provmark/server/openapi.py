"""Export the OpenAPI document: ``python -m provmark.server.openapi docs/openapi.json``."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..client import Provmark
from .settings import Settings, WebhookSettings


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app (built against a throwaway store)."""
    from .app import create_app

    with tempfile.TemporaryDirectory(prefix="provmark-openapi-") as tmp:
        base = Path(tmp)
        with Provmark.open(base / "provmark.db", home=base / "home") as pm:
            settings = Settings(state=str(base / "server.db"))
            settings = replace(settings, webhooks=WebhookSettings(enabled=False))
            app = create_app(pm, settings=settings)
            doc = app.openapi()
            app.state.provmark.state.close()
    return doc


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args and args[0] != "-":
        Path(args[0]).write_text(text)
        print(args[0])
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
