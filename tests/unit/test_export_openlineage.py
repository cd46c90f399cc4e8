"""OpenLineage RunEvents: spec shape, the provmark facet schema, golden file, HTTP transport.

openlineage-python ships its classes but not the spec's JSON Schema, so
``SPEC`` below is the core of OpenLineage spec 2-0-2 (BaseEvent, RunEvent, Run,
Job, datasets, BaseFacet and the four facet kinds) written out from
https://openlineage.io/spec/2-0-2/OpenLineage.json. Facet schemas of the
standard facets are not repeated here; ours is validated with its published schema.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
from referencing import Registry, Resource

import provmark
from provmark.errors import ProvmarkError
from provmark.export import get_exporter, lineage
from provmark.export.openlineage import (
    FACET_SCHEMA_URL,
    OpenLineageExporter,
    dataset_name,
    event_json,
    run_event,
    send,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden as g  # noqa: E402

OL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def _facet(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"allOf": [{"$ref": "#/$defs/BaseFacet"}, {"type": "object", **(extra or {})}]}


SPEC: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": OL,
    "$defs": {
        "BaseEvent": {
            "type": "object",
            "properties": {
                "eventTime": {"type": "string", "format": "date-time"},
                "producer": {"type": "string", "format": "uri"},
                "schemaURL": {"type": "string", "format": "uri"},
            },
            "required": ["eventTime", "producer", "schemaURL"],
        },
        "RunEvent": {
            "allOf": [
                {"$ref": "#/$defs/BaseEvent"},
                {
                    "type": "object",
                    "properties": {
                        "eventType": {
                            "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]
                        },
                        "run": {"$ref": "#/$defs/Run"},
                        "job": {"$ref": "#/$defs/Job"},
                        "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                        "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
                    },
                    "required": ["run", "job"],
                },
            ]
        },
        "Run": {
            "type": "object",
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/RunFacet"}},
            },
            "required": ["runId"],
        },
        "Job": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/JobFacet"}},
            },
            "required": ["namespace", "name"],
        },
        "Dataset": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": {
                    "type": "object",
                    "additionalProperties": {"$ref": "#/$defs/DatasetFacet"},
                },
            },
            "required": ["namespace", "name"],
        },
        "InputDataset": {
            "allOf": [
                {"$ref": "#/$defs/Dataset"},
                {
                    "type": "object",
                    "properties": {
                        "inputFacets": {
                            "type": "object",
                            "additionalProperties": {"$ref": "#/$defs/InputDatasetFacet"},
                        }
                    },
                },
            ]
        },
        "OutputDataset": {
            "allOf": [
                {"$ref": "#/$defs/Dataset"},
                {
                    "type": "object",
                    "properties": {
                        "outputFacets": {
                            "type": "object",
                            "additionalProperties": {"$ref": "#/$defs/OutputDatasetFacet"},
                        }
                    },
                },
            ]
        },
        "BaseFacet": {
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
            },
            "additionalProperties": True,
            "required": ["_producer", "_schemaURL"],
        },
        "RunFacet": _facet({"additionalProperties": True}),
        "JobFacet": _facet({"properties": {"_deleted": {"type": "boolean"}}}),
        "DatasetFacet": _facet({"properties": {"_deleted": {"type": "boolean"}}}),
        "InputDatasetFacet": _facet(),
        "OutputDatasetFacet": _facet(),
    },
    "$ref": "#/$defs/RunEvent",
}


def registry() -> Registry:
    facet = json.loads(
        (ROOT / "docs" / "schema" / "openlineage-provmark-run-facet.json").read_text()
    )
    return Registry().with_resources(
        [(OL, Resource.from_contents(SPEC)), (facet["$id"], Resource.from_contents(facet))]
    )


def check_event(event: dict[str, Any]) -> None:
    """The event against the spec core, and the provmark facet against its published schema."""
    reg = registry()
    fmt = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(SPEC, registry=reg, format_checker=fmt).validate(event)
    facet_schema = {"$ref": FACET_SCHEMA_URL}
    facet = event["run"]["facets"]["provmark"]
    jsonschema.Draft202012Validator(facet_schema, registry=reg, format_checker=fmt).validate(facet)
    assert facet["_schemaURL"] == FACET_SCHEMA_URL
    for uri in (event["producer"], event["schemaURL"], facet["_producer"]):
        assert urlparse(uri).scheme == "https"  # jsonschema's "uri" format needs rfc3987


def events() -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in g.build_deterministic()["export.openlineage.jsonl"].splitlines()
    ]


# ---------------------------------------------------------------- shape and mapping


def test_every_event_validates() -> None:
    for event in events():
        check_event(event)


def test_mapping_of_a_complete_run() -> None:
    root = events()[0]
    assert root["eventType"] == "COMPLETE"
    assert root["run"]["runId"] == g.ROOT
    assert root["eventTime"] == "2024-07-01T12:00:01.250000Z"
    assert root["job"] == {
        "namespace": "provmark",
        "name": "summarizer-api.text_completion",
        "facets": root["job"]["facets"],
    }
    model, dataset = root["inputs"]
    assert (model["namespace"], model["name"]) == ("model://acme", "acme/summarizer@3.2")
    assert model["facets"]["version"]["datasetVersion"] == g.MODEL["digest"]
    assert (dataset["namespace"], dataset["name"]) == ("s3://acme-data", "news/2024-06.parquet")
    assert dataset["facets"]["version"]["datasetVersion"] == g.sha("news")
    (out,) = root["outputs"]
    assert out["name"] == f"output/{g.sha(g.OUTPUT_TEXT)}"
    assert out["outputFacets"]["outputStatistics"]["size"] == len(g.OUTPUT_TEXT.encode())
    facet = root["run"]["facets"]["provmark"]
    record, payload = g.signed()[0]
    assert facet["recordId"] == g.ROOT and facet["slug"] == record.slug
    assert facet["payloadSha256"] == g.sha(payload)
    assert facet["signature"]["keyId"] == g.signer().key_id
    assert facet["log"] == {"index": 0, "leafHash": record.log.leaf_hash}  # type: ignore[union-attr]
    assert facet["actor"] == {"userId": "alice", "service": "summarizer-api", "region": "eu-west-1"}


def test_failed_generation_is_a_fail_event() -> None:
    failed = events()[2]
    assert failed["eventType"] == "FAIL"
    assert failed["outputs"] == []
    assert failed["run"]["facets"]["errorMessage"]["message"] == "TimeoutError: upstream timed out"
    assert failed["run"]["facets"]["provmark"]["parents"] == [g.CHILD]


def test_output_uri_names_the_output_dataset() -> None:
    child = events()[1]
    assert (child["outputs"][0]["namespace"], child["outputs"][0]["name"]) == (
        "file",
        "/srv/out/translation.txt",
    )
    assert child["run"]["facets"]["provmark"]["fallback"]["servedModel"] == "acme/translator"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b.csv", ("s3://bucket", "a/b.csv")),
        ("file:///data/x.parquet", ("file", "/data/x.parquet")),
        ("hf://datasets/acme/news", ("hf://datasets", "acme/news")),
        ("postgres://db:5432/public.t", ("postgres://db:5432", "public.t")),
        ("urn:isbn:123", ("urn", "isbn:123")),
        ("relative/path.csv", ("file", "relative/path.csv")),
    ],
)
def test_dataset_naming(uri: str, expected: tuple[str, str]) -> None:
    assert dataset_name(uri) == expected


def test_golden_file_is_reproduced_and_valid() -> None:
    golden = (GOLDEN / "export.openlineage.jsonl").read_bytes()
    assert g.build_deterministic()["export.openlineage.jsonl"] == golden
    for line in golden.splitlines():
        check_event(json.loads(line))


def test_golden_with_a_broken_event_fails_validation() -> None:
    event = json.loads((GOLDEN / "export.openlineage.jsonl").read_bytes().splitlines()[0])
    del event["run"]["runId"]
    with pytest.raises(jsonschema.ValidationError):
        check_event(event)
    event = json.loads((GOLDEN / "export.openlineage.jsonl").read_bytes().splitlines()[0])
    event["run"]["facets"]["provmark"]["payloadSha256"] = "not a hash"
    with pytest.raises(jsonschema.ValidationError):
        check_event(event)


def test_events_from_a_real_store(tmp_path: Path) -> None:
    g.import_history_key(tmp_path)
    with provmark.open(tmp_path / "x.db", home=tmp_path, flush_interval=0.01) as pm:
        pm.ingest(g.drafts())
        chain = lineage(pm.store, g.FAILED)
        lines = list(get_exporter("openlineage", namespace="acme-prod").export(chain))  # type: ignore[arg-type]
        stored = pm.store.get(g.ROOT)
    assert len(lines) == 3
    first = json.loads(lines[0])
    check_event(first)
    assert first["job"]["namespace"] == "acme-prod"
    assert stored is not None and first["run"]["facets"]["provmark"]["payloadSha256"] == g.sha(
        stored.payload
    )


def test_exporter_builds_openlineage_classes() -> None:
    from openlineage.client.event_v2 import RunEvent

    record, payload = g.signed()[0]
    event = run_event(record, payload, producer="https://example.com/p")
    assert isinstance(event, RunEvent)
    assert event_json(event)["producer"] == "https://example.com/p"
    exp = OpenLineageExporter()
    assert exp.name == "openlineage" and exp.media_type == "application/x-ndjson"
    assert [e.run.runId for e in exp.events([record])] == [g.ROOT]


# ---------------------------------------------------------------- HTTP transport


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        )
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_send_to_an_openlineage_endpoint(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    exp = OpenLineageExporter()
    sent = send(exp.events(r for r, _ in g.signed()), url, api_key="s3cret")
    assert sent == 5
    assert [r["path"] for r in handler.received] == ["/api/v1/lineage"] * 5
    assert handler.received[0]["auth"] == "Bearer s3cret"
    assert [r["body"]["run"]["runId"] for r in handler.received] == [
        g.ROOT,
        g.CHILD,
        g.FAILED,
        g.IMAGE,
        g.VARIANTS,
    ]
    for r in handler.received:
        check_event(r["body"])


def test_send_reports_a_refusing_endpoint(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    handler.status = 400
    with pytest.raises(ProvmarkError, match="refused event 1"):
        send(OpenLineageExporter().events([g.signed()[0][0]]), url, retries=0)


def test_send_to_nothing_fails_clearly() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProvmarkError, match="OpenLineage endpoint"):
        send(
            OpenLineageExporter().events([g.signed()[0][0]]),
            f"http://127.0.0.1:{port}",
            retries=0,
            timeout=2,
        )
    with pytest.raises(ProvmarkError, match="OpenLineage endpoint"):
        send([], "not a url")


def test_multi_output_record_has_every_output() -> None:
    record, payload = g.signed()[4]
    assert record.schema_version == "2" and len(record.outputs) == 2
    event = event_json(run_event(record, payload))
    check_event(event)
    versions = [o["facets"]["version"]["datasetVersion"] for o in event["outputs"]]
    assert versions == [g.sha(g.variant(1)), g.sha(g.variant(2))]
