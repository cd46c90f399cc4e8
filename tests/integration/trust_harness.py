"""Real outside parties for the trust tests: witness processes and an `openssl ts` TSA.

Both listen on 127.0.0.1 only and are stopped by the tests that start them.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def cli(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``provmark ...`` as a user runs it, in a new process."""
    done = subprocess.run(
        [sys.executable, "-m", "provmark.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"provmark {' '.join(argv)} -> {done.returncode}: {done.stderr}")
    return done


@dataclass
class WitnessProcess:
    name: str
    folder: Path
    url: str
    vkey: str
    proc: subprocess.Popen[str]

    def line(self) -> str:
        return f"{self.vkey} {self.url}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_witness(folder: Path, name: str, log_key: str) -> WitnessProcess:
    """`provmark witness init/add-log/serve` in its own folder and process."""
    from provmark.cli import main

    assert main(["witness", "init", str(folder), "--name", name]) == 0
    assert main(["witness", "add-log", str(folder), log_key]) == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "provmark.cli", "witness", "serve", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    vkey = proc.stdout.readline().strip()
    if " listening on " not in first:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"witness did not start: {first!r} {err}")
    return WitnessProcess(name, folder, first.rsplit(" ", 1)[1], vkey, proc)


# ---------------------------------------------------------------- a local TSA


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(folder: Path, cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def make_tsa_files(folder: Path, cn: str = "provmark test TSA", *, chain: bool = False) -> Path:
    """A root CA, a TSA certificate (critical id-kp-timeStamping) and an `openssl ts` config.

    ``chain``: the TSA sends its certificate chain (TSA certificate + root) in replies."""
    ca, ca_key = make_ca(folder, f"{cn} root")
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "tsa.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "serial").write_text("01\n")
    certs = ""
    if chain:
        (folder / "chain.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + ca.public_bytes(serialization.Encoding.PEM)
        )
        certs = f"certs = {folder}/chain.pem\n"
    config = folder / "tsa.cnf"
    config.write_text(
        f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {folder}
serial = {folder}/serial
crypto_device = builtin
signer_cert = {folder}/tsa.pem
signer_key = {folder}/tsa.key
{certs}signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
    )
    return folder


class _TsaHandler(BaseHTTPRequestHandler):
    server: _TsaServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests += 1
        if self.server.fail_with:
            self.send_response(self.server.fail_with)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        done = subprocess.run(
            [
                "openssl",
                "ts",
                "-reply",
                "-config",
                str(self.server.folder / "tsa.cnf"),
                "-queryfile",
                "/dev/stdin",
                "-out",
                "/dev/stdout",
            ],
            input=query,
            capture_output=True,
            timeout=30,
        )
        status = 200 if done.returncode == 0 else 500
        body = done.stdout if status == 200 else done.stderr
        self.send_response(status)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _TsaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests = 0
        self.fail_with = 0
        super().__init__(("127.0.0.1", 0), _TsaHandler)


class LocalTsa:
    """An RFC 3161 TSA over HTTP on 127.0.0.1 whose answers come from `openssl ts -reply`."""

    def __init__(self, folder: Path, *, chain: bool = False) -> None:
        assert shutil.which("openssl"), "the openssl command is missing: apt-get install openssl"
        self.folder = make_tsa_files(folder, chain=chain)
        self.ca = folder / "ca.pem"
        self._server = _TsaServer(folder)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsr"

    @property
    def requests(self) -> int:
        return self._server.requests

    def fail(self, status: int) -> None:
        self._server.fail_with = status

    def __enter__(self) -> LocalTsa:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
