"""Certificates for C2PA signing: development chains and checks of the user's own.

C2PA needs an X.509 v3 **end-entity** certificate issued by a CA (the chain sent
is leaf + CA), with keyUsage digitalSignature, an extendedKeyUsage C2PA accepts
(emailProtection here; anyExtendedKeyUsage is refused) and subject/authority key
identifiers; the CA has basicConstraints CA:true and keyCertSign. A development
chain made here is trusted only where its CA is given as a trust anchor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError

CertKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
CHAIN_FILE, KEY_FILE, CA_FILE = "chain.pem", "key.pem", "ca.pem"


@dataclass(frozen=True)
class DevCert:
    """A development signing chain: leaf + CA certificates, the leaf's key, the CA (anchor)."""

    chain_pem: bytes
    key_pem: bytes
    ca_pem: bytes


def _key(alg: str) -> CertKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"C2PA development keys are ES256 or Ed25519, not {alg!r}")


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _hash_for(key: CertKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def make_dev_cert(
    *,
    alg: str = "ES256",
    organization: str = "provmark development",
    common_name: str = "provmark dev signer",
    days: int = 365,
    not_before: datetime | None = None,
    ca_key: CertKey | None = None,
    signer_key: CertKey | None = None,
) -> DevCert:
    """A local CA and an end-entity certificate with the extensions C2PA requires."""
    start = (not_before or datetime.now(UTC)) - timedelta(minutes=5)
    end = start + timedelta(days=days)
    ca_key = ca_key or _key(alg)
    leaf_key = signer_key or _key(alg)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False, ca=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, _hash_for(ca_key))
    )
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True, ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, _hash_for(ca_key))
    )
    pem = serialization.Encoding.PEM
    return DevCert(
        chain_pem=leaf.public_bytes(pem) + ca.public_bytes(pem),
        key_pem=leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        ca_pem=ca.public_bytes(pem),
    )


def write_dev_cert(
    cert: DevCert, directory: str | os.PathLike[str], *, force: bool = False
) -> dict[str, Path]:
    """Write ``chain.pem``, ``key.pem`` (mode 0600) and ``ca.pem`` into ``directory``."""
    folder = Path(directory)
    paths = {"chain": folder / CHAIN_FILE, "key": folder / KEY_FILE, "ca": folder / CA_FILE}
    if not force and any(p.exists() for p in paths.values()):
        raise ConfigError(
            f"{folder} already holds a C2PA certificate", field="force", hint="force replaces it"
        )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths["chain"].write_bytes(cert.chain_pem)
    paths["ca"].write_bytes(cert.ca_pem)
    fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cert.key_pem)
    return paths


def default_dir(home: str | os.PathLike[str] | None = None) -> Path:
    from ..crypto.keystore import default_home

    return (Path(home) if home else default_home()) / "c2pa"


@dataclass(frozen=True)
class SigningMaterial:
    """A checked chain and key, and the C2PA algorithm name they sign with."""

    chain_pem: bytes
    key_pem: bytes
    alg: str  # ES256 | ES384 | ES512 | PS256 | Ed25519
    leaf: x509.Certificate


def _read(source: str | bytes | os.PathLike[str], what: str) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {os.fspath(source)}: {exc.strerror}") from None


def load_signing_material(
    chain: str | bytes | os.PathLike[str],
    key: str | bytes | os.PathLike[str],
    *,
    now: datetime | None = None,
) -> SigningMaterial:
    """Read and check a certificate chain (PEM, leaf first) and its private key (PEM).

    Refused with :class:`ConfigError`: no certificate, an expired or not yet valid
    leaf, a CA certificate as the leaf, a leaf without digitalSignature, a
    self-signed leaf (C2PA needs a CA-issued one), or a key that is not the leaf's.
    """
    chain_pem = _read(chain, "certificate chain")
    key_pem = _read(key, "private key")
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise ConfigError("the certificate chain is not PEM X.509 certificates") from None
    leaf = certs[0]
    now = now or datetime.now(UTC)
    subject = leaf.subject.rfc4514_string()
    if leaf.not_valid_after_utc < now:
        raise ConfigError(f"certificate {subject} expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    if leaf.not_valid_before_utc > now:
        raise ConfigError(
            f"certificate {subject} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}"
        )
    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise ConfigError(
                f"certificate {subject} is a CA; C2PA signs with an end-entity certificate"
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise ConfigError(f"certificate {subject} lacks keyUsage digitalSignature")
    except x509.ExtensionNotFound:
        pass
    if leaf.issuer == leaf.subject:
        raise ConfigError(f"certificate {subject} is self-signed; C2PA needs one issued by a CA")
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the private key is not an unencrypted PEM key: {exc}") from None
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError(f"the private key does not belong to certificate {subject}")
    return SigningMaterial(chain_pem=chain_pem, key_pem=key_pem, alg=_alg(private), leaf=leaf)


def _alg(key: object) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        names = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name in names:
            return names[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    raise ConfigError(f"C2PA cannot sign with a {type(key).__name__}")
