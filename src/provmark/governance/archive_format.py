"""The archive format: Parquet files partitioned by date, a signed manifest, and checks.

Layout under an archive root (a local folder or any fsspec URL)::

    ROOT/date=2026-01-05/<archive_id>.parquet     one row per record (Hive partitioning)
    ROOT/_manifests/<archive_id>.json             the manifest
    ROOT/_manifests/<archive_id>.sig              signed note by the log key over its hash

Each row holds the exact signed payload bytes, the signature, the log index, the
leaf hash and an inclusion proof against the checkpoint in the manifest, so a
row verifies offline: signature, key window, checkpoint signature, inclusion.
The manifest lists every file with its SHA-256 and size; the signed note binds
the manifest's own SHA-256 to the log key. Records erased by retention leave a
tombstone (index, leaf hash, proof) in ``erased``: the leaf stays provable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..crypto.keys import PublicKey
from ..errors import ConfigError, KeyStoreError, ProvmarkError, VerificationError
from ..log.merkle import NodeReader, root_at, verify_inclusion
from ..log.note import NoteVerifier, open_note, parse_verifier_key
from ..verification.verifier import verify_evidence
from ..verify import Check, Evidence, Trust, Verified, leaf_hash_of

if TYPE_CHECKING:
    from ..crypto.revocation import Revocation

MEDIA_TYPE = "application/vnd.provmark.archive+json;version=1"
MANIFESTS = "_manifests"
Progress = Callable[[int, int], None]


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("archives need pyarrow: pip install pyarrow fsspec") from None
    return pa, pq


def row_schema() -> Any:
    pa, _ = _arrow()
    return pa.schema(
        [
            ("index", pa.int64()),
            ("record_id", pa.string()),
            ("slug", pa.string()),
            ("generated_at", pa.string()),
            ("model", pa.string()),
            ("operation", pa.string()),
            ("actor", pa.string()),
            ("output_sha256", pa.string()),
            ("outputs", pa.list_(pa.string())),
            ("tags", pa.string()),
            ("payload", pa.binary()),
            ("signature", pa.string()),
            ("leaf_hash", pa.binary()),
            ("proof", pa.list_(pa.binary())),
        ]
    )


def table_bytes(rows: dict[str, list[Any]]) -> bytes:
    pa, pq = _arrow()
    table = pa.Table.from_pydict(rows, schema=row_schema())
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_table(data: bytes, where: str, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Rows of a Parquet file as columns (lists); a corrupt file is a failed check."""
    _, pq = _arrow()
    try:
        table = pq.read_table(io.BytesIO(data), columns=list(columns) if columns else None)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise VerificationError(
            "archive_file", f"{where}: not a readable Parquet file ({exc})"
        ) from None
    return table.to_pydict()  # type: ignore[no-any-return]


class Destination:
    """An archive root: local folder or fsspec URL."""

    def __init__(self, url: str) -> None:
        try:
            import fsspec
        except ImportError:
            raise ConfigError("archives need fsspec: pip install fsspec pyarrow") from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"archive location {url!r}: {exc}") from None
        self.url = url
        self.root = str(root).rstrip("/")

    def full(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def uri(self, rel: str) -> str:
        return self.url.rstrip("/") + "/" + rel

    def write(self, rel: str, data: bytes) -> None:
        path = self.full(rel)
        try:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with self.fs.open(path, "wb") as fh:
                fh.write(data)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot write archive file {self.uri(rel)}: {exc}") from None

    def read(self, rel: str, check: str = "archive_file") -> bytes:
        try:
            data = self.fs.cat_file(self.full(rel))
        except FileNotFoundError:
            raise VerificationError(
                check, f"{self.uri(rel)} is missing (a partial or moved archive)"
            ) from None
        except (OSError, ValueError) as exc:
            raise VerificationError(check, f"cannot read {self.uri(rel)}: {exc}") from None
        return bytes(data)

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.full(rel))

    def check_writable(self) -> None:
        probe = f"{MANIFESTS}/.probe-{hashlib.sha256(self.url.encode()).hexdigest()[:8]}"
        self.write(probe, b"ok")
        self.remove(probe)

    def manifests(self) -> list[str]:
        """Archive ids with a manifest under this root."""
        try:
            names = self.fs.ls(self.full(MANIFESTS), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise ConfigError(f"cannot list {self.uri(MANIFESTS)}: {exc}") from None
        return sorted(
            posixpath.basename(str(n))[: -len(".json")] for n in names if str(n).endswith(".json")
        )

    def files_of(self, archive_id: str) -> list[str]:
        """Every Parquet file of an archive (referenced by its manifest or not)."""
        found = self.fs.glob(self.full(f"date=*/{archive_id}*.parquet"))
        return sorted(posixpath.relpath(str(p), self.root) for p in found)


def manifest_rel(archive_id: str) -> str:
    return f"{MANIFESTS}/{archive_id}.json"


def sig_rel(archive_id: str) -> str:
    return f"{MANIFESTS}/{archive_id}.sig"


def manifest_statement(origin: str, archive_id: str, revision: int, sha256: str) -> str:
    """The note body by which the log key vouches for one manifest revision."""
    return f"provmark-archive/v1\n{origin}\n{archive_id}\n{revision}\n{sha256}\n"


def open_root(path: str) -> tuple[Destination, list[str]]:
    """``path`` is an archive root (every archive in it) or one manifest file."""
    if path.endswith(".json") and f"/{MANIFESTS}/" in "/" + path.replace("\\", "/"):
        root, _, name = path.replace("\\", "/").rpartition(f"/{MANIFESTS}/")
        return Destination(root or "."), [name[: -len(".json")]]
    dest = Destination(path)
    ids = dest.manifests()
    if not ids:
        raise VerificationError("archive_manifest", f"no archive manifest under {path}")
    return dest, ids


@dataclass
class Manifest:
    archive_id: str
    origin: str
    revision: int
    created_at: str
    updated_at: str
    checkpoint: dict[str, Any]  # {"size", "root" (b64), "note"}
    log_key: str
    keys: list[dict[str, Any]]
    files: list[dict[str, Any]]  # {"path", "date", "sha256", "size", "rows", "first_index", ...}
    erased: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(int(f["rows"]) for f in self.files)

    def index_range(self) -> tuple[int, int] | None:
        if not self.files:
            return None
        return (
            min(int(f["first_index"]) for f in self.files),
            max(int(f["last_index"]) for f in self.files),
        )

    def to_bytes(self) -> bytes:
        first_last = self.index_range()
        doc = {
            "media_type": MEDIA_TYPE,
            "archive_id": self.archive_id,
            "origin": self.origin,
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "count": self.count,
            "index_range": list(first_last) if first_last else None,
            "checkpoint": self.checkpoint,
            "log_key": self.log_key,
            "keys": self.keys,
            "files": self.files,
            "erased": self.erased,
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes, where: str) -> Manifest:
        def bad(reason: str) -> VerificationError:
            return VerificationError("archive_manifest", f"{where}: {reason}")

        try:
            doc = json.loads(data)
        except ValueError:
            raise bad("not JSON") from None
        if not isinstance(doc, dict) or doc.get("media_type") != MEDIA_TYPE:
            raise bad(f"media_type is not {MEDIA_TYPE!r}")
        try:
            manifest = cls(
                archive_id=str(doc["archive_id"]),
                origin=str(doc["origin"]),
                revision=int(doc["revision"]),
                created_at=str(doc["created_at"]),
                updated_at=str(doc["updated_at"]),
                checkpoint=dict(doc["checkpoint"]),
                log_key=str(doc["log_key"]),
                keys=list(doc["keys"]),
                files=[dict(f) for f in doc["files"]],
                erased=[dict(e) for e in doc.get("erased", [])],
            )
            for f in manifest.files:
                for name in ("path", "sha256", "size", "rows", "first_index", "last_index"):
                    f[name]
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"field {exc} is missing or malformed") from None
        if doc.get("count") != manifest.count:
            raise bad(f"count {doc.get('count')} differs from the files' rows {manifest.count}")
        return manifest


@dataclass(frozen=True)
class ArchiveCheck:
    archive_id: str
    revision: int
    records: int
    files: int
    erased: int
    index_range: tuple[int, int] | None
    checkpoint_size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "archive_id": self.archive_id,
            "revision": self.revision,
            "records": self.records,
            "files": self.files,
            "erased": self.erased,
            "index_range": list(self.index_range) if self.index_range else None,
            "checkpoint_size": self.checkpoint_size,
        }


@dataclass(frozen=True)
class Pins:
    """What the verifier trusts; None for a part means the archive's own copy is used."""

    keys: Sequence[PublicKey] | None = None
    log_key: NoteVerifier | None = None
    revocations: Sequence[Revocation] = ()  # a pinned key set's, and ``--revocations``


def pins_from(
    keys: Sequence[PublicKey] | None,
    log_key: str | None,
    revocations: Sequence[Revocation] = (),
) -> Pins:
    """Pins from ``--key``/``--keyset`` keys and a ``--log-key`` verifier key string."""
    verifier = None
    if log_key:
        try:
            verifier = parse_verifier_key(log_key)
        except ProvmarkError as exc:
            raise ConfigError(str(exc), field="log_key") from None
    return Pins(keys=keys, log_key=verifier, revocations=tuple(revocations))


class OpenedArchive:
    """A manifest whose signature checked out, and the trust to verify its rows with."""

    def __init__(self, dest: Destination, archive_id: str, pins: Pins) -> None:
        self.dest = dest
        raw = dest.read(manifest_rel(archive_id), "archive_manifest")
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self.manifest = Manifest.parse(raw, dest.uri(manifest_rel(archive_id)))
        m = self.manifest
        if m.archive_id != archive_id:
            raise VerificationError("archive_manifest", f"manifest names {m.archive_id!r}")
        log_key = pins.log_key
        if log_key is None:
            try:
                log_key = parse_verifier_key(m.log_key)
            except ProvmarkError as exc:
                raise VerificationError("archive_manifest", f"log key: {exc}") from None
        note = dest.read(sig_rel(archive_id), "archive_manifest").decode("utf-8", "replace")
        try:
            body, _ = open_note(note, [log_key])
        except VerificationError as exc:
            raise VerificationError(
                "archive_manifest", f"manifest signature: {exc.detail}"
            ) from None
        if body != manifest_statement(m.origin, archive_id, m.revision, self.sha256):
            raise VerificationError(
                "archive_manifest",
                f"{dest.uri(manifest_rel(archive_id))} was changed after it was signed",
            )
        try:
            keys = (
                list(pins.keys)
                if pins.keys is not None
                else [PublicKey.from_json(k) for k in m.keys]
            )
        except (KeyStoreError, TypeError) as exc:
            raise VerificationError("record_signature", f"archive keys: {exc}") from None
        self.pinned = pins.keys is not None and pins.log_key is not None
        self.trust = Trust(keys, log_key, m.origin, pinned=self.pinned)
        self.revocations = tuple(pins.revocations)
        cp = self.trust.checkpoint(str(m.checkpoint.get("note", "")))
        if cp.size != m.checkpoint.get("size") or base64.b64encode(cp.root_hash).decode() != (
            m.checkpoint.get("root")
        ):
            raise VerificationError("archive_manifest", "checkpoint size/root differ from its note")
        self.checkpoint_size = cp.size
        self.root_hash = cp.root_hash

    def read_file(self, entry: dict[str, Any]) -> bytes:
        data = self.dest.read(str(entry["path"]))
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise VerificationError(
                "archive_file",
                f"{self.dest.uri(str(entry['path']))}: bytes differ from the manifest's sha256",
            )
        return data

    def rows(
        self, entry: dict[str, Any], columns: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        cols = read_table(self.read_file(entry), str(entry["path"]), columns)
        n = len(next(iter(cols.values()))) if cols else 0
        if n != entry["rows"]:
            raise VerificationError(
                "archive_file", f"{entry['path']}: {n} rows, the manifest says {entry['rows']}"
            )
        names = list(cols)
        for i in range(n):
            yield {name: cols[name][i] for name in names}

    def verify_row(self, row: dict[str, Any], content_sha256: str | None = None) -> Verified:
        signature = json.loads(row["signature"])
        leaf = leaf_hash_of(row["payload"], signature)
        if leaf != row["leaf_hash"]:
            raise VerificationError(
                "inclusion_proof", f"row {row['index']}: leaf_hash does not match its record"
            )
        evidence = Evidence(
            payload=row["payload"],
            signature=signature,
            index=int(row["index"]),
            proof=list(row["proof"]),
            checkpoint=str(self.manifest.checkpoint["note"]),
            origin=self.manifest.origin,
        )
        if not self.revocations:
            return verify_evidence(evidence, self.trust, content_sha256=content_sha256)
        from ..verification.policies import RevocationPolicy
        from ..verification.verifier import Verifier

        policy = RevocationPolicy(self.revocations, "pinned revocation list")
        report = Verifier(self.trust, [policy]).verify(evidence, content_sha256=content_sha256)
        return report.raise_for_failure()

    def check(
        self, live: NodeReader | None = None, progress: Progress | None = None
    ) -> ArchiveCheck:
        """Every file's hash, every row's evidence, the tombstones; against ``live`` too."""
        m = self.manifest
        if live is not None:
            try:
                live_root = root_at(self.checkpoint_size, live)
            except KeyError as exc:
                raise VerificationError("archive_manifest", f"live tree: {exc}") from None
            if live_root != self.root_hash:
                raise VerificationError(
                    "consistency", "the archive's checkpoint is not a state of this store's log"
                )
        seen: set[int] = set()
        done = 0
        for entry in m.files:
            for row in self.rows(entry):
                index = int(row["index"])
                if index in seen:
                    raise VerificationError("archive_file", f"index {index} appears twice")
                seen.add(index)
                if not (entry["first_index"] <= index <= entry["last_index"]):
                    raise VerificationError(
                        "archive_file", f"{entry['path']}: index {index} is outside its range"
                    )
                self.verify_row(row)
                done += 1
                if progress and done % 500 == 0:
                    progress(done, m.count)
        for e in m.erased:
            try:
                leaf = base64.b64decode(e["leaf_hash"])
                proof = [base64.b64decode(p) for p in e["proof"]]
                verify_inclusion(leaf, int(e["index"]), self.checkpoint_size, proof, self.root_hash)
            except (KeyError, TypeError, ValueError):
                raise VerificationError("archive_manifest", "malformed tombstone") from None
        if progress:
            progress(m.count, m.count)
        return ArchiveCheck(
            archive_id=m.archive_id,
            revision=m.revision,
            records=done,
            files=len(m.files),
            erased=len(m.erased),
            index_range=m.index_range(),
            checkpoint_size=self.checkpoint_size,
        )

    def find_output(self, sha256: str, record_id: str | None = None) -> Verified | None:
        """Verify the row whose outputs include ``sha256`` (or the row ``record_id``)."""
        for entry in self.manifest.files:
            data = self.read_file(entry)  # read and hash once
            cols = read_table(data, str(entry["path"]), ["record_id", "slug", "outputs"])
            for i, outs in enumerate(cols["outputs"]):
                if record_id is not None and record_id not in (
                    cols["record_id"][i],
                    cols["slug"][i],
                ):
                    continue
                if record_id is None and sha256 not in (outs or []):
                    continue
                full = read_table(data, str(entry["path"]))
                row = {name: values[i] for name, values in full.items()}
                verified = self.verify_row(row, None)
                _check_output(verified, sha256)
                how = "pinned log key" if self.pinned else "the archive's own log key (not pinned)"
                verified.checks[:0] = [
                    Check(
                        "archive_manifest",
                        True,
                        f"manifest {self.manifest.archive_id} revision {self.manifest.revision} "
                        f"signed by {how}",
                    ),
                    Check("archive_file", True, f"{entry['path']} sha256 matches the manifest"),
                ]
                return verified
        return None


def _check_output(verified: Verified, sha256: str) -> None:
    from ..record import output_hashes

    stated = output_hashes(json.loads(verified.payload))
    if sha256 not in stated:
        raise VerificationError(
            "output_hash", f"content sha256 {sha256} is not an output of the archived record"
        )
    verified.checks.insert(
        0, Check("output_hash", True, f"content sha256 {sha256} matches the record")
    )


def verify_in_archive(
    path: str, content_sha256: str, *, pins: Pins | None = None, record_id: str | None = None
) -> Verified:
    """``provmark verify FILE --archive PATH``: find the content in the archive(s), verify it."""
    dest, ids = open_root(path)
    for archive_id in ids:
        found = OpenedArchive(dest, archive_id, pins or Pins()).find_output(
            content_sha256, record_id
        )
        if found is not None:
            return found
    raise VerificationError(
        "output_hash",
        f"no archived record for this content (sha256 {content_sha256}) under {path}",
    )
