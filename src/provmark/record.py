"""The provenance record (schema_version "1" and "2").

A record is what provmark signs, logs and stores for one generation. The
unsigned part (every field but ``signature`` and ``log``) is encoded with RFC
8785 into the *payload*; the signature covers the payload bytes verbatim; the
log entry is the RFC 8785 encoding of ``{"record": <payload>, "signature": {...}}``
(see :func:`log_entry`), whose leaf hash goes into the Merkle log.

Content digests (``sha256`` fields) are lowercase hex; signatures and log
hashes are standard base64.

Schema versions: "1" has one ``output``; "2" adds ``outputs``, every output of a
multi-output generation (n completions, an image batch), with ``output`` kept as
the primary one (``outputs[0]``) so lookups by output hash work as before. A
record is written with the lowest version that can hold it, readers accept every
version in :data:`SUPPORTED_SCHEMA_VERSIONS`, and stored bytes are never
rewritten: :func:`upgrade` gives a v1 record's v2 view, its signature still
covering the v1 bytes. :class:`RecordV1` is the frozen v1 model
(``docs/schema/record-v1.json``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .canonical import canonical_bytes
from .errors import RecordError, SchemaVersionError

SCHEMA_VERSION = "2"  # the newest version this provmark reads and writes
SUPPORTED_SCHEMA_VERSIONS = ("1", "2")

# Limits on free-form parts, in bytes of canonical JSON.
MAX_PARAMS_BYTES = 16 * 1024
MAX_EXTRA_BYTES = 16 * 1024
MAX_CONFIG_BYTES = 16 * 1024
MAX_SNAPSHOT_CHARS = 8 * 1024
MAX_TAGS = 64
MAX_TAG_CHARS = 256
MAX_PARENTS = 256
MAX_OUTPUTS = 256

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ANY_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_OPERATION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

JSON = Any


def _check_sha256(value: str | None) -> str | None:
    if value is not None and not _HEX64.match(value):
        raise ValueError("must be 64 lowercase hex characters (a SHA-256 digest)")
    return value


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelFile(_Part):
    path: str
    sha256: str
    size: int = Field(ge=0)

    _hex = field_validator("sha256")(_check_sha256)


class ModelInfo(_Part):
    name: str = Field(min_length=1, max_length=256)
    version: str | None = None
    provider: str | None = None
    revision: str | None = None
    digest: str | None = None
    files: list[ModelFile] = Field(default_factory=list)


class Dataset(_Part):
    uri: str
    sha256: str | None = None

    _hex = field_validator("sha256")(_check_sha256)


class InputInfo(_Part):
    sha256: str | None = None
    media_type: str | None = None
    snapshot: str | None = Field(default=None, max_length=MAX_SNAPSHOT_CHARS)
    seed: str | None = None
    datasets: list[Dataset] = Field(default_factory=list)

    _hex = field_validator("sha256")(_check_sha256)


class OutputInfo(_Part):
    sha256: str
    media_type: str | None = None
    size: int | None = Field(default=None, ge=0)
    uri: str | None = None

    _hex = field_validator("sha256")(_check_sha256)


class GPUInfo(_Part):
    name: str
    driver: str | None = None
    cuda: str | None = None
    count: int | None = None


class ContainerInfo(_Part):
    id: str | None = None
    image: str | None = None
    digest: str | None = None


class K8sInfo(_Part):
    namespace: str | None = None
    pod: str | None = None
    node: str | None = None


class GitInfo(_Part):
    commit: str | None = None
    dirty: bool | None = None


class Context(_Part):
    python: str | None = None
    platform: str | None = None
    hostname: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    gpu: list[GPUInfo] = Field(default_factory=list)
    container: ContainerInfo | None = None
    k8s: K8sInfo | None = None
    git: GitInfo | None = None
    config: dict[str, JSON] = Field(default_factory=dict)


class Actor(_Part):
    user_id: str | None = None
    service: str | None = None
    region: str | None = None


class Usage(_Part):
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)


class Fallback(_Part):
    requested_model: str
    served_model: str
    reason: str | None = None


class ErrorInfo(_Part):
    type: str
    message: str | None = Field(default=None, max_length=2048)


class Signature(_Part):
    alg: str
    key_id: str
    sig: str


class LogPosition(_Part):
    index: int = Field(ge=0)
    leaf_hash: str


# The record as schema_version "1" defined it, frozen: docs/schema/record-v1.json is
# generated from it (docstring included), so leave it as it is; Record extends it.
class RecordV1(_Part):
    """One provenance record. ``signature`` and ``log`` are not part of the payload."""

    model_config = ConfigDict(title="Record")

    record_id: str
    schema_version: str = "1"
    started_at: str | None = None
    generated_at: str
    operation: str = "text_completion"
    status: Literal["ok", "error"] = "ok"
    error: ErrorInfo | None = None
    model: ModelInfo
    input: InputInfo = Field(default_factory=InputInfo)
    params: dict[str, JSON] = Field(default_factory=dict)
    output: OutputInfo | None = None
    context: Context = Field(default_factory=Context)
    actor: Actor = Field(default_factory=Actor)
    parents: list[str] = Field(default_factory=list, max_length=MAX_PARENTS)
    tags: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, JSON] = Field(default_factory=dict)
    usage: Usage | None = None
    fallback: Fallback | None = None
    signature: Signature | None = None
    log: LogPosition | None = None

    @field_validator("record_id")
    @classmethod
    def _record_id(cls, value: str) -> str:
        if not _ANY_UUID.match(value):
            raise ValueError("must be a lowercase UUID (provmark makes UUIDv7s)")
        return value

    @field_validator("started_at", "generated_at")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value

    @field_validator("operation")
    @classmethod
    def _operation(cls, value: str) -> str:
        if not _OPERATION.match(value):
            raise ValueError("must be a lowercase name such as 'chat' or 'text_completion'")
        return value

    @field_validator("schema_version")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != "1":
            raise ValueError(f"schema_version {value!r} is not '1' (this is the v1 model)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        check_tags(value)
        return value

    @field_validator("params", "extra")
    @classmethod
    def _free_form(cls, value: dict[str, JSON]) -> dict[str, JSON]:
        # A cheap bound here; the exact RFC 8785 check (safe integers, keys) happens where
        # the value is encoded for signing (capture and Provmark.ingest).
        try:
            raw = orjson.dumps(value)
            if b"null" in raw:  # orjson writes NaN and infinities as null: ask json
                json.dumps(value, allow_nan=False)
        except TypeError:
            # orjson refuses integers beyond 64 bits, which signed payloads do hold (RFC 8785
            # writes a float such as 1e20 as an integer): json decides
            try:
                raw = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"not JSON: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        size = len(raw)
        if size > MAX_PARAMS_BYTES:
            raise ValueError(f"is about {size} bytes of JSON, over the limit of {MAX_PARAMS_BYTES}")
        return value

    @property
    def slug(self) -> str:
        return slug_for(self.record_id)

    def payload_dict(self) -> dict[str, Any]:
        """The unsigned record as a JSON object (what the signature covers)."""
        return self.model_dump(mode="json", exclude={"signature", "log"}, exclude_none=True)

    def payload(self) -> bytes:
        return canonical_bytes(self.payload_dict())


class Record(RecordV1):
    """One provenance record, any supported schema version.

    ``signature`` and ``log`` are not part of the payload. ``outputs`` (v2 only)
    lists every output of the generation; ``output`` is then ``outputs[0]``.
    """

    schema_version: str = Field(
        default="1",
        description="'1' or '2'; when absent, '2' if the record has outputs, else '1'",
    )
    # left out when empty, so a v1 record's payload has no trace of it
    outputs: list[OutputInfo] = Field(
        default_factory=list, max_length=MAX_OUTPUTS, exclude_if=lambda v: not v
    )

    @model_validator(mode="before")
    @classmethod
    def _versioned(cls, data: Any) -> Any:
        """No version given: the lowest one that holds the record."""
        if isinstance(data, dict) and "schema_version" not in data:
            data = {**data, "schema_version": "2" if data.get("outputs") else "1"}
        return data

    @model_validator(mode="after")
    def _primary(self) -> Record:
        """``output`` defaults to ``outputs[0]`` (validated there, so errors name outputs)."""
        if self.outputs and self.output is None:
            object.__setattr__(self, "output", self.outputs[0])  # frozen model, still building
        return self

    @field_validator("schema_version")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(
                f"schema_version {value!r} is newer than this provmark understands "
                f"({', '.join(SUPPORTED_SCHEMA_VERSIONS)}); upgrade provmark"
            )
        return value

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, value: list[OutputInfo], info: ValidationInfo) -> list[OutputInfo]:
        if not value:
            return value
        if info.data.get("schema_version") == "1":
            raise ValueError("outputs needs schema_version '2' (v1 records have one output)")
        primary = info.data.get("output")
        if primary is not None and primary != value[0]:
            raise ValueError("output must equal outputs[0], the primary output")
        return value

    def all_outputs(self) -> list[OutputInfo]:
        """Every output, whatever the version: ``outputs``, else ``[output]``, else ``[]``."""
        if self.outputs:
            return list(self.outputs)
        return [self.output] if self.output is not None else []


def upgrade(record: Record) -> Record:
    """The v2 view of a record (v2 records come back as they are).

    Only a view: the stored bytes and the signature over them are unchanged,
    and verification always runs over the stored bytes, never over this view.
    """
    if record.schema_version == "2":
        return record
    outputs = [record.output] if record.output is not None else []
    return record.model_copy(update={"schema_version": "2", "outputs": outputs})


def output_hashes(payload: dict[str, Any]) -> list[str]:
    """Every output sha256 a stored record (a parsed payload, any version) states."""
    found: list[str] = []
    for out in [payload.get("output"), *(payload.get("outputs") or [])]:
        sha = out.get("sha256") if isinstance(out, dict) else None
        if isinstance(sha, str) and sha not in found:
            found.append(sha)
    return found


def secondary_outputs(data: dict[str, Any]) -> list[str]:
    """The sha256 of every output besides the primary one (v2 ``outputs[1:]``), which the
    stores index beside ``output_sha256`` so that ``verify`` finds them too."""
    if not data.get("outputs"):
        return []
    primary = (data.get("output") or {}).get("sha256")
    return [h for h in output_hashes(data) if h != primary]


def record_from_payload(payload: bytes | dict[str, Any], **extra: Any) -> Record:
    """Parse a stored payload (plus ``signature=``/``log=``) into a :class:`Record`."""
    data = json.loads(payload) if isinstance(payload, bytes) else dict(payload)
    version = data.get("schema_version", "2" if data.get("outputs") else "1")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SchemaVersionError(
            f"record {data.get('record_id')!r} has schema_version {version!r}, "
            "newer than this provmark understands; upgrade provmark"
        )
    data.update({k: v for k, v in extra.items() if v is not None})
    return validate_record(data)


def validate_record(data: dict[str, Any]) -> Record:
    """Validate a JSON object as a record; errors name the field and the reason."""
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "<record>"
        raise RecordError(field, err["msg"]) from None


def log_entry(payload: bytes, signature: dict[str, str]) -> bytes:
    """The bytes appended to the Merkle log: JCS of ``{"record": ..., "signature": ...}``.

    ``payload`` is already canonical and ``"record" < "signature"``, so this
    concatenation *is* the RFC 8785 encoding of that object.
    """
    return b'{"record":' + payload + b',"signature":' + signature_json(signature) + b"}"


_PLAIN_SIGNATURE = re.compile(
    r'^\{"alg":"[A-Za-z0-9._-]*","key_id":"[A-Za-z0-9._-]*","sig":"[A-Za-z0-9+/=_-]*"\}$'
)


def signature_json(signature: dict[str, str]) -> bytes:
    """RFC 8785 bytes of a signature object (also the form it is stored in)."""
    # Hot path: alg names, hex key ids and base64 need no escaping, so JCS is plain text.
    if len(signature) == 3:
        try:
            alg, key_id, sig = signature["alg"], signature["key_id"], signature["sig"]
        except KeyError:
            return canonical_bytes(signature)
        if type(alg) is str and type(key_id) is str and type(sig) is str:
            text = f'{{"alg":"{alg}","key_id":"{key_id}","sig":"{sig}"}}'
            if _PLAIN_SIGNATURE.match(text):
                return text.encode()
    return canonical_bytes(signature)


# ---------------------------------------------------------------- ids and time


def new_record_id(now_ns: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, random rest."""
    ms = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 68) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


class RecordIds:
    """Monotonic UUIDv7s: within one millisecond the 12-bit ``rand_a`` field counts up
    (RFC 9562 section 6.2, method 1), so ids from one process sort in creation order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = -1
        self._seq = 0

    def new(self, now_ns: int | None = None) -> str:
        ms = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
        rand = int.from_bytes(os.urandom(8), "big")
        with self._lock:
            if ms <= self._ms:
                ms = self._ms  # clock went back or same ms: keep order
                self._seq += 1
                if self._seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                    ms += 1
                    self._seq = 0
            else:
                self._seq = (rand >> 53) & 0x3FF  # random start, room to count up
            self._ms = ms
            seq = self._seq
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62
        h = f"{value | (rand & ((1 << 62) - 1)):032x}"  # str(uuid.UUID(int=...)), faster
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_SLUG = re.compile(r"^pm-\d{8}-[0-9a-f]{6}$")


def is_record_id(value: str) -> bool:
    return bool(_UUID.match(value))


def is_sha256(value: Any) -> bool:
    """Whether ``value`` is a SHA-256 digest as records write it (64 lowercase hex)."""
    return isinstance(value, str) and _HEX64.match(value) is not None


def is_slug(value: str) -> bool:
    return bool(_SLUG.match(value))


def slug_for(record_id: str) -> str:
    """``pm-YYYYMMDD-xxxxxx``: the UTC date of the id and its last 6 hex digits."""
    ms = int(record_id[:8] + record_id[9:13], 16)
    return f"pm-{_day_text(ms // 86_400_000)}-{record_id[-6:]}"


@functools.lru_cache(maxsize=8)
def _day_text(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y%m%d")


def format_time(dt: datetime) -> str:
    """RFC 3339 UTC with microseconds: ``2026-11-25T15:46:02.123456Z``."""
    if dt.tzinfo is None:
        raise RecordError("time", "naive datetime; give a timezone-aware one")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_utc() -> str:
    return format_time(datetime.now(UTC))


def parse_time(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone; use UTC ('Z')")
    return dt.astimezone(UTC)


# ---------------------------------------------------------------- limits


def check_size(field: str, value: Any, limit: int) -> bytes:
    """Canonical bytes of a free-form value, refused when over ``limit`` bytes."""
    raw = canonical_bytes(value, field) if not isinstance(value, bytes) else value
    if len(raw) > limit:
        raise RecordError(field, f"is {len(raw)} bytes of JSON, over the limit of {limit}")
    return raw


def check_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise RecordError("tags", f"{len(tags)} tags, over the limit of {MAX_TAGS}")
    for k, v in tags.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise RecordError(f"tags.{k}", "tag keys and values must be strings")
        if len(k) > MAX_TAG_CHARS or len(v) > MAX_TAG_CHARS:
            raise RecordError(f"tags.{k}", f"longer than {MAX_TAG_CHARS} characters")


def json_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of one record schema version (v1 from the frozen v1 model)."""
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise RecordError(
            "schema_version", f"{version!r} is not one of {SUPPORTED_SCHEMA_VERSIONS}"
        )
    schema = (RecordV1 if version == "1" else Record).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://provmark.dev/schema/record-v{version}.json"
    return schema


def write_json_schema(path: str | Path, version: str | None = None) -> None:
    """Write the JSON Schema of a record version (``docs/schema/record-v<N>.json``).

    Without ``version`` it is read from a file name ``record-v<N>.json``, else the newest.
    """
    if version is None:
        found = re.search(r"record-v(\d+)\.json$", str(path))
        version = found.group(1) if found else SCHEMA_VERSION
    text = json.dumps(json_schema(version), indent=2, sort_keys=True) + "\n"
    Path(path).write_text(text)
