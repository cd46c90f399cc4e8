"""``serve``: open the store, build the app, run uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ..client import open as open_provmark
from ..client import resolve_target
from ..errors import ConfigError
from .settings import Settings
from .state import resolve_state

log = logging.getLogger("provmark.server")

NO_AUTH_WARNING = """
************************************************************************
*  provmark serve --no-auth: AUTHENTICATION IS OFF.                     *
*  Anyone who can reach this port can read every record in full,        *
*  write records and manage webhooks. For a local demo only.            *
************************************************************************
"""


def open_queue(url: str) -> Any:
    """The queue for ``--queue URL`` (``provmark.queue``, imported only when asked for)."""
    try:
        from ..queue import open_queue as opener
    except ImportError as exc:
        raise ConfigError(f"--queue needs provmark.queue: {exc}") from None
    return opener(url)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    db: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    state: str | None = None,
    queue_url: str | None = None,
    auth: bool = True,
    settings_overrides: dict[str, Any] | None = None,
    access_log: bool = False,
    log_level: str = "info",
    pm_options: dict[str, Any] | None = None,
) -> None:
    """Serve the provmark API on ``host:port`` until interrupted."""
    import uvicorn

    from .app import create_app

    if not auth:
        if not is_loopback(host):
            raise ConfigError(f"--no-auth serves only on a loopback address, not {host!r}")
        sys.stderr.write(NO_AUTH_WARNING)
        log.warning("authentication is OFF (--no-auth)")
    target = resolve_target(db)
    if target.startswith(("http://", "https://")):
        raise ConfigError("serve needs a SQLite file or a postgresql:// URL, not a remote server")
    state_target = resolve_state(state, target, home)
    queue = open_queue(queue_url) if queue_url else None
    pm = open_provmark(target, home=home, **(pm_options or {}))
    try:
        settings = Settings(
            state=state_target,
            auth=auth,
            queue=queue,
            queue_url=queue_url,
            **(settings_overrides or {}),
        )
        app = create_app(pm, settings=settings)
        where = target if target.startswith("postgres") else str(Path(target).resolve())
        sys.stderr.write(
            f"provmark {'(no auth) ' if not auth else ''}serving http://{host}:{port}  "
            f"store {_safe(where)}  state {_safe(state_target)}"
            + (f"  queue {queue_url}" if queue_url else "")
            + "\n"
        )
        sys.stderr.flush()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            timeout_graceful_shutdown=10,
            lifespan="on",
        )
        uvicorn.Server(config).run()
    finally:
        try:
            pm.close()
        finally:
            close = getattr(queue, "close", None)
            if callable(close):
                close()


def _safe(target: str) -> str:
    """A URL without its password, for printing."""
    if "://" in target and "@" in target:
        scheme, rest = target.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return target
