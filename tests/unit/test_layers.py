"""The layers stay visible: no import cycles, the core imports only the core, the server
knows nothing of the web UI, and the public API is exactly what it says.

Imports are read from the source (function-level imports included). Imports under
``if TYPE_CHECKING:`` run nowhere, but they may not close a cycle either (the graph
with them is checked too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import provmark

SRC = Path(provmark.__file__).resolve().parent
CORE = (
    "provmark._internal",
    "provmark._version",
    "provmark.canonical",
    "provmark.capture",
    "provmark.crypto",
    "provmark.errors",
    "provmark.jsonlimits",
    "provmark.log",
    "provmark.record",
    "provmark.store",
    "provmark.verify",
)


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(mods: dict[str, Path], *, typing_too: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        skip: set[int] = set()
        if not typing_too:
            for node in ast.walk(tree):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in mods else base)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_at_run_time() -> None:
    assert cycles(imports(modules(), typing_too=False)) == []


def test_no_import_cycle_even_for_the_type_checker() -> None:
    """Imports under ``if TYPE_CHECKING:`` close no cycle either: a feature is typed with
    the narrow service it takes (``Log``, a small protocol), never with the facade that
    wires it."""
    assert [sorted(c) for c in cycles(imports(modules(), typing_too=True))] == []


def test_the_core_imports_only_the_core() -> None:
    graph = imports(modules(), typing_too=True)
    for name, targets in graph.items():
        if name.startswith(CORE):
            outside = sorted(t for t in targets if not t.startswith(CORE))
            assert not outside, f"{name} imports {outside}"


def test_the_server_does_not_know_the_web_ui() -> None:
    graph = imports(modules(), typing_too=True)
    for name, targets in graph.items():
        if name.startswith("provmark.server"):
            assert not [t for t in targets if t.startswith("provmark.web")], name


def test_the_public_api_is_pinned() -> None:
    assert sorted(provmark.__all__) == [
        "CaptureError",
        "Check",
        "ConfigError",
        "EnvKeyStore",
        "FileKeyStore",
        "KeyStore",
        "KeyStoreError",
        "Model",
        "NotFoundError",
        "Page",
        "ProvenanceClient",
        "Provmark",
        "ProvmarkError",
        "PublicKey",
        "Record",
        "RecordError",
        "Recording",
        "SCHEMA_VERSION",
        "SchemaVersionError",
        "Signer",
        "Store",
        "StoreError",
        "StoredCheckpoint",
        "VerificationError",
        "Verified",
        "__version__",
        "load_bundle",
        "open",
        "verify_bundle",
    ]
    assert all(hasattr(provmark, name) for name in provmark.__all__)
