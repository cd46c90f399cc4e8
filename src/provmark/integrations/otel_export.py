"""Records out to OpenTelemetry: OTLP spans or log events, by the official OTLP/HTTP exporters.

    exporter = RecordExporter("http://collector:4318", signal="logs")
    exporter.export(pm.store.iter_records())            # or records, bundles' records, ...
    Forwarder(pm.store, exporter, cursor="otlp.cursor").run_once()   # only what is new

Each record becomes one span (``signal="spans"``) or one log event named
``provmark.record`` (``signal="logs"``), with the GenAI semantic-convention attributes
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.*``, ...) and
``provmark.*`` ones (record id, output hash, log index, signing key). A record made
inside a traced call (``extra.trace_id``/``span_id``, see :func:`otel.link_spans` and the
span processor) lands in that trace: its span is a child of the call's span, its log
event carries the call's trace and span id. Other records get a trace of their own whose
id is the record id (a UUIDv7 is 128 bits), so re-exporting a record gives the same ids.
A log event's body is the record's exact signed bytes (RFC 8785) and its attributes hold
the signature, so a log backend keeps evidence that still verifies.

The endpoint is the collector's base URL (``http://host:4318``; ``/v1/traces`` or
``/v1/logs`` is added) or, when omitted, what ``OTEL_EXPORTER_OTLP_*`` configures, as
for any OpenTelemetry SDK exporter (headers, certificates, compression, timeout).
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError, ProvmarkError
from ..record import Record, parse_time, slug_for
from ..store.base import Store, StoredRecord
from .common import require

log = logging.getLogger("provmark.integrations")

EVENT_NAME = "provmark.record"
SIGNALS = ("spans", "logs")
_PATHS = {"spans": "v1/traces", "logs": "v1/logs"}
_HEX = re.compile(r"[0-9a-f]+")
_REQUEST = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}

RecordItem = StoredRecord | Record | Mapping[str, Any]


class ExportError(ProvmarkError):
    """The OTLP endpoint did not take a batch (nothing after it was sent)."""


def _exporter_modules() -> Any:
    require(
        "opentelemetry.exporter.otlp.proto.http",
        extra="otel",
        package="opentelemetry-exporter-otlp-proto-http",
        minimum="1.39",
        below="2",
    )
    from opentelemetry.exporter.otlp.proto.http import _log_exporter, trace_exporter

    return trace_exporter, _log_exporter


def _ns(text: str) -> int:
    dt = parse_time(text)
    return calendar.timegm(dt.utctimetuple()) * 1_000_000_000 + dt.microsecond * 1000


def _hex_id(value: Any, digits: int) -> int | None:
    if isinstance(value, str) and len(value) == digits and _HEX.fullmatch(value):
        return int(value, 16) or None
    return None


def span_ids(payload: Mapping[str, Any]) -> tuple[int, int, int | None]:
    """(trace id, span id, parent span id) of a record's span.

    In the trace of the call it was made in, as a child of the call's span, when the
    record names them; else in a trace whose id is the record id. The span id is the
    first 8 bytes of SHA-256(record id), so the same record always gets the same ids.
    """
    record_id = str(payload["record_id"])
    span_id = int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:8], "big") or 1
    extra = payload.get("extra") or {}
    trace_id = _hex_id(extra.get("trace_id"), 32)
    parent = _hex_id(extra.get("span_id"), 16)
    if trace_id is not None and parent is not None:
        return trace_id, span_id, parent
    return uuid.UUID(record_id).int, span_id, None


Parts = tuple[dict[str, Any], str | None, dict[str, str] | None, int | None]


def _parts(item: RecordItem) -> Parts:
    """(record, exact signed text or None, signature, log index) of a stored or plain record."""
    if isinstance(item, StoredRecord):
        return orjson.loads(item.payload), item.payload.decode(), item.signature, item.index
    if isinstance(item, Record):  # pm.get / pm.find, embedded or remote
        signed = item.signature.model_dump() if item.signature is not None else None
        return item.payload_dict(), None, signed, item.log.index if item.log else None
    record = {k: v for k, v in item.items() if k not in ("signature", "log", "slug")}
    signature = item.get("signature")
    log = item.get("log") or {}
    index = log.get("index") if isinstance(log, Mapping) else None
    return record, None, dict(signature) if signature else None, index


def attributes(item: RecordItem) -> dict[str, Any]:
    """The OpenTelemetry attributes of one record (GenAI conventions + ``provmark.*``)."""
    return _attributes(_parts(item))


def _attributes(parts: Parts) -> dict[str, Any]:
    record, _, signature, index = parts
    model = record.get("model") or {}
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": record.get("operation", ""),
        "gen_ai.request.model": model.get("name", ""),
        "provmark.record_id": record["record_id"],
        "provmark.record.slug": slug_for(record["record_id"]),
        "provmark.schema_version": str(record.get("schema_version", "1")),
        "provmark.status": record.get("status", "ok"),
    }
    if model.get("provider"):
        attrs["gen_ai.provider.name"] = model["provider"]
    for key in ("version", "digest", "revision"):
        if model.get(key):
            attrs[f"provmark.model.{key}"] = str(model[key])
    params = record.get("params") or {}
    for name, attr in _REQUEST.items():
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[attr] = value
    stop = params.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs["gen_ai.request.stop_sequences"] = stop
    for part in ("input", "output"):
        info = record.get(part) or {}
        if info.get("sha256"):
            attrs[f"provmark.{part}.sha256"] = info["sha256"]
        if info.get("media_type"):
            attrs[f"provmark.{part}.media_type"] = info["media_type"]
    usage = record.get("usage") or {}
    for key in ("input_tokens", "output_tokens"):
        if isinstance(usage.get(key), int):
            attrs[f"gen_ai.usage.{key}"] = usage[key]
    extra = record.get("extra") or {}
    fallback = record.get("fallback") or {}
    served = fallback.get("served_model") or extra.get("served_model")
    if served:
        attrs["gen_ai.response.model"] = str(served)
    if extra.get("response_id"):
        attrs["gen_ai.response.id"] = str(extra["response_id"])
    for key in ("requested_model", "served_model", "reason"):
        if fallback.get(key):
            attrs[f"provmark.fallback.{key}"] = fallback[key]
    error = record.get("error") or {}
    if error.get("type"):
        attrs["error.type"] = error["type"]
    actor = record.get("actor") or {}
    if actor.get("user_id"):
        attrs["enduser.id"] = actor["user_id"]
    if actor.get("service"):
        attrs["provmark.actor.service"] = actor["service"]
    if record.get("parents"):
        attrs["provmark.parents"] = [str(p) for p in record["parents"]]
    for key, value in (record.get("tags") or {}).items():
        attrs[f"provmark.tag.{key}"] = str(value)
    if index is not None and index >= 0:
        attrs["provmark.log.index"] = index
    if signature:
        attrs["provmark.signature.alg"] = signature.get("alg", "")
        attrs["provmark.signature.key_id"] = signature.get("key_id", "")
    return attrs


def _scope() -> Any:
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from .._version import __version__

    return InstrumentationScope("provmark", __version__)


Resolve = Callable[[str], Mapping[str, Any] | None]


def _parent_ids(record_id: str, resolve: Resolve | None) -> tuple[int, int, int | None]:
    """The span ids of a parent record: where it went (``resolve`` finds it), else its own."""
    found = resolve(record_id) if resolve is not None else None
    return span_ids(found if found is not None else {"record_id": record_id})


def store_resolver(store: Store) -> Resolve:
    """Parent records looked up in ``store`` (their trace and span ids as exported)."""

    def resolve(record_id: str) -> Mapping[str, Any] | None:
        stored = store.get(record_id)
        return orjson.loads(stored.payload) if stored is not None else None

    return resolve


def to_span(item: RecordItem, resource: Any, resolve: Resolve | None = None) -> Any:
    """A finished ``ReadableSpan`` for one record (from ``started_at`` to ``generated_at``);
    each parent record is a link to its span (``resolve`` finds parents made in a trace)."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    parts = _parts(item)
    record = parts[0]
    trace_id, span_id, parent_id = span_ids(record)
    flags = TraceFlags(TraceFlags.SAMPLED)
    parent = SpanContext(trace_id, parent_id, True, flags) if parent_id is not None else None
    links = []
    for rid in record.get("parents") or ():
        try:
            linked = _parent_ids(str(uuid.UUID(str(rid))), resolve)
        except ValueError:
            continue  # a parent that is an artefact hash, not a record
        links.append(Link(SpanContext(linked[0], linked[1], True, flags)))
    error = record.get("error") or {}
    status = (
        Status(StatusCode.ERROR, f"{error.get('type')}: {error.get('message', '')}")
        if record.get("status") == "error"
        else Status(StatusCode.UNSET)
    )
    end = _ns(record["generated_at"])
    start = _ns(record["started_at"]) if record.get("started_at") else end
    model = (record.get("model") or {}).get("name", "")
    return ReadableSpan(
        name=f"{record.get('operation', 'generate')} {model}".strip(),
        context=SpanContext(trace_id, span_id, False, flags),
        parent=parent,
        resource=resource,
        attributes=_attributes(parts),
        links=links,
        kind=SpanKind.INTERNAL,
        instrumentation_scope=_scope(),
        status=status,
        start_time=start,
        end_time=max(start, end),
    )


def to_log(item: RecordItem, resource: Any) -> Any:
    """A ``provmark.record`` log event for one record; the body is the exact signed text."""
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from ..canonical import canonical_bytes

    parts = _parts(item)
    record, signed, signature, _ = parts
    trace_id, span_id, parent_id = span_ids(record)
    attrs = _attributes(parts)
    if signature:
        attrs["provmark.signature.sig"] = signature.get("sig", "")
    failed = record.get("status") == "error"
    span_context = SpanContext(
        trace_id,
        parent_id if parent_id is not None else span_id,
        True,
        TraceFlags(TraceFlags.SAMPLED),
    )
    log = LogRecord(
        timestamp=_ns(record["generated_at"]),
        observed_timestamp=time.time_ns(),
        context=set_span_in_context(NonRecordingSpan(span_context)),
        severity_text="ERROR" if failed else "INFO",
        severity_number=SeverityNumber.ERROR if failed else SeverityNumber.INFO,
        body=signed if signed is not None else canonical_bytes(record).decode(),
        attributes=attrs,
        event_name=EVENT_NAME,
    )
    return ReadableLogRecord(log_record=log, resource=resource, instrumentation_scope=_scope())


def endpoint_url(endpoint: str | None, signal: str) -> str | None:
    """``http://host:4318`` -> ``http://host:4318/v1/traces`` (or ``/v1/logs``); a full
    signal URL is kept; None leaves it to ``OTEL_EXPORTER_OTLP_*``."""
    if endpoint is None:
        return None
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"OTLP endpoint {endpoint!r}: give an http(s):// URL (OTLP/HTTP)")
    if endpoint.rstrip("/").endswith(("/v1/traces", "/v1/logs")):
        return endpoint
    return f"{endpoint.rstrip('/')}/{_PATHS[signal]}"


class RecordExporter:
    """Sends records to an OTLP/HTTP endpoint as spans or log events (protobuf encoding)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        signal: str = "spans",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        service_name: str = "provmark",
        resource_attributes: Mapping[str, str] | None = None,
        batch_size: int = 512,
        resolve: Resolve | None = None,
    ) -> None:
        if signal not in SIGNALS:
            raise ConfigError(f"signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        from opentelemetry.sdk.resources import Resource

        trace_exporter, log_exporter = _exporter_modules()
        url = endpoint_url(endpoint, signal)
        cls = trace_exporter.OTLPSpanExporter if signal == "spans" else log_exporter.OTLPLogExporter
        self.signal = signal
        self.endpoint = url or "(from OTEL_EXPORTER_OTLP_* settings)"
        self.batch_size = batch_size
        self.resource = Resource.create(
            {"service.name": service_name, **(resource_attributes or {})}
        )
        self.resolve = resolve
        self._exporter = cls(
            endpoint=url, headers=dict(headers) if headers else None, timeout=timeout
        )
        self.sent = 0

    def export(self, items: Iterable[RecordItem]) -> int:
        """Send the records in batches; return how many went. Raises :class:`ExportError`
        naming the first record of a batch the endpoint did not take."""
        count = 0
        for batch in _batches(items, self.batch_size):
            self.export_batch(batch)
            count += len(batch)
        return count

    def export_batch(self, batch: list[RecordItem]) -> None:
        if self.signal == "spans":
            converted = [to_span(item, self.resource, self.resolve) for item in batch]
        else:
            converted = [to_log(item, self.resource) for item in batch]
        result = self._exporter.export(converted)
        if getattr(result, "name", "") != "SUCCESS":
            first = _parts(batch[0])[0]["record_id"] if batch else "?"
            raise ExportError(
                f"OTLP endpoint {self.endpoint} did not take {len(batch)} {self.signal} "
                f"(from record {first}); see the opentelemetry exporter's log for the reason"
            )
        self.sent += len(batch)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def __enter__(self) -> RecordExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _batches(items: Iterable[RecordItem], size: int) -> Iterator[list[RecordItem]]:
    batch: list[RecordItem] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Forwarder:
    """Follows the log of a store and sends every record once it is logged, at least once.

    The cursor file holds the next log index to send; it moves only after the endpoint
    took a batch, so a collector that is down delays records and loses none (records
    sent just before a crash may be sent again; their span ids are the same).
    """

    def __init__(
        self, store: Store, exporter: RecordExporter, *, cursor: str | Path | None = None
    ) -> None:
        self.store = store
        self.exporter = exporter
        self.cursor_path = Path(cursor) if cursor is not None else None
        self.position = self._load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _load(self) -> int:
        if self.cursor_path is None or not self.cursor_path.exists():
            return 0
        text = self.cursor_path.read_text().strip()
        if not text.isdigit():
            raise ConfigError(f"OTLP cursor {self.cursor_path}: {text!r} is not a log index")
        return int(text)

    def _save(self) -> None:
        if self.cursor_path is None:
            return
        tmp = self.cursor_path.with_name(self.cursor_path.name + ".tmp")
        tmp.write_text(f"{self.position}\n")
        os.replace(tmp, self.cursor_path)

    def run_once(self) -> int:
        """Send what was logged since the cursor; return how many records went."""
        size = self.store.tree_size()
        sent = 0
        for batch in _batches(
            self.store.iter_records(self.position, size), self.exporter.batch_size
        ):
            self.exporter.export_batch(batch)
            last = batch[-1]
            assert isinstance(last, StoredRecord)
            self.position = last.index + 1
            self._save()
            sent += len(batch)
        return sent

    def run(
        self, interval: float = 5.0, on_error: Callable[[Exception], None] | None = None
    ) -> None:
        """Forward until :meth:`stop`; a failed batch is retried after ``interval``."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except ProvmarkError as exc:
                if on_error is None:
                    raise
                on_error(exc)
            self._stop.wait(interval)

    def start(
        self, interval: float = 5.0, on_error: Callable[[Exception], None] | None = None
    ) -> None:
        """Forward on a background thread (``stop()`` ends it after a last pass); failures
        go to ``on_error``, by default logged at ERROR on the ``provmark`` logger."""
        self._thread = threading.Thread(
            target=self.run,
            args=(interval, on_error or _log_failure),
            name="provmark-otlp",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """End the background thread, then send what is left (raises if that fails)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.run_once()


def _log_failure(exc: Exception) -> None:
    log.error("provmark: records not forwarded yet (will retry): %s", exc)
