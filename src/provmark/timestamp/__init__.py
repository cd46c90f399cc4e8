"""RFC 3161 trusted timestamps of checkpoints: request, store, verify.

What is time-stamped is a checkpoint's body (``origin\\nsize\\nroot\\n``, SHA-256
message imprint): a valid token proves that the tree of that size and root, and so
every record in it and its signature, existed at the token's ``genTime``. Records
are not stamped one by one. The whole ``TimeStampResp`` (DER) is kept in the
:class:`~provmark.witness.archive.TrustArchive`.

Verification pins the TSA's root certificate(s): the token's signature, the
signer's certificate chain at ``genTime``, its critical ``id-kp-timeStamping`` usage
and the message imprint are all checked (by ``rfc3161-client``); each failure is a
:class:`~provmark.errors.VerificationError` with check ``timestamp``.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from ..errors import ConfigError, VerificationError
from ..log.note import Checkpoint, open_checkpoint
from ..record import format_time
from ..store.base import StoredCheckpoint
from ..witness.archive import StoredTimestamp, TrustArchive

if TYPE_CHECKING:
    from ..log.service import Log

__all__ = [
    "CHECK",
    "TimestampInfo",
    "TsaTrust",
    "checkpoint_body",
    "load_tsa_trust",
    "request_timestamp",
    "timestamp_checkpoint",
    "verify_stored_timestamps",
    "verify_timestamp",
]

CHECK = "timestamp"
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_RESPONSE_BYTES = 1 << 20


def _rfc3161() -> Any:
    try:
        import rfc3161_client
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(f"trusted timestamps need the rfc3161-client package: {exc}") from None
    return rfc3161_client


@dataclass(frozen=True)
class TimestampInfo:
    """A verified token: when, by whom, over what."""

    gen_time: str  # RFC 3339 UTC
    tsa: str  # subject of the signing certificate
    serial: int
    policy: str
    latest: str  # gen_time + accuracy (+1 s when none is stated): existed by then at the latest

    def to_json(self) -> dict[str, Any]:
        return {"gen_time": self.gen_time, "tsa": self.tsa, "serial": self.serial}


@dataclass(frozen=True)
class TsaTrust:
    """Pinned TSA roots (self-signed) and any intermediates given with them."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()


def load_tsa_trust(paths: Sequence[str | Path]) -> TsaTrust:
    """Read PEM certificates: self-signed ones are roots, the others intermediates."""
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    for path in paths:
        try:
            certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}", field="tsa_cert") from None
        except ValueError as exc:
            raise ConfigError(f"{path}: not PEM certificates ({exc})", field="tsa_cert") from None
        for cert in certs:
            (roots if cert.issuer == cert.subject else intermediates).append(cert)
    if not roots:
        raise ConfigError(
            "give the TSA's root CA certificate (a self-signed one)", field="tsa_cert"
        )
    return TsaTrust(tuple(roots), tuple(intermediates))


def checkpoint_body(note: str) -> str:
    """The checkpoint body of a signed note (what a token's imprint covers)."""
    body = note.split("\n\n", 1)[0] + "\n"
    Checkpoint.parse(body)
    return body


def _parse(response: bytes) -> Any:
    from .der import der_ordered  # TSAs that send their chain leave it unsorted

    try:
        return _rfc3161().decode_timestamp_response(der_ordered(response))
    except ValueError as exc:
        raise VerificationError(CHECK, f"not an RFC 3161 time-stamp response: {exc}") from None


def _iso(dt: Any) -> str:
    return format_time(dt)


def _signer_subject(resp: Any) -> str:
    infos = list(resp.signed_data.signer_infos)
    for der in resp.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if (
            infos
            and cert.issuer == infos[0].issuer
            and cert.serial_number == infos[0].serial_number
        ):
            return cert.subject.rfc4514_string()
    return "unknown TSA"


def verify_timestamp(
    response: bytes, data: bytes, trust: TsaTrust, *, nonce: int | None = None
) -> TimestampInfo:
    """Check a time-stamp response over ``data``; raise ``VerificationError("timestamp")``."""
    lib = _rfc3161()
    resp = _parse(response)
    if resp.status not in (0, 1):
        text = "; ".join(resp.status_string) or "no reason given"
        raise VerificationError(
            CHECK, f"the TSA refused the request (status {resp.status}: {text})"
        )
    imprint = resp.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256_OID:
        raise VerificationError(
            CHECK, f"token hashes with {imprint.hash_algorithm.dotted_string}, not SHA-256"
        )
    want = hashlib.sha256(data).digest()
    if imprint.message != want:
        raise VerificationError(
            CHECK,
            f"the timestamp token is for other data (imprint {imprint.message.hex()[:16]}..., "
            f"this checkpoint hashes to {want.hex()[:16]}...)",
        )
    builder = lib.VerifierBuilder(
        roots=list(trust.roots), intermediates=list(trust.intermediates), nonce=nonce
    )
    try:
        builder.build().verify(resp, want)
    except lib.VerificationError as exc:
        raise VerificationError(CHECK, f"token does not verify: {exc}") from None
    info = resp.tst_info
    return TimestampInfo(
        gen_time=_iso(info.gen_time),
        tsa=_signer_subject(resp),
        serial=int(info.serial_number),
        policy=info.policy.dotted_string,
        latest=_iso(info.gen_time + _accuracy(info.accuracy)),
    )


def _accuracy(acc: Any) -> timedelta:
    """The TSA's stated accuracy; 1 s when it states none (genTime is often truncated)."""
    if acc is None:
        return timedelta(seconds=1)
    return timedelta(
        seconds=acc.seconds or 0, milliseconds=acc.millis or 0, microseconds=acc.micros or 0
    )


def request_timestamp(
    url: str, data: bytes, *, trust: TsaTrust | None = None, timeout: float = 10.0
) -> bytes:
    """Ask the TSA at ``url`` to stamp ``data``; return the DER response.

    The nonce and imprint are always checked; with ``trust`` the token is verified too.
    """
    lib = _rfc3161()
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{url!r}: want an http(s):// URL", field="tsa")
    request = (
        lib.TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(lib.HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    http_req = urllib.request.Request(
        url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http_req, timeout=timeout) as reply:
            body: bytes = reply.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise VerificationError(CHECK, f"TSA {url} answered HTTP {exc.code}") from None
    except OSError as exc:
        raise ConfigError(f"TSA {url} is unreachable: {exc}") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise VerificationError(CHECK, f"TSA {url} sent more than {MAX_RESPONSE_BYTES} bytes")
    resp = _parse(body)
    if resp.status not in (0, 1):
        text = "; ".join(resp.status_string) or "no reason given"
        raise VerificationError(CHECK, f"TSA {url} refused (status {resp.status}: {text})")
    if resp.tst_info.nonce != request.nonce:
        raise VerificationError(CHECK, f"TSA {url} answered another request (nonce differs)")
    if resp.tst_info.message_imprint.message != hashlib.sha256(data).digest():
        raise VerificationError(CHECK, f"TSA {url} stamped other data")
    if trust is not None:
        verify_timestamp(body, data, trust, nonce=request.nonce)
    return body


def timestamp_checkpoint(
    log: Log,
    url: str,
    archive: TrustArchive | None = None,
    *,
    checkpoint: StoredCheckpoint | None = None,
    trust: TsaTrust | None = None,
    timeout: float = 10.0,
) -> tuple[StoredTimestamp, TimestampInfo | None]:
    """Time-stamp a checkpoint (default: the latest) and keep the token in the archive."""
    cp = checkpoint or log.latest_checkpoint()
    if cp is None:
        raise ConfigError("the log is empty: nothing to time-stamp")
    open_checkpoint(cp.note, [log.log_verifier], origin=log.origin)
    body = checkpoint_body(cp.note)
    response = request_timestamp(url, body.encode(), trust=trust, timeout=timeout)
    info = verify_timestamp(response, body.encode(), trust) if trust is not None else None
    gen_time = info.gen_time if info else _iso(_parse(response).tst_info.gen_time)
    stamp = StoredTimestamp(cp.size, body, url, response, gen_time)
    own = archive is None
    arch = archive or TrustArchive.for_log(log)
    try:
        arch.add_timestamp(stamp)
    finally:
        if own:
            arch.close()
    return stamp, info


def verify_stored_timestamps(
    archive: TrustArchive, trust: TsaTrust, *, min_size: int = 0, origin: str | None = None
) -> list[tuple[StoredTimestamp, TimestampInfo | VerificationError]]:
    """Verify every archived token of checkpoints of at least ``min_size`` leaves."""
    out: list[tuple[StoredTimestamp, TimestampInfo | VerificationError]] = []
    for stamp in archive.timestamps(min_size=min_size):
        try:
            cp = Checkpoint.parse(stamp.body, origin=origin)
            if cp.size != stamp.size:
                raise VerificationError(
                    CHECK, f"token stored for size {stamp.size} covers size {cp.size}"
                )
            out.append((stamp, verify_timestamp(stamp.response, stamp.body.encode(), trust)))
        except VerificationError as exc:
            out.append((stamp, exc))
    return out
