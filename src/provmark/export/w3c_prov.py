"""W3C PROV (PROV-JSON, PROV-N, PROV-O Turtle and JSON-LD) via the ``prov`` package.

Mapping of one record (docs/standards.md has the table):

* generation = Activity ``pmid:generation-<record_id>`` with start/end times,
  operation, status, params, seed, usage, the record id, key id and log position;
* output = Entity ``pmid:output-sha256-<hex>`` ``wasGeneratedBy`` the activity;
* model (a Collection of its weight files), input and datasets = Entities ``used``;
* provmark and the service = SoftwareAgents the activity ``wasAssociatedWith``;
  the user = Agent (Person) that the software agent ``actedOnBehalfOf``;
* each parent = ``wasDerivedFrom`` from the output to the parent's output.

Identifiers are stable across records (the same model or output is one node), so a
query result or a lineage graph is one connected document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import rdflib
from prov.constants import (
    PROV_ATTR_ACTIVITY,
    PROV_ATTR_AGENT,
    PROV_ATTR_COLLECTION,
    PROV_ATTR_DELEGATE,
    PROV_ATTR_ENTITY,
    PROV_ATTR_GENERATED_ENTITY,
    PROV_ATTR_INFORMANT,
    PROV_ATTR_INFORMED,
    PROV_ATTR_RESPONSIBLE,
    PROV_ATTR_TIME,
    PROV_ATTR_USED_ENTITY,
)
from prov.model import (
    PROV,
    Namespace,
    ProvActivity,
    ProvAgent,
    ProvDocument,
    ProvElement,
    ProvEntity,
    ProvRelation,
    QualifiedName,
)

from ..canonical import canonical_bytes
from ..errors import ConfigError, VerificationError
from ..record import Record, is_record_id, parse_time
from .base import RecordLike, Resolve, as_record

PM = Namespace("provmark", "https://provmark.dev/ns/prov#")
PMID = Namespace("pmid", "https://provmark.dev/id/")

MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "prov-json": "application/json",
        "prov-n": "text/provenance-notation",
        "prov-o": "text/turtle",
        "prov-jsonld": "application/ld+json",
    }
)

JSONLD_CONTEXT: Mapping[str, str] = MappingProxyType(
    {
        "prov": "http://www.w3.org/ns/prov#",
        "provmark": PM.uri,
        "pmid": PMID.uri,
        "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
    }
)

_HEX = frozenset("0123456789abcdef")


def _local(text: str) -> str:
    return quote(text, safe="-_~")


def output_id(sha256: str) -> QualifiedName:
    return PMID[f"output-sha256-{sha256}"]


def generation_id(record_id: str) -> QualifiedName:
    return PMID[f"generation-{record_id}"]


def _attrs(pairs: dict[str, Any]) -> dict[QualifiedName, Any]:
    return {PM[k]: v for k, v in pairs.items() if v is not None and v != ""}


class _Builder:
    """Adds records to one document; each element is declared once."""

    def __init__(self, resolve: Resolve | None) -> None:
        self.doc = ProvDocument()
        self.doc.add_namespace(PM)
        self.doc.add_namespace(PMID)
        self.resolve = resolve
        self.outputs: dict[str, str | None] = {}  # record id -> output sha256
        self.declared: set[QualifiedName] = set()

    def entity(self, ident: QualifiedName, attrs: Any) -> QualifiedName:
        if ident not in self.declared:
            self.declared.add(ident)
            self.doc.entity(ident, attrs)
        return ident

    def agent(self, ident: QualifiedName, attrs: dict[Any, Any]) -> QualifiedName:
        if ident not in self.declared:
            self.declared.add(ident)
            self.doc.agent(ident, attrs)
        return ident

    def add(self, r: Record) -> None:
        doc = self.doc
        started = parse_time(r.started_at) if r.started_at else None
        ended = parse_time(r.generated_at)
        act = generation_id(r.record_id)
        usage = r.usage
        ctx = r.context
        attrs: dict[Any, Any] = {
            PROV["type"]: PM["Generation"],
            PROV["label"]: f"{r.operation} by {r.model.name}",
            **_attrs(
                {
                    "recordId": r.record_id,
                    "slug": r.slug,
                    "schemaVersion": r.schema_version,
                    "operation": r.operation,
                    "status": r.status,
                    "params": canonical_bytes(r.params).decode() if r.params else None,
                    "seed": r.input.seed,
                    "tags": canonical_bytes(r.tags).decode() if r.tags else None,
                    "errorType": r.error.type if r.error else None,
                    "errorMessage": r.error.message if r.error else None,
                    "inputTokens": usage.input_tokens if usage else None,
                    "outputTokens": usage.output_tokens if usage else None,
                    "latencyMs": usage.latency_ms if usage else None,
                    "fallbackRequested": r.fallback.requested_model if r.fallback else None,
                    "fallbackServed": r.fallback.served_model if r.fallback else None,
                    "fallbackReason": r.fallback.reason if r.fallback else None,
                    "python": ctx.python,
                    "platform": ctx.platform,
                    "gitCommit": ctx.git.commit if ctx.git else None,
                    "containerImage": ctx.container.image if ctx.container else None,
                    "keyId": r.signature.key_id if r.signature else None,
                    "signatureAlg": r.signature.alg if r.signature else None,
                    "logIndex": r.log.index if r.log else None,
                    "leafHash": r.log.leaf_hash if r.log else None,
                }
            ),
        }
        doc.activity(act, started, ended, attrs)
        self.declared.add(act)

        for ent, role in self._inputs(r):
            doc.used(act, ent, started, other_attributes={PROV["role"]: PM[role]})

        outs = []
        for o in r.all_outputs():  # v2 records: every output of the generation
            out_attrs: dict[Any, Any] = {
                PROV["type"]: PM["Output"],
                **_attrs({"sha256": o.sha256, "mediaType": o.media_type, "size": o.size}),
            }
            if o.uri:
                out_attrs[PROV["location"]] = o.uri
            out = output_id(o.sha256)
            if out not in outs:
                outs.append(self.entity(out, out_attrs))
                doc.wasGeneratedBy(out, act, ended)

        recorder = self.agent(
            PMID["agent-provmark"], {PROV["type"]: PROV["SoftwareAgent"], PROV["label"]: "provmark"}
        )
        doc.wasAssociatedWith(act, recorder, other_attributes={PROV["role"]: PM["recorder"]})
        acting = recorder
        if r.actor.service:
            attrs = {PROV["type"]: PROV["SoftwareAgent"], PROV["label"]: r.actor.service}
            if r.actor.region:
                attrs[PM["region"]] = r.actor.region
            acting = self.agent(PMID[f"service-{_local(r.actor.service)}"], attrs)
            doc.wasAssociatedWith(act, acting, other_attributes={PROV["role"]: PM["service"]})
        if r.actor.user_id:
            user = self.agent(
                PMID[f"user-{_local(r.actor.user_id)}"],
                {PROV["type"]: PROV["Person"], PM["userId"]: r.actor.user_id},
            )
            doc.actedOnBehalfOf(acting, user, act)

        for parent in r.parents:
            source = self._parent(parent)
            for out in outs:
                doc.wasDerivedFrom(out, source, act)
            if not outs:
                doc.used(act, source, started, other_attributes={PROV["role"]: PM["parent"]})

    def _inputs(self, r: Record) -> Iterator[tuple[QualifiedName, str]]:
        m = r.model
        name = m.name + (f"@{m.version}" if m.version else "")
        model_attrs: dict[Any, Any] = {
            PROV["type"]: PM["Model"],
            PROV["label"]: name,
            **_attrs(
                {
                    "name": m.name,
                    "version": m.version,
                    "provider": m.provider,
                    "revision": m.revision,
                    "digest": m.digest,
                }
            ),
        }
        ident = PMID[f"model-{_local(name)}" + (f"-{_local(m.digest)}" if m.digest else "")]
        attr_list: list[tuple[Any, Any]] = list(model_attrs.items())
        if m.files:
            attr_list.append((PROV["type"], PROV["Collection"]))
        new = ident not in self.declared
        model = self.entity(ident, attr_list)
        if new:
            for f in m.files:
                file_id = self.entity(
                    PMID[f"file-sha256-{f.sha256}"],
                    {
                        PROV["type"]: PM["ModelFile"],
                        PROV["label"]: f.path,
                        PM["sha256"]: f.sha256,
                        PM["size"]: f.size,
                    },
                )
                self.doc.hadMember(model, file_id)
        yield model, "model"
        inp = r.input
        if inp.sha256:
            attrs: dict[Any, Any] = {
                PROV["type"]: PM["Input"],
                **_attrs(
                    {"sha256": inp.sha256, "mediaType": inp.media_type, "snapshot": inp.snapshot}
                ),
            }
            yield self.entity(PMID[f"input-sha256-{inp.sha256}"], attrs), "input"
        for ds in inp.datasets:
            ds_attrs: dict[Any, Any] = {
                PROV["type"]: PM["Dataset"],
                PROV["location"]: ds.uri,
                **_attrs({"sha256": ds.sha256}),
            }
            key = f"dataset-sha256-{ds.sha256}" if ds.sha256 else f"dataset-{_local(ds.uri)}"
            yield self.entity(PMID[key], ds_attrs), "dataset"

    def _parent(self, parent: str) -> QualifiedName:
        if len(parent) == 64 and set(parent) <= _HEX:
            return self.entity(
                output_id(parent), {PROV["type"]: PM["Output"], PM["sha256"]: parent}
            )
        sha = self.outputs.get(parent)
        if (
            sha is None
            and parent not in self.outputs
            and self.resolve is not None
            and is_record_id(parent)
        ):
            found = self.resolve(parent)
            sha = found.output.sha256 if found is not None and found.output else None
            self.outputs[parent] = sha
        if sha:
            return self.entity(output_id(sha), {PROV["type"]: PM["Output"], PM["sha256"]: sha})
        return self.entity(
            PMID[f"output-of-{_local(parent)}"],
            {PROV["type"]: PM["Output"], PM["recordId"]: parent},
        )


def document(records: Iterable[RecordLike], *, resolve: Resolve | None = None) -> ProvDocument:
    """One PROV document for the records (one record, a query result or a lineage)."""
    items = [as_record(r) for r in records]
    builder = _Builder(resolve)
    for r in items:
        builder.outputs[r.record_id] = r.output.sha256 if r.output else None
    for r in items:
        builder.add(r)
    return builder.doc


def serialize(doc: ProvDocument, fmt: str) -> bytes:
    """PROV-JSON, PROV-N, PROV-O Turtle or JSON-LD (the last two through rdflib)."""
    if fmt == "prov-json":
        text = doc.serialize(format="json", indent=2)
    elif fmt == "prov-n":
        text = doc.get_provn()
    elif fmt == "prov-o":
        text = rdf_graph(doc).serialize(format="turtle")
    elif fmt == "prov-jsonld":
        text = rdf_graph(doc).serialize(
            format="json-ld", context=dict(JSONLD_CONTEXT), auto_compact=True
        )
    else:
        raise ConfigError(f"unknown PROV format {fmt!r}; choose one of {', '.join(MEDIA_TYPES)}")
    assert isinstance(text, str)
    return text.encode() if text.endswith("\n") else (text + "\n").encode()


# qualified PROV-O property -> (the qualified influence's link property, unqualified property)
_UNQUALIFIED: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "qualifiedGeneration": ("activity", "wasGeneratedBy"),
        "qualifiedUsage": ("entity", "used"),
        "qualifiedAssociation": ("agent", "wasAssociatedWith"),
        "qualifiedDerivation": ("entity", "wasDerivedFrom"),
        "qualifiedDelegation": ("agent", "actedOnBehalfOf"),
    }
)


def rdf_graph(doc: ProvDocument) -> rdflib.Graph:
    """The PROV-O graph of ``doc``: ``prov``'s qualified forms plus the unqualified ones.

    ``prov`` writes a relation with attributes (time, role) only in its qualified form
    (``?e prov:qualifiedGeneration [ prov:activity ?a ]``); PROV-O says the unqualified
    property (``?e prov:wasGeneratedBy ?a``) holds too, and plain queries look for it,
    so it is asserted beside every qualified influence.
    """
    from prov.serializers.provrdf import ProvRDFSerializer

    graph = ProvRDFSerializer(doc).encode_container(doc)
    ns = rdflib.Namespace(str(PROV.uri))
    for qualified, (link, plain) in _UNQUALIFIED.items():
        for subject, influence in list(graph.subject_objects(ns[qualified])):
            for target in list(graph.objects(influence, ns[link])):
                graph.add((subject, ns[plain], target))
    return graph


def _without_implied(graph: rdflib.Graph) -> rdflib.Graph:
    """Drop the unqualified triples :func:`rdf_graph` added (``prov`` would read each
    as a second relation beside its qualified form)."""
    ns = rdflib.Namespace(str(PROV.uri))
    for qualified, (link, plain) in _UNQUALIFIED.items():
        for subject, influence in list(graph.subject_objects(ns[qualified])):
            for target in list(graph.objects(influence, ns[link])):
                graph.remove((subject, ns[plain], target))
    return graph


def parse(data: bytes | str, fmt: str) -> ProvDocument:
    """Read an export back with ``prov`` (PROV-N has no reader in ``prov``)."""
    text = data.decode() if isinstance(data, bytes) else data
    if fmt == "prov-json":
        return ProvDocument.deserialize(content=text, format="json")
    if fmt in ("prov-o", "prov-jsonld"):
        rdf_format = "turtle" if fmt == "prov-o" else "json-ld"
        graph = _without_implied(rdflib.Graph().parse(data=text, format=rdf_format))
        return ProvDocument.deserialize(
            content=graph.serialize(format="nt"), format="rdf", rdf_format="nt"
        )
    raise ConfigError(f"prov cannot read {fmt!r}; it reads prov-json, prov-o and prov-jsonld")


# ---------------------------------------------------------------- validation

# relation type -> (formal attribute, element kind) it must point at
_TYPING: Mapping[QualifiedName, tuple[tuple[QualifiedName, type[ProvElement]], ...]] = (
    MappingProxyType(
        {
            PROV["Usage"]: ((PROV_ATTR_ACTIVITY, ProvActivity), (PROV_ATTR_ENTITY, ProvEntity)),
            PROV["Generation"]: (
                (PROV_ATTR_ENTITY, ProvEntity),
                (PROV_ATTR_ACTIVITY, ProvActivity),
            ),
            PROV["Association"]: ((PROV_ATTR_ACTIVITY, ProvActivity), (PROV_ATTR_AGENT, ProvAgent)),
            PROV["Delegation"]: (
                (PROV_ATTR_DELEGATE, ProvAgent),
                (PROV_ATTR_RESPONSIBLE, ProvAgent),
                (PROV_ATTR_ACTIVITY, ProvActivity),
            ),
            PROV["Derivation"]: (
                (PROV_ATTR_GENERATED_ENTITY, ProvEntity),
                (PROV_ATTR_USED_ENTITY, ProvEntity),
                (PROV_ATTR_ACTIVITY, ProvActivity),
            ),
            PROV["Membership"]: (
                (PROV_ATTR_COLLECTION, ProvEntity),
                (PROV_ATTR_ENTITY, ProvEntity),
            ),
            PROV["Communication"]: (
                (PROV_ATTR_INFORMED, ProvActivity),
                (PROV_ATTR_INFORMANT, ProvActivity),
            ),
        }
    )
)


def validate(doc: ProvDocument) -> None:
    """Check the PROV-CONSTRAINTS that apply to what we write.

    Typing (every relation points at declared elements of the right kind),
    key uniqueness (one kind per identifier) and event ordering (an activity
    starts before it ends; usage and generation happen within the activity).
    Raises ``VerificationError("prov", ...)``.
    """
    kinds: dict[QualifiedName, type[ProvElement]] = {}
    spans: dict[QualifiedName, tuple[datetime | None, datetime | None]] = {}
    for rec in doc.get_records(ProvElement):
        ident = rec.identifier
        if ident is None:
            raise VerificationError("prov", f"a {rec.get_type()} has no identifier")
        kind: type[ProvElement] = next(
            k for k in (ProvActivity, ProvAgent, ProvEntity) if isinstance(rec, k)
        )
        if kinds.setdefault(ident, kind) is not kind:
            raise VerificationError("prov", f"{ident} is declared as two kinds of element")
        if isinstance(rec, ProvActivity):
            start, end = rec.get_startTime(), rec.get_endTime()
            if start and end and start > end:
                raise VerificationError("prov", f"activity {ident} ends before it starts")
            spans[ident] = (start, end)
    for rel in doc.get_records(ProvRelation):
        formal = dict(rel.formal_attributes)
        for attr, wanted in _TYPING.get(rel.get_type(), ()):
            target = formal.get(attr)
            if target is None:
                continue
            declared = kinds.get(target)
            if declared is None or not issubclass(declared, wanted):
                raise VerificationError(
                    "prov",
                    f"{rel.get_type()} points at {target}, not a declared {wanted.__name__[4:]}",
                )
        when = formal.get(PROV_ATTR_TIME)
        act = formal.get(PROV_ATTR_ACTIVITY)
        if (
            isinstance(when, datetime)
            and act in spans
            and rel.get_type() in (PROV["Usage"], PROV["Generation"])
        ):
            start, end = spans[act]
            if (start and when < start) or (end and when > end):
                raise VerificationError(
                    "prov", f"{rel.get_type()} at {when} is outside activity {act}"
                )


class ProvExporter:
    """One of the four PROV serialisations of the records."""

    def __init__(self, fmt: str, *, resolve: Resolve | None = None) -> None:
        if fmt not in MEDIA_TYPES:
            raise ConfigError(f"unknown PROV format {fmt!r}")
        self._fmt = fmt
        self._resolve = resolve

    @property
    def name(self) -> str:
        return self._fmt

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self._fmt]

    def export(self, records: Iterable[RecordLike]) -> bytes:
        doc = document(records, resolve=self._resolve)
        validate(doc)
        return serialize(doc, self._fmt)


def statements(
    doc: ProvDocument,
) -> set[tuple[str, str, tuple[tuple[str, str], ...], frozenset[tuple[str, str]]]]:
    """Every record of a document in a form that ignores prefixes, order and blank-node ids.

    Two documents with equal statements say the same thing (used to check round trips).
    """

    def text(value: Any) -> str:
        return str(value.uri) if isinstance(value, QualifiedName) else str(value)

    out = set()
    for rec in doc.get_records():
        ident = rec.identifier
        name = text(ident) if ident is not None and not str(ident).startswith("_:") else ""
        formal = tuple((text(k), text(v)) for k, v in rec.formal_attributes)
        extra = frozenset((text(k), text(v)) for k, v in rec.extra_attributes)
        out.add((text(rec.get_type()), name, formal, extra))
    return out


def summary(doc: ProvDocument) -> dict[str, int]:
    """How many records of each PROV type a document holds."""
    counts: dict[str, int] = {}
    for rec in doc.get_records():
        key = str(rec.get_type())
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
