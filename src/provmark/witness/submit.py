"""The log side: send checkpoints to witnesses and keep their cosignatures.

A witnesses file lists one witness per line, its C2SP vkey and, for submitting,
its URL; ``#`` starts a comment::

    # name+keyid+base64(0x04 || Ed25519 key)          submission URL
    witness.example/w1+1a2b3c4d+BPm...=                http://127.0.0.1:7380

Verifiers use the same file (the URLs are then ignored) with ``--min K``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, VerificationError
from ..log.note import open_checkpoint, parse_note
from ..store.base import StoredCheckpoint
from .archive import TrustArchive
from .cosignature import Cosignature, CosignerKey, add_cosignatures, open_cosignatures
from .http import WitnessClient
from .service import WitnessRefusal

if TYPE_CHECKING:
    from ..log.service import Log

__all__ = [
    "WitnessEndpoint",
    "WitnessGroup",
    "WitnessReport",
    "load_witnesses",
    "parse_witnesses",
    "witness_checkpoint",
]


@dataclass(frozen=True)
class WitnessEndpoint:
    key: CosignerKey
    url: str | None = None


def parse_witnesses(text: str, source: str = "witnesses") -> list[WitnessEndpoint]:
    out: list[WitnessEndpoint] = []
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2:
            raise ConfigError(f"{source}:{n}: want '<vkey> [url]', got {len(parts)} fields")
        try:
            key = CosignerKey.parse(parts[0])
        except ConfigError as exc:
            raise ConfigError(f"{source}:{n}: {exc}") from None
        if key.vkey() in seen:
            raise ConfigError(f"{source}:{n}: witness {key.name} is listed twice")
        seen.add(key.vkey())
        url = parts[1] if len(parts) == 2 else None
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}:{n}: URL {url!r} must start with http:// or https://")
        out.append(WitnessEndpoint(key, url))
    if not out:
        raise ConfigError(f"{source}: no witness keys in it")
    return out


def load_witnesses(path: str | Path) -> list[WitnessEndpoint]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}", field="witnesses") from None
    return parse_witnesses(text, str(path))


@dataclass
class WitnessReport:
    """What one round of witnessing gave: the merged note and who signed or refused."""

    size: int
    note: str
    cosigned: list[Cosignature] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # witness name -> reason


class WitnessGroup:
    """Keep-alive clients for a set of witnesses; asks them all in parallel."""

    def __init__(self, witnesses: Sequence[WitnessEndpoint], *, timeout: float = 10.0) -> None:
        missing = [w.key.name for w in witnesses if not w.url]
        if missing:
            raise ConfigError(f"witnesses without a URL cannot be asked: {', '.join(missing)}")
        if not witnesses:
            raise ConfigError("no witnesses to ask")
        self.witnesses = list(witnesses)
        self._clients = {
            w.key.vkey(): WitnessClient(w.url or "", timeout=timeout) for w in witnesses
        }
        self._pool = ThreadPoolExecutor(max_workers=len(witnesses), thread_name_prefix="witness")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> WitnessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def witness(
        self,
        log: Log,
        archive: TrustArchive,
        checkpoint: StoredCheckpoint | None = None,
    ) -> WitnessReport:
        """Ask every witness to cosign ``checkpoint`` (default: the latest); archive the result."""
        cp = checkpoint or log.latest_checkpoint()
        if cp is None:
            raise ConfigError("the log is empty: nothing to witness")
        open_checkpoint(cp.note, [log.log_verifier], origin=log.origin)
        report = WitnessReport(cp.size, cp.note)
        olds = {w.key.vkey(): archive.witness_size(w.key.vkey()) for w in self.witnesses}
        asked: dict[str, tuple[int, list[bytes]]] = {}
        for w in self.witnesses:
            old = olds[w.key.vkey()]
            if old > cp.size:
                report.refused[w.key.name] = f"already cosigned a larger tree ({old} > {cp.size})"
                continue
            asked[w.key.vkey()] = (old, log.consistency_proof(old, cp.size))
        answers = self._ask(asked, cp.note)
        retry: dict[str, tuple[int, list[bytes]]] = {}
        for w in self.witnesses:
            result = answers.get(w.key.vkey())
            if (
                isinstance(result, WitnessRefusal)
                and result.status == 409
                and result.size is not None
                and result.size <= cp.size  # our record of its size was stale: once more
            ):
                retry[w.key.vkey()] = (result.size, log.consistency_proof(result.size, cp.size))
        answers.update(self._ask(retry, cp.note))
        lines = []
        for w in self.witnesses:
            result = answers.get(w.key.vkey())
            if result is None:
                continue
            if isinstance(result, Exception):
                report.refused[w.key.name] = _reason(result)
                continue
            try:
                _, sigs = parse_note(cp.note + result)
                mine = [s for s in sigs if (s.name, s.key_id) == (w.key.name, w.key.key_id)]
                _, valid = open_cosignatures(add_cosignatures(cp.note, mine), [w.key])
            except VerificationError as exc:
                report.refused[w.key.name] = f"bad answer: {exc.detail}"
                continue
            if not valid:
                report.refused[w.key.name] = "answer has no cosignature by its key"
                continue
            lines.extend(mine)
            report.cosigned.extend(valid)
            archive.set_witness_size(w.key.vkey(), cp.size)
        report.note = archive.merge(cp.size, add_cosignatures(cp.note, lines))
        return report

    def _ask(
        self, asked: dict[str, tuple[int, list[bytes]]], note: str
    ) -> dict[str, str | Exception]:
        futures = {
            vkey: self._pool.submit(self._clients[vkey].add_checkpoint, old, proof, note)
            for vkey, (old, proof) in asked.items()
        }
        out: dict[str, str | Exception] = {}
        for vkey, fut in futures.items():
            try:
                out[vkey] = fut.result()
            except (WitnessRefusal, OSError) as exc:
                out[vkey] = exc
        return out


def _reason(exc: Exception) -> str:
    if isinstance(exc, WitnessRefusal):
        return f"{exc.status}: {exc.reason}"
    return f"unreachable: {exc}"


def witness_checkpoint(
    log: Log,
    witnesses: Sequence[WitnessEndpoint],
    archive: TrustArchive | None = None,
    *,
    checkpoint: StoredCheckpoint | None = None,
    timeout: float = 10.0,
) -> WitnessReport:
    """One round: ask each witness to cosign the latest checkpoint; archive what comes back."""
    own = archive is None
    arch = archive or TrustArchive.for_log(log)
    try:
        with WitnessGroup(witnesses, timeout=timeout) as group:
            return group.witness(log, arch, checkpoint)
    finally:
        if own:
            arch.close()
