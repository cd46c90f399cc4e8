"""OpenLineage: one RunEvent per record, built with openlineage-python's classes.

* ``eventType`` COMPLETE, or FAIL when the record's status is ``error`` (with the
  standard ``errorMessage`` run facet);
* ``run.runId`` = the record id (a UUIDv7, as OpenLineage recommends), run facets
  ``provmark`` (custom; schema ``docs/schema/openlineage-provmark-run-facet.json``)
  and ``processing_engine``;
* ``job`` = ``<namespace>`` / ``<service or "provmark">.<operation>``;
* inputs = the model (namespace ``model://<provider>``) and the datasets (named from
  their URIs per the OpenLineage naming conventions), with ``version`` facets;
* output = the generated artifact (from ``output.uri``, else ``provmark`` /
  ``output/<sha256>``) with ``version`` and ``outputStatistics`` facets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar
from urllib.parse import urlparse

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.base import DatasetFacet, OutputDatasetFacet, RunFacet
from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.job_type_job import JobTypeJobFacet
from openlineage.client.generated.output_statistics_output_dataset import (
    OutputStatisticsOutputDatasetFacet,
)
from openlineage.client.generated.processing_engine_run import ProcessingEngineRunFacet
from openlineage.client.serde import Serde

from ..errors import ProvmarkError
from ..record import Record
from .base import RecordLike, with_payload

MEDIA_TYPE = "application/x-ndjson"
FACET_SCHEMA_URL = (
    "https://provmark.dev/schema/openlineage-provmark-run-facet.json#/$defs/ProvmarkRunFacet"
)


def producer_uri() -> str:
    from .._version import __version__

    return f"https://provmark.dev/provmark/{__version__}"


@attr.define(kw_only=True)
class ProvmarkRunFacet(RunFacet):
    """The provmark record behind a run: ids, hashes, signature and log position."""

    recordId: str
    slug: str
    schemaVersion: str
    operation: str
    status: str
    generatedAt: str
    payloadSha256: str
    startedAt: str | None = None
    model: dict[str, Any] = attr.field(factory=dict)
    inputSha256: str | None = None
    seed: str | None = None
    outputSha256: str | None = None
    outputMediaType: str | None = None
    params: dict[str, Any] | None = None
    actor: dict[str, str] | None = None
    parents: list[str] | None = None
    tags: dict[str, str] | None = None
    usage: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    signature: dict[str, str] | None = None
    log: dict[str, Any] | None = None

    _additional_skip_redact: ClassVar[list[str]] = [
        "recordId",
        "slug",
        "payloadSha256",
        "inputSha256",
        "outputSha256",
        "signature",
        "log",
    ]

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA_URL


def _camel(d: dict[str, Any]) -> dict[str, Any] | None:
    out = {}
    for k, v in d.items():
        if v is None:
            continue
        head, *rest = k.split("_")
        out[head + "".join(p.title() for p in rest)] = v
    return out or None


def provmark_facet(record: Record, payload: bytes, producer: str) -> ProvmarkRunFacet:
    r = record
    return ProvmarkRunFacet(
        producer=producer,
        recordId=r.record_id,
        slug=r.slug,
        schemaVersion=r.schema_version,
        operation=r.operation,
        status=r.status,
        startedAt=r.started_at,
        generatedAt=r.generated_at,
        payloadSha256=hashlib.sha256(payload).hexdigest(),
        model=_camel(r.model.model_dump(exclude={"files"})) or {},
        inputSha256=r.input.sha256,
        seed=r.input.seed,
        outputSha256=r.output.sha256 if r.output else None,
        outputMediaType=r.output.media_type if r.output else None,
        params=r.params or None,
        actor=_camel(r.actor.model_dump()),
        parents=list(r.parents) or None,
        tags=dict(r.tags) or None,
        usage=_camel(r.usage.model_dump()) if r.usage else None,
        fallback=_camel(r.fallback.model_dump()) if r.fallback else None,
        error=_camel(r.error.model_dump()) if r.error else None,
        signature=_camel(r.signature.model_dump()) if r.signature else None,
        log=_camel(r.log.model_dump()) if r.log else None,
    )


def dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a dataset URI, after the OpenLineage naming conventions."""
    u = urlparse(uri)
    if u.scheme == "file":
        return "file", u.path or uri
    if u.scheme and u.netloc:
        return f"{u.scheme}://{u.netloc}", u.path.lstrip("/") or "/"
    if u.scheme:
        return u.scheme, uri[len(u.scheme) + 1 :]
    return "file", uri


def run_event(
    record: Record, payload: bytes, *, namespace: str = "provmark", producer: str | None = None
) -> RunEvent:
    """The RunEvent of one record."""
    r = record
    producer = producer or producer_uri()
    run_facets: dict[str, RunFacet] = {
        "provmark": provmark_facet(r, payload, producer),
        "processing_engine": ProcessingEngineRunFacet(
            producer=producer, version=producer.rsplit("/", 1)[-1], name="provmark"
        ),
    }
    if r.status == "error":
        message = f"{r.error.type}: {r.error.message or ''}" if r.error else "generation failed"
        run_facets["errorMessage"] = ErrorMessageRunFacet(
            producer=producer, message=message.rstrip(": "), programmingLanguage="python"
        )
    m = r.model
    model_facets: dict[str, DatasetFacet] = {}
    model_version = m.digest or m.revision or m.version
    if model_version:
        model_facets["version"] = DatasetVersionDatasetFacet(
            producer=producer, datasetVersion=model_version
        )
    inputs = [
        InputDataset(
            namespace=f"model://{m.provider}" if m.provider else "model",
            name=m.name + (f"@{m.version}" if m.version else ""),
            facets=model_facets,
        )
    ]
    for ds in r.input.datasets:
        ns, name = dataset_name(ds.uri)
        facets: dict[str, DatasetFacet] = {}
        if ds.sha256:
            facets["version"] = DatasetVersionDatasetFacet(
                producer=producer, datasetVersion=ds.sha256
            )
        inputs.append(InputDataset(namespace=ns, name=name, facets=facets))
    outputs = []
    for o in r.all_outputs():
        ns, name = dataset_name(o.uri) if o.uri else ("provmark", f"output/{o.sha256}")
        out_facets: dict[str, OutputDatasetFacet] = {}
        if o.size is not None:
            out_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
                producer=producer, size=o.size
            )
        outputs.append(
            OutputDataset(
                namespace=ns,
                name=name,
                facets={
                    "version": DatasetVersionDatasetFacet(
                        producer=producer, datasetVersion=o.sha256
                    )
                },
                outputFacets=out_facets,
            )
        )
    job = Job(
        namespace=namespace,
        name=f"{r.actor.service or 'provmark'}.{r.operation}",
        facets={
            "jobType": JobTypeJobFacet(
                producer=producer,
                processingType="BATCH",
                integration="PROVMARK",
                jobType="GENERATION",
            )
        },
    )
    return RunEvent(
        eventType=RunState.FAIL if r.status == "error" else RunState.COMPLETE,
        eventTime=r.generated_at,
        run=Run(runId=r.record_id, facets=run_facets),
        job=job,
        inputs=inputs,
        outputs=outputs,
        producer=producer,
    )


def event_json(event: RunEvent) -> dict[str, Any]:
    """The event as the JSON object OpenLineage consumers receive."""
    return Serde.to_dict(event)


class OpenLineageExporter:
    """JSON lines, one RunEvent per record."""

    def __init__(self, *, namespace: str = "provmark", producer: str | None = None) -> None:
        self._namespace = namespace
        self._producer = producer

    @property
    def name(self) -> str:
        return "openlineage"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPE

    def events(self, records: Iterable[RecordLike]) -> Iterator[RunEvent]:
        for item in records:
            record, payload = with_payload(item)
            yield run_event(record, payload, namespace=self._namespace, producer=self._producer)

    def export(self, records: Iterable[RecordLike]) -> Iterator[bytes]:
        for event in self.events(records):
            yield (Serde.to_json(event, separators=(",", ":")) + "\n").encode()


def send(
    events: Iterable[RunEvent],
    url: str,
    *,
    endpoint: str = "api/v1/lineage",
    api_key: str | None = None,
    timeout: float = 10.0,
    retries: int = 2,
) -> int:
    """POST each event to an OpenLineage HTTP endpoint (Marquez and others); return the count.

    Uses openlineage-python's ``HttpTransport`` (with its retry policy).
    """
    from openlineage.client.transport.http import (
        ApiKeyTokenProvider,
        HttpConfig,
        HttpTransport,
        TokenProvider,
    )

    auth = ApiKeyTokenProvider({"api_key": api_key}) if api_key else TokenProvider({})
    retry = {
        "total": retries,
        "read": retries,
        "connect": retries,
        "backoff_factor": 0.2,
        "status_forcelist": [500, 502, 503, 504],
        "allowed_methods": ["HEAD", "POST"],
    }
    try:
        transport = HttpTransport(
            HttpConfig(url=url, endpoint=endpoint, timeout=timeout, auth=auth, retry=retry)
        )
    except ValueError as exc:
        raise ProvmarkError(f"OpenLineage endpoint {url!r}: {exc}") from None
    sent = 0
    try:
        for event in events:
            try:
                transport.emit(event)
            except Exception as exc:  # requests/urllib3 errors of many kinds
                raise ProvmarkError(
                    f"OpenLineage endpoint {url} refused event {sent + 1}: {exc}"
                ) from exc
            sent += 1
    finally:
        transport.close()
    return sent
