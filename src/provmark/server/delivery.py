"""Background webhook work: the log watcher that makes events, and the delivery workers.

Deliveries live in the state database, so they survive restarts and are shared by
every server on it. A worker claims a due delivery with a lease (a conditional
UPDATE, safe across servers), at most one in flight per subscription, so a stuck
subscriber holds at most one worker and only its own deliveries wait. Failures are
retried with exponential backoff; after ``max_attempts`` the delivery becomes a dead
letter (``GET /v1/webhooks/dead-letters``, retry with ``POST .../retry``). Every
attempt is written to the delivery log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..store.base import Store
from .settings import WebhookSettings
from .state import StateDB
from .webhooks import WebhookStore, sign

log = logging.getLogger("provmark.server.webhooks")

OnResult = Callable[[str], None]  # "delivered" | "failed" | "dead"

_CLAIM = """
SELECT d.delivery_id, d.sub_id, d.event_id, d.body, d.attempts, w.url, w.secret
FROM pmsrv_deliveries d JOIN pmsrv_webhooks w ON w.sub_id = d.sub_id
WHERE d.status = 'pending' AND d.next_at <= ? AND d.lease_until <= ?
  AND NOT EXISTS (SELECT 1 FROM pmsrv_deliveries x
                  WHERE x.sub_id = d.sub_id AND x.status = 'pending' AND x.lease_until > ?)
ORDER BY d.next_at LIMIT 8
"""


class WebhookService:
    """Starts the watcher and the delivery workers; ``stop`` ends them."""

    def __init__(
        self,
        store: Store,
        hooks: WebhookStore,
        settings: WebhookSettings,
        on_result: OnResult | None = None,
    ) -> None:
        self.store = store
        self.hooks = hooks
        self.db: StateDB = hooks.db
        self.settings = settings
        self.on_result = on_result or (lambda result: None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client = httpx.Client(timeout=settings.timeout, follow_redirects=False)
        self._cursor_name = f"log:{store.origin}"

    def start(self) -> None:
        self._threads.append(
            threading.Thread(target=self._watch, name="provmark-webhook-watch", daemon=True)
        )
        for i in range(max(1, self.settings.workers)):
            self._threads.append(
                threading.Thread(target=self._work, name=f"provmark-webhook-{i}", daemon=True)
            )
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._client.close()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------ watcher
    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                if self.poll_log():
                    self._wake.set()
            except Exception as exc:
                log.warning("webhook watcher: %s", exc)
            self._stop.wait(self.settings.poll_interval)

    def poll_log(self) -> bool:
        """Turn log growth since the last look into events; True when any were queued."""
        checkpoint = self.store.latest_checkpoint()
        # the first server to look starts at the current size: no events for old history
        self.db.execute(
            "INSERT INTO pmsrv_cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (self._cursor_name, checkpoint.size if checkpoint else 0),
        )
        if checkpoint is None:
            return False
        last = int(
            self.db.query("SELECT value FROM pmsrv_cursors WHERE name = ?", (self._cursor_name,))[
                0
            ][0]
        )
        if checkpoint.size <= last:
            return False
        limit = max(1, self.settings.records_per_event) * 40
        upto = min(checkpoint.size, last + limit)
        subs = self.hooks.subscriptions()
        events: list[tuple[str, dict[str, Any]]] = []
        if any("record.stored" in s.events for s in subs):
            chunk: list[dict[str, Any]] = []
            for stored in self.store.iter_records(last, upto):
                chunk.append(_record_summary(stored.index, stored.record_id, stored.payload))
                if len(chunk) >= self.settings.records_per_event:
                    events.append(("record.stored", {"tree_size": upto, "records": chunk}))
                    chunk = []
            if chunk:
                events.append(("record.stored", {"tree_size": upto, "records": chunk}))
        if upto == checkpoint.size and any("checkpoint.signed" in s.events for s in subs):
            import base64

            events.append(
                (
                    "checkpoint.signed",
                    {
                        "origin": self.store.origin,
                        "size": checkpoint.size,
                        "root": base64.b64encode(checkpoint.root).decode(),
                        "note": checkpoint.note,
                        "created_at": checkpoint.created_at,
                    },
                )
            )
        queued = 0
        with self.db.transaction() as cur:
            moved = cur.execute(
                "UPDATE pmsrv_cursors SET value = ? WHERE name = ? AND value = ?",
                (upto, self._cursor_name, last),
            )
            if moved != 1:
                return False  # another server took this range
            for event_type, data in events:
                queued += self.hooks.enqueue(cur, event_type, data, subs)
        return queued > 0

    # ------------------------------------------------------------ workers
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._claim()
            except Exception as exc:
                log.warning("webhook worker: cannot claim a delivery: %s", exc)
                job = None
            if job is None:
                self._wake.wait(self.settings.poll_interval)
                self._wake.clear()
                continue
            try:
                self._deliver(*job)
            except Exception as exc:  # the state database is down: the lease will expire
                log.warning("webhook worker: %s", exc)

    def _claim(self) -> tuple[str, str, str, int, str, str] | None:
        now = time.time()
        rows = self.db.query(_CLAIM, (now, now, now))
        for delivery_id, sub_id, event_id, body, attempts, url, secret in rows:
            taken = self.db.execute(
                "UPDATE pmsrv_deliveries SET lease_until = ? WHERE delivery_id = ?"
                " AND status = 'pending' AND lease_until <= ?",
                (now + self.settings.lease, delivery_id, now),
            )
            if taken == 1:
                secret = self.hooks.secret_of(sub_id, secret)  # sealed at rest
                return delivery_id, event_id, body, int(attempts), url, secret
        return None

    def _deliver(
        self, delivery_id: str, event_id: str, body: str, attempts: int, url: str, secret: str
    ) -> None:
        raw = body.encode()
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "provmark-webhooks/1",
            "webhook-id": event_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, event_id, ts, raw),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = self._client.post(url, content=raw, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        elapsed_ms = (time.perf_counter() - started) * 1000
        attempt = attempts + 1
        now = time.time()
        with self.db.transaction() as cur:
            logged = cur.query(
                "SELECT COUNT(*) FROM pmsrv_attempts WHERE delivery_id = ?", (delivery_id,)
            )[0][0]  # a dead letter sent again continues its attempt log
            cur.execute(
                "INSERT INTO pmsrv_attempts"
                " (delivery_id, attempt, at, status_code, error, duration_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (delivery_id, int(logged) + 1, now, status, error, elapsed_ms),
            )
            if error is None:
                cur.execute(
                    "UPDATE pmsrv_deliveries SET status = 'delivered', attempts = ?,"
                    " finished_at = ?, last_error = NULL, lease_until = 0 WHERE delivery_id = ?",
                    (attempt, now, delivery_id),
                )
                result = "delivered"
            elif attempt >= self.settings.max_attempts:
                cur.execute(
                    "UPDATE pmsrv_deliveries SET status = 'dead', attempts = ?, finished_at = ?,"
                    " last_error = ?, lease_until = 0 WHERE delivery_id = ?",
                    (attempt, now, error, delivery_id),
                )
                result = "dead"
            else:
                delay = min(
                    self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1)
                )
                cur.execute(
                    "UPDATE pmsrv_deliveries SET attempts = ?, next_at = ?, last_error = ?,"
                    " lease_until = 0 WHERE delivery_id = ?",
                    (attempt, now + delay, error, delivery_id),
                )
                result = "failed"
        if result != "delivered":
            log.info("webhook %s to %s: attempt %d failed (%s)", event_id, url, attempt, error)
        self.on_result(result)


def _record_summary(index: int, record_id: str, payload: bytes) -> dict[str, Any]:
    data = json.loads(payload)
    model = data.get("model") or {}
    output = data.get("output") or {}
    from ..record import slug_for

    summary = {
        "record_id": record_id,
        "slug": slug_for(record_id),
        "log_index": index,
        "model": model.get("name"),
        "model_version": model.get("version"),
        "operation": data.get("operation"),
        "status": data.get("status"),
        "output_sha256": output.get("sha256"),
        "generated_at": data.get("generated_at"),
    }
    return {k: v for k, v in summary.items() if v is not None}
