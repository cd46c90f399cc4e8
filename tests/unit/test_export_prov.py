"""W3C PROV export: the mapping, golden files, round trips through ``prov``, validation."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
from prov.model import PROV, ProvDocument
from rdflib.compare import isomorphic

import provmark
from provmark.errors import ConfigError, NotFoundError, VerificationError
from provmark.export import FORMATS, get_exporter, iter_query, lineage, registry
from provmark.export.w3c_prov import (
    PM,
    PMID,
    document,
    generation_id,
    output_id,
    parse,
    serialize,
    statements,
    summary,
    validate,
)
from provmark.store.base import Query

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden as g  # noqa: E402


@pytest.fixture
def store_pm(tmp_path: Path) -> Iterator[provmark.Provmark]:
    g.import_history_key(tmp_path)
    with provmark.open(tmp_path / "x.db", home=tmp_path, flush_interval=0.01) as pm:
        pm.ingest(g.drafts())
        yield pm


def stored_golden() -> list[object]:
    return [g._stored(r, p) for r, p in g.signed()]


def relations(doc: ProvDocument, kind: str) -> list[dict[str, object]]:
    return [
        {str(k): v for k, v in rel.formal_attributes}
        for rel in doc.get_records()
        if str(rel.get_type()) == kind
    ]


# ---------------------------------------------------------------- golden files


def test_golden_prov_json_and_provn() -> None:
    files = g.build_deterministic()
    assert files["export.prov.json"] == (GOLDEN / "export.prov.json").read_bytes()
    assert files["export.provn"] == (GOLDEN / "export.provn").read_bytes()


@pytest.mark.parametrize(
    ("name", "fmt"), [("export.prov.ttl", "turtle"), ("export.prov.jsonld", "json-ld")]
)
def test_golden_rdf_is_the_same_graph(name: str, fmt: str) -> None:
    fresh = g.build_rdf()[name]
    want = rdflib.Graph().parse(data=(GOLDEN / name).read_bytes(), format=fmt)
    got = rdflib.Graph().parse(data=fresh, format=fmt)
    assert len(got) == len(want) > 100
    assert isomorphic(got, want)


# ---------------------------------------------------------------- round trips


def test_prov_json_round_trip_is_equal() -> None:
    doc = document(stored_golden())  # type: ignore[arg-type]
    back = parse(serialize(doc, "prov-json"), "prov-json")
    assert back == doc
    validate(back)


@pytest.mark.parametrize("fmt", ["prov-o", "prov-jsonld"])
def test_rdf_round_trip_keeps_every_statement(fmt: str) -> None:
    doc = document(stored_golden())  # type: ignore[arg-type]
    back = parse(serialize(doc, fmt), fmt)
    validate(back)
    assert statements(back) == statements(doc)
    assert len(statements(doc)) == 56  # 44 of the v1 records, 12 of the v2 one


def test_golden_files_parse_back_and_validate() -> None:
    for name, fmt in (
        ("export.prov.json", "prov-json"),
        ("export.prov.ttl", "prov-o"),
        ("export.prov.jsonld", "prov-jsonld"),
    ):
        doc = parse((GOLDEN / name).read_bytes(), fmt)
        validate(doc)
        assert summary(doc)["prov:Activity"] == 5


def test_provn_has_no_reader_in_prov() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        parse(b"document\nendDocument\n", "prov-n")


# ---------------------------------------------------------------- the mapping


def test_mapping_of_one_record() -> None:
    record, _ = g.signed()[0]
    doc = document([record])
    validate(doc)
    act = doc.get_record(generation_id(record.record_id))[0]
    assert act.get_startTime().isoformat() == "2024-07-01T12:00:00+00:00"
    assert act.get_endTime().isoformat() == "2024-07-01T12:00:01.250000+00:00"
    attrs = {str(k): v for k, v in act.attributes}
    assert attrs["provmark:recordId"] == record.record_id
    assert json.loads(str(attrs["provmark:params"])) == {"temperature": 0.2, "max_tokens": 256}
    assert attrs["provmark:logIndex"] == 0

    out = doc.get_record(output_id(g.sha(g.OUTPUT_TEXT)))[0]
    assert {str(k): v for k, v in out.attributes}["provmark:sha256"] == g.sha(g.OUTPUT_TEXT)
    gen = relations(doc, "prov:Generation")
    assert gen[0]["prov:entity"] == out.identifier and gen[0]["prov:activity"] == act.identifier

    roles = {}
    for rel in doc.get_records():
        if str(rel.get_type()) == "prov:Usage":
            roles[str(dict(rel.attributes)[PROV["role"]])] = dict(rel.formal_attributes)[
                PROV["entity"]
            ]
    assert set(roles) == {"provmark:model", "provmark:input", "provmark:dataset"}
    model = doc.get_record(roles["provmark:model"])[0]
    types = {str(v) for k, v in model.attributes if k == PROV["type"]}
    assert types == {"provmark:Model", "prov:Collection"}
    assert len(relations(doc, "prov:Membership")) == 1  # the weight file

    assoc = {str(r["prov:agent"]) for r in relations(doc, "prov:Association")}
    assert assoc == {"pmid:agent-provmark", "pmid:service-summarizer-api"}
    deleg = relations(doc, "prov:Delegation")
    assert str(deleg[0]["prov:delegate"]) == "pmid:service-summarizer-api"
    assert str(deleg[0]["prov:responsible"]) == "pmid:user-alice"
    user = doc.get_record(PMID["user-alice"])[0]
    assert PROV["Person"] in [v for k, v in user.attributes if k == PROV["type"]]


def test_parents_become_derivations() -> None:
    records = [r for r, _ in g.signed()]
    doc = document(records)
    derived = relations(doc, "prov:Derivation")
    assert len(derived) == 3  # the translation, and both images of the v2 record
    variants = [d for d in derived if d["prov:activity"] == generation_id(g.VARIANTS)]
    assert {d["prov:generatedEntity"] for d in variants} == {
        output_id(g.sha(g.variant(1))),
        output_id(g.sha(g.variant(2))),
    }
    assert {d["prov:usedEntity"] for d in variants} == {output_id(g.sha(g.png()))}
    derived = [d for d in derived if d["prov:activity"] == generation_id(g.CHILD)]
    assert derived[0]["prov:generatedEntity"] == output_id(g.sha(g.TRANSLATION))
    assert derived[0]["prov:usedEntity"] == output_id(g.sha(g.OUTPUT_TEXT))
    # the failed record has no output: it used its parent's output instead
    failed = [
        r for r in relations(doc, "prov:Usage") if r["prov:activity"] == generation_id(g.FAILED)
    ]
    assert output_id(g.sha(g.TRANSLATION)) in [r["prov:entity"] for r in failed]
    # the same model and agents are one node each
    assert len([e for e in doc.get_records() if e.identifier == PMID["agent-provmark"]]) == 1


def test_error_record_has_no_generation() -> None:
    failed = g.signed()[2][0]
    doc = document([failed])
    validate(doc)
    assert not relations(doc, "prov:Generation")
    act = doc.get_record(generation_id(g.FAILED))[0]
    attrs = {str(k): v for k, v in act.attributes}
    assert attrs["provmark:status"] == "error" and attrs["provmark:errorType"] == "TimeoutError"
    # its parent is outside the export and not resolvable: a reference node
    ref = doc.get_record(PMID[f"output-of-{g.CHILD}"])[0]
    assert {str(k): v for k, v in ref.attributes}["provmark:recordId"] == g.CHILD


def test_artifact_hash_parent() -> None:
    record = g.signed()[1][0].model_copy(update={"parents": ["ab" * 32]})
    doc = document([record])
    assert relations(doc, "prov:Derivation")[0]["prov:usedEntity"] == output_id("ab" * 32)


# ---------------------------------------------------------------- from a real store


def test_query_result_export(store_pm: provmark.Provmark) -> None:
    found = list(iter_query(store_pm.store, Query(model="acme/translator", order="asc")))
    assert [s.record_id for s in found] == [g.CHILD, g.FAILED]
    resolve = store_pm.get
    data = get_exporter("prov-json", resolve=resolve).export(found)
    assert isinstance(data, bytes)
    doc = parse(data, "prov-json")
    validate(doc)
    # the child's parent (not in the result) is resolved through the store
    derived = relations(doc, "prov:Derivation")
    assert derived[0]["prov:usedEntity"] == output_id(g.sha(g.OUTPUT_TEXT))


def test_lineage_graph_export(store_pm: provmark.Provmark) -> None:
    chain = lineage(store_pm.store, g.FAILED)
    assert [s.record_id for s in chain] == [g.ROOT, g.CHILD, g.FAILED]
    assert [s.record_id for s in lineage(store_pm.store, g.IMAGE)] == [g.IMAGE]
    for fmt in ("prov-json", "prov-o", "prov-jsonld", "prov-n"):
        data = get_exporter(fmt).export(chain)
        assert isinstance(data, bytes)
        if fmt != "prov-n":
            doc = parse(data, fmt)
            validate(doc)
            assert summary(doc)["prov:Activity"] == 3
        else:
            assert data.startswith(b"document") and b"wasDerivedFrom" in data
    with pytest.raises(NotFoundError):
        lineage(store_pm.store, "0" * 8 + "-0000-7000-8000-" + "0" * 12)


def test_iter_query_pages_and_limit(store_pm: provmark.Provmark) -> None:
    assert len(list(iter_query(store_pm.store, Query()))) == 5
    assert len(list(iter_query(store_pm.store, Query(limit=1)))) == 5  # pages of one
    assert len(list(iter_query(store_pm.store, Query(), limit=2))) == 2


# ---------------------------------------------------------------- validation and registry


def test_validate_catches_broken_documents() -> None:
    doc = ProvDocument()
    doc.add_namespace(PMID)
    doc.activity(PMID["a"], "2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z")
    with pytest.raises(VerificationError, match="ends before it starts"):
        validate(doc)

    doc = ProvDocument()
    doc.add_namespace(PMID)
    doc.activity(PMID["a"])
    doc.used(PMID["a"], PMID["missing"])
    with pytest.raises(VerificationError, match="not a declared Entity"):
        validate(doc)

    doc = ProvDocument()
    doc.add_namespace(PMID)
    doc.activity(PMID["a"])
    doc.entity(PMID["a"])
    with pytest.raises(VerificationError, match="two kinds"):
        validate(doc)

    doc = ProvDocument()
    doc.add_namespace(PMID)
    doc.activity(PMID["a"], "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z")
    doc.entity(PMID["e"])
    doc.wasGeneratedBy(PMID["e"], PMID["a"], "2024-01-01T00:05:00Z")
    with pytest.raises(VerificationError, match="outside activity"):
        validate(doc)
    assert PM.uri.startswith("https://provmark.dev/")


def test_registry_and_errors() -> None:
    assert set(FORMATS) == {
        "prov-json",
        "prov-n",
        "prov-o",
        "prov-jsonld",
        "in-toto",
        "openlineage",
    }
    first, second = registry(), registry()
    assert first["prov-json"] is not second["prov-json"]  # built per call
    assert "in-toto" not in first  # needs a signer
    assert set(registry(signer=g.signer())) == set(FORMATS)
    with pytest.raises(ConfigError, match="unknown export format"):
        get_exporter("prov-xml")
    with pytest.raises(ConfigError, match="signer"):
        get_exporter("in-toto")
    exp = get_exporter("prov-o")
    assert exp.name == "prov-o" and exp.media_type == "text/turtle"
    with pytest.raises(ConfigError):
        serialize(ProvDocument(), "prov-xml")


def test_plain_sparql_finds_unqualified_relations() -> None:
    """Independent readers query ``?e prov:wasGeneratedBy ?a`` (not the qualified form)."""
    stored = stored_golden()
    for fmt, rdf in (("prov-o", "turtle"), ("prov-jsonld", "json-ld")):
        graph = rdflib.Graph().parse(data=get_exporter(fmt).export(stored), format=rdf)  # type: ignore[arg-type]
        prefix = "PREFIX prov: <http://www.w3.org/ns/prov#>\n"
        generated = {
            (str(e), str(a))
            for e, a in graph.query(prefix + "SELECT ?e ?a WHERE { ?e prov:wasGeneratedBy ?a }")
        }
        gen = lambda rid: str(generation_id(rid).uri)  # noqa: E731
        out = lambda data: str(output_id(g.sha(data)).uri)  # noqa: E731
        assert (out(g.OUTPUT_TEXT), gen(g.ROOT)) in generated
        assert (out(g.variant(1)), gen(g.VARIANTS)) in generated
        assert (out(g.variant(2)), gen(g.VARIANTS)) in generated
        assert len(generated) == 5  # two v1 texts, one image, two v2 images; not the failure
        used = {
            str(e)
            for (e,) in graph.query(prefix + f"SELECT ?e WHERE {{ <{gen(g.ROOT)}> prov:used ?e }}")
        }
        assert str(PMID["input-sha256-" + g.sha("Summarize: the council debate")].uri) in used
        assert len(used) == 3  # model, input, dataset
        agents = {
            str(a)
            for (a,) in graph.query(
                prefix + f"SELECT ?a WHERE {{ <{gen(g.ROOT)}> prov:wasAssociatedWith ?a }}"
            )
        }
        assert agents == {
            str(PMID["agent-provmark"].uri),
            str(PMID["service-summarizer-api"].uri),
        }
        derived = graph.query(prefix + "SELECT ?e ?p WHERE { ?e prov:wasDerivedFrom ?p }")
        assert len(derived) == 3
        # the qualified forms are still there
        qualified = graph.query(
            prefix + "SELECT ?e WHERE { ?e prov:qualifiedGeneration [ prov:activity ?a ] }"
        )
        assert len(qualified) == 5
