"""Key stores: where private keys and the published public key set live.

* :class:`FileKeyStore` keeps PEM private keys (mode 0600, created on first use)
  and ``keyset.json`` (every public key ever used, with its validity window)
  in a folder, by default ``$PROVMARK_HOME/keys``.
* :class:`EnvKeyStore` reads keys from environment variables (containers,
  CI); it cannot rotate.

Key purposes: ``records`` signs records (Ed25519 or ES256), ``log`` signs
checkpoints (always Ed25519, as C2SP signed notes need). Secrets (HMAC and
master keys for redaction/encryption) come from :meth:`KeyStore.secret`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ..errors import ConfigError, KeyStoreError
from ..record import now_utc
from .keys import ED25519, LocalSigner, PrivateKey, PublicKey, Signer, generate_private_key

PURPOSES = ("records", "log")
EPOCH = "1970-01-01T00:00:00.000000Z"  # not_before of keys whose creation time is unknown


@runtime_checkable
class KeyStore(Protocol):
    def signer(self, purpose: str = "records") -> Signer:
        """The current signer for ``purpose``; created on first use where allowed."""
        ...

    def public_keys(self) -> list[PublicKey]:
        """Every public key this store has used, with validity windows."""
        ...

    def rotate(self, purpose: str = "records", alg: str | None = None) -> PublicKey:
        """Start a new key; the old one stays for verification with an end date."""
        ...

    def secret(self, name: str) -> bytes:
        """A 32-byte secret (e.g. the redaction HMAC key), created on first use."""
        ...


def default_home() -> Path:
    return Path(os.environ.get("PROVMARK_HOME") or Path.home() / ".provmark")


def home_of(keystore: object) -> Path:
    """The home folder of a key store kept in ``<home>/keys`` (else :func:`default_home`)."""
    directory = getattr(keystore, "directory", None)
    return Path(directory).parent if directory else default_home()


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: bytes, source: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(f"{source}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyStoreError(f"{source}: unsupported key type {type(key).__name__}")
    return key


class FileKeyStore:
    """Private keys as PEM files plus a ``keyset.json`` of public keys."""

    def __init__(
        self, directory: str | Path | None = None, *, alg: str = ED25519, create: bool = True
    ) -> None:
        """``create=False`` (read-only commands) never writes: a missing key or secret is
        a :class:`KeyStoreError` instead of being generated."""
        self.directory = Path(directory) if directory else default_home() / "keys"
        self.alg = alg
        self.create = create
        self._lock = threading.Lock()
        self._signers: dict[str, LocalSigner] = {}

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.directory)!r})"

    # -- key set
    def _keyset_path(self) -> Path:
        return self.directory / "keyset.json"

    def _read_keyset(self) -> list[PublicKey]:
        path = self._keyset_path()
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text())
            return [PublicKey.from_json(k) for k in data["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"{path}: unreadable key set ({exc})") from None

    def _write_keyset(self, keys: list[PublicKey]) -> None:
        body = json.dumps({"keys": [k.to_json() for k in keys]}, indent=2) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._keyset_path().with_suffix(".tmp")
        tmp.write_text(body)
        os.replace(tmp, self._keyset_path())

    def public_keys(self) -> list[PublicKey]:
        with self._lock:
            return self._read_keyset()

    # -- signers
    def _key_path(self, purpose: str) -> Path:
        return self.directory / f"{purpose}.pem"

    def signer(self, purpose: str = "records") -> Signer:
        if purpose not in PURPOSES:
            raise ConfigError(f"unknown key purpose {purpose!r}; one of {', '.join(PURPOSES)}")
        with self._lock:
            cached = self._signers.get(purpose)
            if cached is not None:
                return cached
            path = self._key_path(purpose)
            if path.exists():
                if path.stat().st_mode & 0o077:
                    raise KeyStoreError(f"{path}: private key is readable by others; chmod 600 it")
                signer = LocalSigner(load_private_key(path.read_bytes(), str(path)))
                if self.create:
                    self._ensure_published(signer, purpose)
            elif not self.create:
                raise KeyStoreError(f"no {purpose} key in {self.directory} (opened read-only)")
            else:
                signer = self._create(purpose, self.alg if purpose == "records" else ED25519)
            self._signers[purpose] = signer
            return signer

    def _ensure_published(self, signer: LocalSigner, purpose: str, since: str = "") -> None:
        keys = self._read_keyset()
        if not any(k.key_id == signer.key_id for k in keys):
            keys.append(_public(signer, purpose, since or EPOCH))
            self._write_keyset(keys)

    def _create(self, purpose: str, alg: str) -> LocalSigner:
        signer = LocalSigner(generate_private_key(alg))
        _write_private(self._key_path(purpose), _pem(signer.private_key))
        self._ensure_published(signer, purpose, now_utc())
        return signer

    def rotate(self, purpose: str = "records", alg: str | None = None) -> PublicKey:
        if purpose not in PURPOSES:
            raise ConfigError(f"unknown key purpose {purpose!r}; one of {', '.join(PURPOSES)}")
        self.signer(purpose)  # make sure a current key exists
        with self._lock:
            now = now_utc()
            keys = [
                PublicKey(**{**k.to_json(), "not_after": now})
                if k.purpose == purpose and k.not_after is None
                else k
                for k in self._read_keyset()
            ]
            self._write_keyset(keys)
            old = self._key_path(purpose)
            with contextlib.suppress(FileNotFoundError):
                old.unlink()  # the retired private key is no longer needed
            chosen = alg or (self.alg if purpose == "records" else ED25519)
            signer = self._create(purpose, chosen)
            self._signers[purpose] = signer
            return next(k for k in self._read_keyset() if k.key_id == signer.key_id)

    def secret(self, name: str) -> bytes:
        path = self.directory / f"{name}.secret"
        with self._lock:
            if not path.exists():
                if not self.create:
                    raise KeyStoreError(f"no {name} secret in {self.directory} (opened read-only)")
                _write_private(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
            return base64.b64decode(path.read_bytes().strip())


class VerifyOnlySigner:
    """The public half of a key whose private half is not here (a read-only open of a
    store from a home without keys): enough to verify, never signs."""

    def __init__(self, key: PublicKey) -> None:
        self._key = key

    @property
    def alg(self) -> str:
        return self._key.alg

    @property
    def key_id(self) -> str:
        return self._key.key_id

    def sign(self, data: bytes) -> bytes:
        raise KeyStoreError(f"no private key for {self._key.key_id} here (opened read-only)")

    def public_key_pem(self) -> str:
        return self._key.public_key


def existing_signer(keystore: KeyStore, stored: list[PublicKey], purpose: str) -> Signer:
    """``keystore``'s key for ``purpose`` if it has one (a read-only key store makes none),
    else the store's current public key of that purpose, as a :class:`VerifyOnlySigner`."""
    try:
        return keystore.signer(purpose)
    except KeyStoreError as exc:
        keys = sorted(
            (k for k in stored if k.purpose == purpose),
            key=lambda k: (k.not_after is None, k.not_before),
        )
        if not keys:
            raise KeyStoreError(f"{exc}; the store lists no {purpose} key either") from None
        return VerifyOnlySigner(keys[-1])


def _public(signer: Signer, purpose: str, not_before: str = EPOCH) -> PublicKey:
    from .keys import key_id_for, load_public_key

    pem = signer.public_key_pem()
    key = load_public_key(pem)
    if key_id_for(key) != signer.key_id:
        raise KeyStoreError(f"signer {signer.key_id}: key id does not match its public key")
    return PublicKey(
        key_id=signer.key_id,
        alg=signer.alg,
        public_key=pem,
        not_before=not_before,
        purpose=purpose,
    )


class EnvKeyStore:
    """Keys from environment variables (PEM text or a path to a PEM file).

    ``PROVMARK_SIGNING_KEY`` signs records, ``PROVMARK_LOG_KEY`` (Ed25519)
    signs checkpoints and defaults to the signing key when that is Ed25519;
    ``PROVMARK_SECRET_<NAME>`` holds base64 secrets.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._env = dict(os.environ if environ is None else environ)
        self._signers: dict[str, LocalSigner] = {}
        for purpose, var in (("records", "PROVMARK_SIGNING_KEY"), ("log", "PROVMARK_LOG_KEY")):
            value = self._env.get(var)
            if value:
                self._signers[purpose] = LocalSigner(load_private_key(_pem_or_path(value), var))
        if "records" not in self._signers:
            raise KeyStoreError("PROVMARK_SIGNING_KEY is not set")
        if "log" not in self._signers:
            if self._signers["records"].alg != ED25519:
                raise KeyStoreError("PROVMARK_LOG_KEY (Ed25519) is needed with an ES256 key")
            self._signers["log"] = self._signers["records"]

    def signer(self, purpose: str = "records") -> Signer:
        try:
            return self._signers[purpose]
        except KeyError:
            raise ConfigError(f"unknown key purpose {purpose!r}") from None

    def public_keys(self) -> list[PublicKey]:
        seen: dict[str, PublicKey] = {}
        for purpose, signer in self._signers.items():
            seen.setdefault(signer.key_id, _public(signer, purpose))
        return list(seen.values())

    def rotate(self, purpose: str = "records", alg: str | None = None) -> PublicKey:
        raise KeyStoreError("keys from the environment cannot be rotated here; set new ones")

    def secret(self, name: str) -> bytes:
        var = f"PROVMARK_SECRET_{name.upper()}"
        value = self._env.get(var)
        if not value:
            raise KeyStoreError(f"{var} is not set")
        return base64.b64decode(value)


def _pem_or_path(value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {value}: {exc.strerror}") from None
