"""Server settings: limits, auth, where the state lives, webhook delivery tuning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_BATCH_RECORDS = 10_000


@dataclass(frozen=True)
class WebhookSettings:
    """Delivery tuning. Backoff after attempt n is ``min(backoff_max, backoff_base * 2**(n-1))``."""

    workers: int = 4
    timeout: float = 5.0
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    poll_interval: float = 0.5  # how often new checkpoints are looked for
    lease: float = 60.0  # a claimed delivery is retried elsewhere after this long
    records_per_event: int = 500
    enabled: bool = True


@dataclass(frozen=True)
class Settings:
    """What ``create_app`` needs besides the ``Provmark`` object.

    ``state``: SQLite path or ``postgresql://`` URL of the tokens / audit log /
    webhooks database (see :func:`provmark.server.state.resolve_state`).
    ``auth=False`` is ``--no-auth``: every request may do everything.
    ``queue``: an object with ``publish(batch: list[dict]) -> None`` (returns once
    the batch is persisted); when set, ``POST /v1/records`` publishes there and
    answers 202 instead of storing through ``pm.ingest``.
    """

    state: str
    auth: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS
    ingest_timeout: float = 60.0
    max_page: int = 1000
    queue: Any = None
    queue_url: str | None = None
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    title: str = "provmark"
    c2pa_trust: str | None = None  # PEM trust anchors for uploaded C2PA manifests (--c2pa-trust)
