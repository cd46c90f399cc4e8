"""``serve``: open the store, build the app, run uvicorn until SIGINT/SIGTERM.

With ``workers > 1`` uvicorn starts that many processes, each with its own
``Provmark`` (store connection and writer) built by :func:`app_from_env` from the
``PROVMARK_SERVE_CONFIG`` environment variable; on PostgreSQL they append to one
log under the store's sequencer lock. Metrics are then per process.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ..client import Provmark
from ..errors import ConfigError
from ..store.targets import resolve_target
from .settings import Settings, WebhookSettings
from .state import resolve_state

log = logging.getLogger("provmark.server")

CONFIG_ENV = "PROVMARK_SERVE_CONFIG"

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
        raise ConfigError(f"a queue needs provmark.queue: {exc}", field="queue_url") from None
    return opener(url)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _build(config: dict[str, Any]) -> FastAPI:
    """Open the store (and queue) and build an app that closes them when it stops."""
    from .app import create_app

    queue = open_queue(config["queue_url"]) if config.get("queue_url") else None
    pm = Provmark.open(config["target"], home=config.get("home"), **config.get("pm_options", {}))
    overrides = dict(config.get("settings", {}))
    if isinstance(overrides.get("webhooks"), dict):
        overrides["webhooks"] = WebhookSettings(**overrides["webhooks"])
    settings = Settings(
        state=config["state"],
        auth=config["auth"],
        queue=queue,
        queue_url=config.get("queue_url"),
        **overrides,
    )

    def close() -> None:
        try:
            pm.close()
        finally:
            closer = getattr(queue, "close", None)
            if callable(closer):
                closer()

    try:
        mounts = [_resolve(name) for name in config.get("mounts", ())]
        return create_app(pm, settings=settings, on_shutdown=close, mounts=mounts)
    except BaseException:
        close()
        raise


def _resolve(name: str) -> Any:
    """``package.module:function`` (by name, so worker processes can rebuild the app)."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def app_from_env() -> FastAPI:
    """The uvicorn factory of each worker process (``--workers``)."""
    return _build(json.loads(os.environ[CONFIG_ENV]))


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
    workers: int = 1,
    mounts: Sequence[str] = (),
) -> None:
    """Serve the provmark API on ``host:port`` until interrupted; ``mounts`` names the
    functions (``module:function``) that add parts to the app, such as the web UI."""
    import uvicorn

    if not auth:
        if not is_loopback(host):
            raise ConfigError(
                f"without authentication only a loopback address is served, not {host!r}",
                field="host",
            )
        sys.stderr.write(NO_AUTH_WARNING)
        log.warning("authentication is OFF (--no-auth)")
    target = resolve_target(db)
    if target.startswith(("http://", "https://")):
        raise ConfigError("serve needs a SQLite file or a postgresql:// URL, not a remote server")
    overrides = dict(settings_overrides or {})
    webhooks = overrides.get("webhooks")
    if isinstance(webhooks, WebhookSettings):
        overrides["webhooks"] = {f: getattr(webhooks, f) for f in webhooks.__dataclass_fields__}
    state_target = resolve_state(state, target, home)
    config: dict[str, Any] = {
        "target": target,
        "home": os.fspath(home) if home else None,
        "state": state_target,
        "queue_url": queue_url,
        "auth": auth,
        "settings": overrides,
        "pm_options": dict(pm_options or {}),
        "mounts": list(mounts),
    }
    where = target if target.startswith("postgres") else str(Path(target).resolve())
    sys.stderr.write(
        f"provmark {'(no auth) ' if not auth else ''}serving http://{host}:{port}  "
        f"store {_safe(where)}  state {_safe(state_target)}"
        + (f"  queue {queue_url}" if queue_url else "")
        + (f"  {workers} worker processes" if workers > 1 else "")
        + "\n"
    )
    sys.stderr.flush()
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": 10,
        "lifespan": "on",
    }
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        os.environ[CONFIG_ENV] = json.dumps(config)
        uv = uvicorn.Config(
            "provmark.server.run:app_from_env", factory=True, workers=workers, **common
        )
        Multiprocess(uv, sockets=[_listen(host, port)]).run()
        return
    app = _build(config)
    uvicorn.Server(uvicorn.Config(app, **common)).run()


def _listen(host: str, port: int) -> socket.socket:
    """The shared listening socket of the worker processes.

    Made here with ``proto=IPPROTO_TCP``: uvicorn's own (``Config.bind_socket``) leaves
    proto 0, so asyncio never sets TCP_NODELAY on accepted connections and every
    keep-alive request waits ~40 ms for a delayed ACK (uvicorn issue #3149).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _safe(target: str) -> str:
    """A URL without its password, for printing."""
    if "://" in target and "@" in target:
        scheme, rest = target.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return target
