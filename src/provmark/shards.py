"""Several logs behind one signed index: the smallest working version of docs/scale.md.

One log is one sequencer (one advisory lock in PostgreSQL), so its append rate has a
ceiling however many servers validate and sign in front of it. Past it, records go to
several logs, **shards**, each with its own origin, tree and checkpoints (as Rekor
shards its log by period). A shard is a PostgreSQL schema (``shard_<label>``) in one
database here; the lock is per schema, so shards append in parallel.

A **shard index** ties them together: a C2SP signed note, by the log key under the
index's own name, listing every shard (label, origin, the note key of its checkpoints,
and for a sealed shard its final size and root)::

    provmark shard index v1
    <index name>
    <version>
    shard <label> <origin> active
    shard <label> <origin> sealed <size> <base64 root>
    key <label> <note verifier key of the shard's checkpoints>

A bundle of a sharded log is the shard's ordinary bundle plus ``shard_index`` (the
index note): :func:`verify_sharded_bundle` pins one key (the index's) and checks that
the bundle's log is listed, that its checkpoint is signed by the key the index names
for it and, for a sealed shard, that it is the final checkpoint. Verification stays
one bundle and one pinned key, whatever the number of shards.

Routing is the caller's choice (:func:`by_tag` for tenants, :func:`by_month` for
periods). Not built yet (see docs/scale.md): shards on separate databases or hosts,
a search across shards by output hash, and serving a sharded log from ``provmark serve``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, NotFoundError, RecordError, VerificationError
from .log.note import NoteVerifier, open_note, parse_verifier_key, sign_note

if TYPE_CHECKING:
    from .client import Provmark
    from .verify import Verified

HEADER = "provmark shard index v1"
_LABEL = re.compile(r"^[a-z0-9_]{1,40}$")
_CHECK = "shard_index"
Route = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class Shard:
    label: str
    origin: str
    log_key: str  # note verifier key of the shard's checkpoints
    sealed: tuple[int, bytes] | None = None  # (final size, final root) once sealed


@dataclass(frozen=True)
class ShardIndex:
    name: str
    version: int
    shards: tuple[Shard, ...] = field(default_factory=tuple)

    def body(self) -> str:
        lines = [HEADER, self.name, str(self.version)]
        for s in self.shards:
            if s.sealed is None:
                lines.append(f"shard {s.label} {s.origin} active")
            else:
                size, root = s.sealed
                lines.append(f"shard {s.label} {s.origin} sealed {size} {_b64(root)}")
        lines += [f"key {s.label} {s.log_key}" for s in self.shards]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, body: str) -> ShardIndex:
        lines = body.rstrip("\n").split("\n")
        if len(lines) < 3 or lines[0] != HEADER or not lines[2].isdigit():
            raise VerificationError(_CHECK, "not a provmark shard index v1")
        shards: dict[str, dict[str, Any]] = {}
        keys: dict[str, str] = {}
        for line in lines[3:]:
            parts = line.split(" ")
            if parts[0] == "shard" and len(parts) == 4 and parts[3] == "active":
                shards[parts[1]] = {"origin": parts[2], "sealed": None}
            elif parts[0] == "shard" and len(parts) == 6 and parts[3] == "sealed":
                try:
                    final = (int(parts[4]), base64.b64decode(parts[5], validate=True))
                except ValueError:
                    raise VerificationError(_CHECK, f"malformed sealed shard {line!r}") from None
                shards[parts[1]] = {"origin": parts[2], "sealed": final}
            elif parts[0] == "key" and len(parts) == 3:
                keys[parts[1]] = parts[2]
            else:
                raise VerificationError(_CHECK, f"malformed shard index line {line!r}")
        if set(keys) != set(shards):
            raise VerificationError(_CHECK, "every shard needs exactly one key line")
        return cls(
            lines[1],
            int(lines[2]),
            tuple(
                Shard(label, s["origin"], keys[label], s["sealed"]) for label, s in shards.items()
            ),
        )

    def shard_of(self, origin: str) -> Shard:
        for s in self.shards:
            if s.origin == origin:
                return s
        raise VerificationError(_CHECK, f"log {origin!r} is not a shard of {self.name!r}")


def open_index(note: str, index_key: str | NoteVerifier) -> ShardIndex:
    """Verify the index note with the pinned index key and parse it."""
    verifier = parse_verifier_key(index_key) if isinstance(index_key, str) else index_key
    try:
        body, _ = open_note(note, [verifier])
    except VerificationError as exc:
        raise VerificationError(_CHECK, f"shard index signature: {exc.detail}") from None
    index = ShardIndex.parse(body)
    if index.name != verifier.name:
        raise VerificationError(_CHECK, f"index name {index.name!r} is not {verifier.name!r}")
    return index


def verify_sharded_bundle(
    bundle: Mapping[str, Any], index_key: str, *, content_sha256: str | None = None
) -> Verified:
    """Verify a bundle of one shard against the signed shard index it carries."""
    from .bundle import verify_bundle

    note = bundle.get("shard_index")
    if not isinstance(note, str):
        raise VerificationError(_CHECK, "the bundle carries no shard_index")
    index = open_index(note, index_key)
    plain = {k: v for k, v in bundle.items() if k != "shard_index"}
    log = plain.get("log")
    if not isinstance(log, dict) or not isinstance(log.get("origin"), str):
        raise VerificationError("bundle_format", "bundle.log.origin is missing")
    shard = index.shard_of(log["origin"])
    verified = verify_bundle(plain, log_key=shard.log_key, content_sha256=content_sha256)
    if shard.sealed is not None:
        size, root = shard.sealed
        lines = str(log["checkpoint"]).split("\n")
        if verified.tree_size != size or lines[2] != _b64(root):
            raise VerificationError(
                _CHECK, f"shard {shard.label} is sealed at size {size}; the bundle's checkpoint "
                f"(size {verified.tree_size}) is not its final one",
            )  # fmt: skip
    return verified


def by_tag(key: str) -> Route:
    """Route a record by one of its tags (e.g. the tenant)."""

    def route(record: Mapping[str, Any]) -> str:
        value = (record.get("tags") or {}).get(key)
        if not isinstance(value, str):
            raise RecordError(f"tags.{key}", "names the shard of the record and is missing")
        return value

    return route


def by_month(record: Mapping[str, Any]) -> str:
    """Route a record by the month it was generated in (``2026_12``), as Rekor by period."""
    generated = str(record.get("generated_at", ""))
    if not re.match(r"^\d{4}-\d{2}-", generated):
        raise RecordError("generated_at", "names the shard of the record and is missing")
    return generated[:7].replace("-", "_")


class ShardedLog:
    """Shards of one PostgreSQL database, one schema each, and their signed index."""

    def __init__(
        self,
        url: str,
        labels: Iterable[str],
        *,
        name: str,
        home: str | Path,
        route: Route,
    ) -> None:
        import psycopg

        from .client import Provmark
        from .crypto.keystore import FileKeyStore
        from .store.postgres import PostgresStore

        self.name = name
        self.route = route
        self.labels = list(labels)
        for label in self.labels:
            if not _LABEL.match(label):
                raise ConfigError(f"shard label {label!r}: use 1-40 of a-z, 0-9 and _")
        keystore = FileKeyStore(Path(home) / "keys")
        self.shards: dict[str, Provmark] = {}
        sep = "&" if "?" in url else "?"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS provmark_shard_index"
                " (version int PRIMARY KEY, note text NOT NULL)"
            )
            for label in self.labels:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS shard_{label}")
        try:
            for label in self.labels:
                store = PostgresStore(
                    f"{url}{sep}options=-csearch_path%3Dshard_{label}", origin=f"{name}/{label}"
                )
                self.shards[label] = Provmark(store, keystore)
        except BaseException:
            self.close()
            raise
        self._url = url
        self._index = self._latest()

    def _latest(self) -> ShardIndex:
        import psycopg

        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "SELECT note FROM provmark_shard_index ORDER BY version DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return self._publish({})
        index = open_index(str(row[0]), self.index_key)
        sealed = {s.label: s.sealed for s in index.shards if s.sealed is not None}
        if {s.label for s in index.shards} != set(self.labels):
            return self._publish(sealed, index.version + 1)
        return index

    def _publish(self, sealed: Mapping[str, tuple[int, bytes]], version: int = 1) -> ShardIndex:
        import psycopg

        shards = tuple(
            Shard(label, pm.store.origin, pm.log_verifier.key_string(), sealed.get(label))
            for label, pm in self.shards.items()
        )
        index = ShardIndex(self.name, version, shards)
        note = sign_note(index.body(), self.name, self._signing_key())
        with psycopg.connect(self._url) as conn:
            conn.execute("INSERT INTO provmark_shard_index VALUES (%s, %s)", (version, note))
        return index

    def _signing_key(self) -> Any:
        return next(iter(self.shards.values())).log.note_signing_key()

    @property
    def index_key(self) -> str:
        """The one key a verifier pins: the log key under the index's name."""
        from .log.note import verifier_key_string

        return verifier_key_string(self.name, self._signing_key().public_key())

    @property
    def index(self) -> ShardIndex:
        return self._index

    def index_note(self) -> str:
        return sign_note(self._index.body(), self.name, self._signing_key())

    def ingest(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Validate, sign and log each record in the shard its route names."""
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for i, record in enumerate(records):
            try:
                label = self.route(record)
            except RecordError as exc:
                raise RecordError(f"[{i}].{exc.field}", exc.reason) from None
            shard = next((s for s in self._index.shards if s.label == label), None)
            if shard is None:
                raise RecordError(f"[{i}]", f"no shard {label!r} in {self.name!r}")
            if shard.sealed is not None:
                raise RecordError(f"[{i}]", f"shard {label!r} is sealed")
            groups.setdefault(label, []).append(record)
        ids: list[str] = []
        for label, group in groups.items():
            ids += self.shards[label].ingest(list(group))
        return ids

    def seal(self, label: str) -> ShardIndex:
        """Close a shard (its period ended): the index records its final checkpoint."""
        pm = self.shards[label]
        pm.flush()
        latest = pm.store.latest_checkpoint()
        final = (latest.size, latest.root) if latest is not None else (0, _EMPTY_ROOT)
        sealed = {s.label: s.sealed for s in self._index.shards if s.sealed is not None}
        sealed[label] = final
        self._index = self._publish(sealed, self._index.version + 1)
        return self._index

    def bundle(self, record_id: str) -> dict[str, Any]:
        """The shard's bundle of a record, with the signed shard index."""
        for pm in self.shards.values():
            if pm.store.get(record_id) is not None:
                return {**pm.bundle(record_id), "shard_index": self.index_note()}
        raise NotFoundError(f"no record {record_id!r} in any shard of {self.name!r}")

    def close(self) -> None:
        for pm in self.shards.values():
            pm.close()


_EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
