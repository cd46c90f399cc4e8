"""Prometheus metrics of one server process (its own registry, no global state).

Names (``deploy/grafana/provmark.json`` and ``deploy/prometheus/alerts.yml`` use
exactly these; ``METRIC_NAMES`` lists them for the tests):

counters   provmark_records_ingested_total{mode}          records accepted (stored or queued)
           provmark_ingest_rejected_total{reason}          batches refused (invalid, too_large, ...)
           provmark_verifications_total{result}            POST /v1/verify answers (verified|failed)
           provmark_verification_failures_total{check}     failed verifications by check
           provmark_webhook_deliveries_total{result}       delivered | failed (will retry) | dead
           provmark_http_requests_total{method,route,status}
           provmark_auth_failures_total{status}            401 and 403 answers
           provmark_capture_failures_total                 records the writer could not sign/store
           provmark_writer_failures_total                  store errors the writer retried
histograms provmark_ingest_batch_records                   records per POST /v1/records
           provmark_ingest_latency_seconds                 POST /v1/records until stored/queued
           provmark_http_request_duration_seconds{route}
gauges     provmark_queue_depth                            records waiting in the writer queue
           provmark_queue_lag                              queue messages not yet consumed (--queue)
           provmark_log_tree_size                          records in the Merkle log
           provmark_checkpoint_age_seconds                 age of the latest signed checkpoint
           provmark_webhook_pending                        deliveries waiting (incl. retries)
           provmark_webhook_dead_letters                   deliveries that gave up
           provmark_dead_letters                           records the store refused, set aside
           provmark_writer_stuck_seconds                   how long the writer has failed to store
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("provmark.server")

METRIC_NAMES = (
    "provmark_records_ingested_total",
    "provmark_ingest_rejected_total",
    "provmark_verifications_total",
    "provmark_verification_failures_total",
    "provmark_webhook_deliveries_total",
    "provmark_http_requests_total",
    "provmark_auth_failures_total",
    "provmark_capture_failures_total",
    "provmark_writer_failures_total",
    "provmark_ingest_batch_records",
    "provmark_ingest_latency_seconds",
    "provmark_http_request_duration_seconds",
    "provmark_queue_depth",
    "provmark_queue_lag",
    "provmark_log_tree_size",
    "provmark_checkpoint_age_seconds",
    "provmark_webhook_pending",
    "provmark_webhook_dead_letters",
    "provmark_dead_letters",
    "provmark_writer_stuck_seconds",
)

_BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Snapshot(Collector):
    """Gauges read when Prometheus scrapes (not on the request path)."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        try:
            s = self._read()
        except Exception as exc:  # a scrape must not fail because the store is down
            log.warning("metrics: cannot read the store: %s", exc)
            return
        yield GaugeMetricFamily(
            "provmark_queue_depth", "Records waiting in the writer queue", value=s.get("pending", 0)
        )
        if s.get("queue_lag") is not None:
            yield GaugeMetricFamily(
                "provmark_queue_lag", "Queue messages not yet consumed", value=s["queue_lag"]
            )
        yield GaugeMetricFamily(
            "provmark_log_tree_size", "Records in the Merkle log", value=s.get("tree_size", 0)
        )
        at = s.get("checkpoint_at")
        if at:
            yield GaugeMetricFamily(
                "provmark_checkpoint_age_seconds",
                "Seconds since the latest signed checkpoint",
                value=max(0.0, time.time() - _epoch(at)),
            )
        failures = s.get("capture_failures", 0) + s.get("rejected", 0)
        yield CounterMetricFamily(
            "provmark_capture_failures",
            "Records that could not be signed or stored",
            value=failures,
        )
        yield CounterMetricFamily(
            "provmark_writer_failures",
            "Store errors the writer retried",
            value=s.get("writer_failures", 0),
        )
        yield GaugeMetricFamily(
            "provmark_dead_letters",
            "Records the store refused, kept in the dead-letter list with the reason",
            value=s.get("dead_letters", 0),
        )
        yield GaugeMetricFamily(
            "provmark_writer_stuck_seconds",
            "Seconds the writer has been failing to store the records it holds (0: it is not)",
            value=s.get("writer_stuck_seconds", 0.0),
        )
        if "webhook_pending" in s:
            yield GaugeMetricFamily(
                "provmark_webhook_pending", "Webhook deliveries waiting", value=s["webhook_pending"]
            )
            yield GaugeMetricFamily(
                "provmark_webhook_dead_letters",
                "Webhook deliveries that gave up",
                value=s["webhook_dead"],
            )


def _epoch(rfc3339: str) -> float:
    head = rfc3339[:19]
    frac = rfc3339[19:].rstrip("Z")
    base = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return base + (float(frac) if frac.startswith(".") else 0.0)


class Metrics:
    """The counters and histograms the app updates, plus scrape-time gauges."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        r = self.registry = CollectorRegistry()
        self.records_ingested = Counter(
            "provmark_records_ingested", "Records accepted (stored or queued)", ["mode"], registry=r
        )
        self.ingest_rejected = Counter(
            "provmark_ingest_rejected", "Ingest batches refused", ["reason"], registry=r
        )
        self.verifications = Counter(
            "provmark_verifications", "Verification answers", ["result"], registry=r
        )
        self.verification_failures = Counter(
            "provmark_verification_failures", "Failed verifications by check", ["check"], registry=r
        )
        self.webhook_deliveries = Counter(
            "provmark_webhook_deliveries",
            "Webhook delivery attempts by result",
            ["result"],
            registry=r,
        )
        self.http_requests = Counter(
            "provmark_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.auth_failures = Counter(
            "provmark_auth_failures",
            "Requests refused by authentication or role",
            ["status"],
            registry=r,
        )
        self.batch_records = Histogram(
            "provmark_ingest_batch_records",
            "Records per ingest batch",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.ingest_latency = Histogram(
            "provmark_ingest_latency_seconds",
            "Ingest request time until the batch is stored (or queued)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_duration = Histogram(
            "provmark_http_request_duration_seconds",
            "HTTP request duration",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_Snapshot(snapshot))

    def render(self) -> bytes:
        return generate_latest(self.registry)
