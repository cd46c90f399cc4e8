"""Signing keys held in an HSM through PKCS#11 (python-pkcs11); they never leave the token.

Keys are generated on the token (``CKA_TOKEN``, ``CKA_SENSITIVE``, not
``CKA_EXTRACTABLE``) and found again by label. Ed25519 signs with ``CKM_EDDSA``
(raw 64-byte signatures); P-256 signs a SHA-256 digest computed here with
``CKM_ECDSA``, which returns ``r || s``: both are the raw formats of
:mod:`provmark.crypto.keys`, so records and checkpoints signed in the token verify
exactly like file-key ones.

PKCS#11 logs in once per application and token, and closing a logged-in session
logs every session of the process out: one :class:`Pkcs11Token` (one session,
one lock) is shared by all the signers of a token, and :class:`Pkcs11KeyStore`
keeps it for its lifetime.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ..errors import ConfigError, KeyStoreError
from ..record import now_utc
from .keys import ED25519, ES256, PublicKey, Signer, key_id_for, public_pem
from .keystore import PURPOSES, FileKeyStore

__all__ = ["DEFAULT_MODULES", "Pkcs11KeyStore", "Pkcs11Signer", "Pkcs11Token", "find_module"]

DEFAULT_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
_ED25519_OID = "1.3.101.112"
_P256_OID = "1.2.840.10045.3.1.7"


def _lib() -> Any:
    try:
        import pkcs11
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(
            f"HSM keys need the python-pkcs11 package (pip install python-pkcs11): {exc}"
        ) from None
    return pkcs11


def find_module(module: str | None = None) -> str:
    """The PKCS#11 module to load: ``module``, ``$PROVMARK_PKCS11_MODULE`` or SoftHSM2's."""
    chosen = module or os.environ.get("PROVMARK_PKCS11_MODULE")
    if chosen:
        if not Path(chosen).is_file():
            raise ConfigError(f"PKCS#11 module {chosen}: no such file")
        return chosen
    for path in DEFAULT_MODULES:
        if Path(path).is_file():
            return path
    raise ConfigError(
        "no PKCS#11 module: set PROVMARK_PKCS11_MODULE (SoftHSM2 is the softhsm2 package)"
    )


class Pkcs11Token:
    """One logged-in session on one token; every signer of the token shares it."""

    def __init__(self, module: str | None, token_label: str, pin: str) -> None:
        p11 = _lib()
        self.module = find_module(module)
        self.label = token_label
        try:
            lib = p11.lib(self.module)
        except p11.exceptions.PKCS11Error as exc:
            raise ConfigError(f"cannot load PKCS#11 module {self.module}: {exc!r}") from None
        try:
            self._token = lib.get_token(token_label=token_label)
        except p11.exceptions.NoSuchToken:
            raise ConfigError(f"no PKCS#11 token labelled {token_label!r}") from None
        try:
            self._session = self._token.open(rw=True, user_pin=pin)
        except p11.exceptions.UserAlreadyLoggedIn:  # another object of this process logged in
            self._session = self._token.open(rw=True)
        except p11.exceptions.PinIncorrect:
            raise KeyStoreError(f"token {token_label!r}: wrong PIN") from None
        except p11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(f"token {token_label!r}: cannot log in ({exc!r})") from None
        self._mechanisms = set(self._token.slot.get_mechanisms())
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self._session.close()

    def __repr__(self) -> str:
        return f"Pkcs11Token({self.label!r}, module={self.module!r})"

    def supports(self, alg: str) -> bool:
        m = _lib().Mechanism
        return (m.EDDSA if alg == ED25519 else m.ECDSA) in self._mechanisms

    def find(self, label: str) -> tuple[Any, Any] | None:
        p11 = _lib()
        with self.lock:
            try:
                priv = self._session.get_key(object_class=p11.ObjectClass.PRIVATE_KEY, label=label)
                pub = self._session.get_key(object_class=p11.ObjectClass.PUBLIC_KEY, label=label)
            except p11.exceptions.NoSuchKey:
                return None
            except p11.exceptions.MultipleObjectsReturned:
                raise KeyStoreError(
                    f"token {self.label!r}: several keys labelled {label!r}"
                ) from None
        return priv, pub

    def generate(self, label: str, alg: str) -> tuple[Any, Any]:
        """A new key pair on the token; the private half is sensitive and unextractable."""
        p11 = _lib()
        from pkcs11.util.ec import encode_named_curve_parameters

        if alg not in (ED25519, ES256):
            raise ConfigError(f"unknown algorithm {alg!r}; choose Ed25519 or ES256")
        if not self.supports(alg):
            raise ConfigError(f"token {self.label!r} does not support {alg}; try the other one")
        if self.find(label) is not None:
            raise KeyStoreError(f"token {self.label!r} already has a key labelled {label!r}")
        a = p11.Attribute
        key_type = p11.KeyType.EC_EDWARDS if alg == ED25519 else p11.KeyType.EC
        params = encode_named_curve_parameters(_ED25519_OID if alg == ED25519 else _P256_OID)
        with self.lock:
            pub, priv = self._session.generate_keypair(
                key_type,
                store=True,
                label=label,
                public_template={a.EC_PARAMS: params, a.VERIFY: True},
                private_template={
                    a.SENSITIVE: True,
                    a.EXTRACTABLE: False,
                    a.PRIVATE: True,
                    a.SIGN: True,
                },
            )
        return priv, pub

    def destroy(self, label: str) -> None:
        found = self.find(label)
        if found is not None:
            with self.lock:
                for obj in found:
                    obj.destroy()


def _der_octets(data: bytes) -> bytes:
    """Unwrap a DER OCTET STRING (tokens differ on whether CKA_EC_POINT is wrapped)."""
    if len(data) > 2 and data[0] == 0x04:
        length = data[1]
        if length < 0x80 and length == len(data) - 2:
            return data[2:]
        if length == 0x81 and len(data) > 3 and data[2] == len(data) - 3:
            return data[3:]
    return data


class Pkcs11Signer:
    """A :class:`~provmark.crypto.keys.Signer` whose private key stays on the token."""

    def __init__(self, token: Pkcs11Token, label: str) -> None:
        p11 = _lib()
        found = token.find(label)
        if found is None:
            raise KeyStoreError(f"token {token.label!r} has no key labelled {label!r}")
        self._token = token
        self.label = label
        self._priv, pub = found
        with token.lock:
            key_type = self._priv.key_type
            point = _der_octets(bytes(pub[p11.Attribute.EC_POINT]))
        if key_type == p11.KeyType.EC_EDWARDS:
            if len(point) != 32:
                raise KeyStoreError(f"key {label!r}: Ed25519 point has {len(point)} bytes")
            self._public: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey = (
                ed25519.Ed25519PublicKey.from_public_bytes(point)
            )
            self._alg = ED25519
            self._mechanism = p11.Mechanism.EDDSA
        elif key_type == p11.KeyType.EC:
            self._public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            self._alg = ES256
            self._mechanism = p11.Mechanism.ECDSA
        else:
            raise KeyStoreError(f"key {label!r} is {key_type}; use Ed25519 or P-256")
        self._key_id = key_id_for(self._public)

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, data: bytes) -> bytes:
        message = data if self._alg == ED25519 else hashlib.sha256(data).digest()
        with self._token.lock:
            sig: bytes = self._priv.sign(message, mechanism=self._mechanism)
        return sig

    def public_key(self) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
        return self._public

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def __repr__(self) -> str:
        return f"Pkcs11Signer(alg={self._alg!r}, key_id={self._key_id!r}, label={self.label!r})"


class Pkcs11KeyStore(FileKeyStore):
    """Record and log keys on a PKCS#11 token; key set and secrets in ``directory``.

    ``directory/pkcs11.json`` remembers the token label of each purpose's current
    key. Keys are created on the token on first use; :meth:`rotate` makes a new one
    and keeps the old on the token unless ``destroy_old``. ``purposes=("log",)`` is the
    checkpoint-only mode: the log key in the token, the record key a file key.
    """

    def __init__(
        self,
        directory: str | Path | None,
        *,
        token_label: str,
        pin: str,
        module: str | None = None,
        alg: str = ED25519,
        label_prefix: str = "provmark",
        destroy_old: bool = False,
        purposes: tuple[str, ...] = PURPOSES,
    ) -> None:
        super().__init__(directory, alg=alg)
        unknown = set(purposes) - set(PURPOSES)
        if unknown or not purposes:
            raise ConfigError(f"HSM key purposes {purposes!r}: choose from {', '.join(PURPOSES)}")
        self.purposes = tuple(purposes)
        self.token = Pkcs11Token(module, token_label, pin)
        self.label_prefix = label_prefix
        self.destroy_old = destroy_old
        self._hsm_signers: dict[str, Pkcs11Signer] = {}

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Pkcs11KeyStore:
        """From ``PROVMARK_PKCS11_TOKEN``, ``PROVMARK_PKCS11_PIN`` (or ``_PIN_FILE``),
        ``PROVMARK_PKCS11_MODULE``, ``PROVMARK_PKCS11_ALG`` and ``PROVMARK_PKCS11_PURPOSES``
        (comma-separated, default ``records,log``)."""
        env = os.environ
        token = env.get("PROVMARK_PKCS11_TOKEN")
        if not token:
            raise ConfigError("PROVMARK_PKCS11_TOKEN (the token label) is not set")
        pin = env.get("PROVMARK_PKCS11_PIN")
        if pin is None and env.get("PROVMARK_PKCS11_PIN_FILE"):
            pin = Path(env["PROVMARK_PKCS11_PIN_FILE"]).read_text().strip()
        if pin is None:
            raise ConfigError("PROVMARK_PKCS11_PIN or PROVMARK_PKCS11_PIN_FILE is not set")
        directory = Path(home) / "keys" if home else None
        return cls(
            directory,
            token_label=token,
            pin=pin,
            module=env.get("PROVMARK_PKCS11_MODULE"),
            alg=env.get("PROVMARK_PKCS11_ALG", ED25519),
            purposes=tuple(
                p.strip() for p in env.get("PROVMARK_PKCS11_PURPOSES", "records,log").split(",")
            ),
        )

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({str(self.directory)!r}, token={self.token.label!r})"

    def close(self) -> None:
        self.token.close()

    # -- labels of current keys
    def _labels_path(self) -> Path:
        return self.directory / "pkcs11.json"

    def _labels(self) -> dict[str, str]:
        path = self._labels_path()
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"{path}: unreadable ({exc})") from None
        return {str(k): str(v) for k, v in data.get("labels", {}).items()}

    def _save_labels(self, labels: dict[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._labels_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"token": self.token.label, "labels": labels}, indent=2) + "\n")
        os.replace(tmp, path)

    # -- KeyStore
    def signer(self, purpose: str = "records") -> Signer:
        if purpose not in PURPOSES:
            raise ConfigError(f"unknown key purpose {purpose!r}; one of {', '.join(PURPOSES)}")
        if purpose not in self.purposes:
            return super().signer(purpose)
        with self._lock:
            cached = self._hsm_signers.get(purpose)
            if cached is not None:
                return cached
            labels = self._labels()
            label = labels.get(purpose)
            if label is None or self.token.find(label) is None:
                label = self._new_label(purpose, labels)
                self.token.generate(label, self.alg if purpose == "records" else ED25519)
                labels[purpose] = label
                self._save_labels(labels)
                signer = Pkcs11Signer(self.token, label)
                self._publish(signer, purpose, now_utc())
            else:
                signer = Pkcs11Signer(self.token, label)
                self._publish(signer, purpose, "")
            if purpose == "log" and signer.alg != ED25519:
                raise KeyStoreError(f"log key {label!r} must be Ed25519 (C2SP signed notes)")
            self._hsm_signers[purpose] = signer
            return signer

    def _new_label(self, purpose: str, labels: dict[str, str]) -> str:
        n = 1
        while True:
            label = f"{self.label_prefix}-{purpose}-{n}"
            if label != labels.get(purpose) and self.token.find(label) is None:
                return label
            n += 1

    def _publish(self, signer: Pkcs11Signer, purpose: str, since: str) -> None:
        keys = self._read_keyset()
        if any(k.key_id == signer.key_id for k in keys):
            return
        keys.append(
            PublicKey(
                key_id=signer.key_id,
                alg=signer.alg,
                public_key=signer.public_key_pem(),
                not_before=since or "1970-01-01T00:00:00.000000Z",
                purpose=purpose,
            )
        )
        self._write_keyset(keys)

    def rotate(self, purpose: str = "records", alg: str | None = None) -> PublicKey:
        if purpose not in PURPOSES:
            raise ConfigError(f"unknown key purpose {purpose!r}; one of {', '.join(PURPOSES)}")
        if purpose not in self.purposes:
            return super().rotate(purpose, alg)
        self.signer(purpose)
        with self._lock:
            now = now_utc()
            keys = [
                PublicKey(**{**k.to_json(), "not_after": now})
                if k.purpose == purpose and k.not_after is None
                else k
                for k in self._read_keyset()
            ]
            self._write_keyset(keys)
            labels = self._labels()
            old = labels.get(purpose)
            label = self._new_label(purpose, labels)
            chosen = alg or (self.alg if purpose == "records" else ED25519)
            self.token.generate(label, chosen)
            labels[purpose] = label
            self._save_labels(labels)
            if old and self.destroy_old:
                self.token.destroy(old)
            signer = Pkcs11Signer(self.token, label)
            self._publish(signer, purpose, now)
            self._hsm_signers[purpose] = signer
            return next(k for k in self._read_keyset() if k.key_id == signer.key_id)
