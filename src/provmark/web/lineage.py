"""The lineage graph of one record: its ancestors (``parents``) and its descendants.

Ancestors are followed through ``parents`` up to ``depth`` steps; a parent that is not
a record id (an artifact hash) or not in this store becomes an ``external`` node.
Descendants name the record in their ``parents``; the store keeps no index of that,
so they are found by reading the log forward from the record (a child is stored
after its parent), at most ``scan`` records. The answer says whether that scan
reached the end of the log (``children.complete``).

Nodes carry only what every role may see (model, operation, status, times, ids),
never input snapshots, user ids or error messages.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from ..errors import NotFoundError
from ..record import is_record_id, slug_for
from ..store.base import Store, StoredRecord

MAX_DEPTH = 6
MAX_NODES = 200
SCAN_LIMIT = 20_000


def _payload(stored: StoredRecord) -> dict[str, Any]:
    try:
        data = json.loads(stored.payload)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _parents(data: dict[str, Any]) -> list[str]:
    parents = data.get("parents") or []
    return [p for p in parents if isinstance(p, str)] if isinstance(parents, list) else []


def record_node(stored: StoredRecord, data: dict[str, Any], depth: int) -> dict[str, Any]:
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    output = data.get("output") if isinstance(data.get("output"), dict) else {}
    assert isinstance(model, dict) and isinstance(output, dict)
    return {
        "id": stored.record_id,
        "kind": "record",
        "slug": slug_for(stored.record_id),
        "index": stored.index,
        "depth": depth,
        "model": model.get("name"),
        "model_version": model.get("version"),
        "operation": data.get("operation"),
        "status": data.get("status", "ok"),
        "generated_at": data.get("generated_at"),
        "output_sha256": output.get("sha256"),
    }


def external_node(ref: str, depth: int, reason: str) -> dict[str, Any]:
    return {"id": ref, "kind": "external", "depth": depth, "reason": reason}


def lineage_graph(
    store: Store,
    record_id: str,
    *,
    depth: int = 3,
    scan: int = SCAN_LIMIT,
    max_nodes: int = MAX_NODES,
) -> dict[str, Any]:
    """``{"root", "nodes", "edges", "children", "truncated"}``; edges go parent -> child."""
    root = store.get(record_id)
    if root is None:
        raise NotFoundError(f"no record {record_id!r} (give a record id or a slug)")
    depth = max(1, min(depth, MAX_DEPTH))
    root_data = _payload(root)
    nodes: dict[str, dict[str, Any]] = {root.record_id: record_node(root, root_data, 0)}
    edges: set[tuple[str, str]] = set()
    truncated = False

    # ancestors, breadth first
    todo: deque[tuple[str, dict[str, Any], int]] = deque([(root.record_id, root_data, 0)])
    while todo:
        child_id, data, level = todo.popleft()
        if level >= depth:
            continue
        for parent in _parents(data):
            edges.add((parent, child_id))
            if parent in nodes:
                continue
            if len(nodes) >= max_nodes:
                truncated = True
                break
            stored = store.get(parent) if is_record_id(parent) else None
            if stored is None:
                why = "not in this store" if is_record_id(parent) else "not a provmark record"
                nodes[parent] = external_node(parent, -(level + 1), why)
                continue
            pdata = _payload(stored)
            nodes[parent] = record_node(stored, pdata, -(level + 1))
            todo.append((parent, pdata, level + 1))

    # descendants: one forward pass over the log after the record
    reached = {root.record_id: 0}
    end = min(store.tree_size(), root.index + 1 + scan)
    scanned = 0
    for stored in store.iter_records(root.index + 1, end):
        scanned += 1
        if not any(rid.encode() in stored.payload for rid in reached):
            continue
        data = _payload(stored)
        linked = [p for p in _parents(data) if p in reached]
        if not linked:
            continue
        level = min(reached[p] for p in linked) + 1
        if level > depth:
            continue
        if stored.record_id not in nodes:
            if len(nodes) >= max_nodes:
                truncated = True
                break
            nodes[stored.record_id] = record_node(stored, data, level)
        reached[stored.record_id] = level
        for p in linked:
            edges.add((p, stored.record_id))
    complete = not truncated and end >= store.tree_size()
    return {
        "root": root.record_id,
        "depth": depth,
        "nodes": sorted(nodes.values(), key=lambda n: (n["depth"], n.get("index", -1), n["id"])),
        "edges": [{"from": a, "to": b} for a, b in sorted(edges) if a in nodes and b in nodes],
        "children": {"scanned": scanned, "limit": scan, "complete": complete},
        "truncated": truncated,
    }
