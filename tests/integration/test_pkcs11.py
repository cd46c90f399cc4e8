"""HSM keys through PKCS#11 against SoftHSM2, a real token the tests initialise themselves.

SoftHSM reads SOFTHSM2_CONF once, when the module is first loaded in a process: this
module points it at its own token folder before anything loads the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import provmark
from provmark.bundle import verify_bundle
from provmark.crypto.keys import ED25519, ES256, key_id_for, load_public_key, verify_raw
from provmark.crypto.pkcs11 import Pkcs11KeyStore, Pkcs11Signer, Pkcs11Token, find_module
from provmark.errors import ConfigError, KeyStoreError
from provmark.log.note import open_checkpoint

PIN = "2468"
TOKENS = ("provmark", "signer", "lonely")


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    util = shutil.which("softhsm2-util")
    assert util, "SoftHSM2 is missing: apt-get install softhsm2"
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in TOKENS:
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "13579"],
            check=True,
            capture_output=True,
        )
    yield {"SOFTHSM2_CONF": str(conf), "module": find_module()}
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


def test_keys_are_made_in_the_token_and_never_leave_it(softhsm: dict[str, str]) -> None:
    import pkcs11

    token = Pkcs11Token(None, "signer", PIN)
    try:
        for alg in (ED25519, ES256):
            priv, _ = token.generate(f"k-{alg}", alg)
            signer = Pkcs11Signer(token, f"k-{alg}")
            assert signer.alg == alg
            public = load_public_key(signer.public_key_pem())
            assert signer.key_id == key_id_for(public)
            data = b"provmark record payload"
            sig = signer.sign(data)
            assert len(sig) == 64 and verify_raw(public, data, sig)
            assert not verify_raw(public, data + b"!", sig)
            a = pkcs11.Attribute
            assert priv[a.SENSITIVE] and priv[a.NEVER_EXTRACTABLE] and priv[a.ALWAYS_SENSITIVE]
            assert not priv[a.EXTRACTABLE] and priv[a.TOKEN]
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                priv[a.VALUE]
        with pytest.raises(KeyStoreError, match="already has a key"):
            token.generate(f"k-{ED25519}", ED25519)
        with pytest.raises(KeyStoreError, match="no key labelled"):
            Pkcs11Signer(token, "missing")
        with pytest.raises(ConfigError, match="unknown algorithm"):
            token.generate("k-rsa", "RS256")
    finally:
        token.close()


def test_provmark_signs_records_and_checkpoints_in_the_token(
    tmp_path: Path, softhsm: dict[str, str]
) -> None:
    keys_dir = tmp_path / "home" / "keys"
    ks = Pkcs11KeyStore(keys_dir, token_label="provmark", pin=PIN)
    try:
        with provmark.open(tmp_path / "hsm.db", keystore=ks, flush_interval=0.01) as pm:
            assert isinstance(pm.signer, Pkcs11Signer) and isinstance(
                pm.log.log_signer, Pkcs11Signer
            )

            @pm.capture(model=provmark.Model("acme/hsm", version="1"))
            def gen(prompt: str) -> str:
                return f"out {prompt}"

            outputs = [gen(f"p{i}") for i in range(20)]
            pm.flush()
            for out in outputs[:3]:
                checks = [c.name for c in pm.verify(out).checks]
                assert checks[:2] == ["output_hash", "record_signature"]
            cp = pm.latest_checkpoint()
            assert cp is not None and cp.size == 20
            open_checkpoint(cp.note, [pm.log_verifier], origin=pm.store.origin)
            # an offline bundle (its key attestation signed by the HSM log key) verifies
            record_id = pm.verify(outputs[0]).record_id
            bundle = pm.bundle(record_id)
            assert verify_bundle(json.loads(json.dumps(bundle))).record_id == record_id

            # rotation makes a new key on the token; old records still verify
            old = pm.signer.key_id
            new = pm.rotate_keys(ES256)
            assert new.alg == ES256 and pm.signer.key_id == new.key_id != old
            fresh = gen("after rotation")
            assert pm.verify(fresh).checks[1].detail.startswith("ES256 signature")
            assert pm.verify(outputs[5]).checks[1].detail.startswith("Ed25519 signature")
        # no private key material on disk: only the public key set and token labels
        assert not list(keys_dir.glob("*.pem"))
        labels = json.loads((keys_dir / "pkcs11.json").read_text())["labels"]
        assert labels == {"records": "provmark-records-2", "log": "provmark-log-1"}
    finally:
        ks.close()


def test_a_second_process_signs_with_the_same_token_keys(
    tmp_path: Path, softhsm: dict[str, str]
) -> None:
    home = tmp_path / "home"
    script = (
        "import provmark, sys\n"
        "from provmark.crypto.pkcs11 import Pkcs11KeyStore\n"
        "ks = Pkcs11KeyStore.from_env(sys.argv[1])\n"
        "with provmark.open(sys.argv[2], keystore=ks) as pm:\n"
        "    with pm.record(model=provmark.Model('m'), input='x') as r:\n"
        "        r.set_output(sys.argv[3])\n"
        "    pm.flush()\n"
        "    print(pm.signer.key_id, pm.verify(sys.argv[3]).checks[1].detail)\n"
        "ks.close()\n"
    )
    env = {
        **os.environ,
        "SOFTHSM2_CONF": softhsm["SOFTHSM2_CONF"],
        "PROVMARK_PKCS11_TOKEN": "lonely",
        "PROVMARK_PKCS11_PIN": PIN,
        "PROVMARK_PKCS11_ALG": ES256,
    }
    db = str(tmp_path / "two.db")
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(home), db, f"output {n}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for n in (1, 2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (r.stdout.split()[0] for r in runs)
    assert first == second, "the second process found the key the first made on the token"
    assert "ES256 signature" in runs[1].stdout

    bad = subprocess.run(
        [sys.executable, "-c", script, str(home), db, "x"],
        env={**env, "PROVMARK_PKCS11_PIN": "0000"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "wrong PIN" in bad.stderr


def test_bad_configuration(
    tmp_path: Path, softhsm: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no PKCS#11 token labelled 'nope'"):
        Pkcs11Token(None, "nope", PIN)
    with pytest.raises(ConfigError, match="no such file"):
        Pkcs11Token(str(tmp_path / "missing.so"), "provmark", PIN)
    for var in ("PROVMARK_PKCS11_TOKEN", "PROVMARK_PKCS11_PIN", "PROVMARK_PKCS11_PIN_FILE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="PROVMARK_PKCS11_TOKEN"):
        Pkcs11KeyStore.from_env(tmp_path)
    monkeypatch.setenv("PROVMARK_PKCS11_TOKEN", "provmark")
    with pytest.raises(ConfigError, match="PROVMARK_PKCS11_PIN"):
        Pkcs11KeyStore.from_env(tmp_path)


def test_checkpoint_only_mode(tmp_path: Path, softhsm: dict[str, str]) -> None:
    """The log key in the token, record keys on disk: for HSMs too slow per record."""
    from provmark.crypto.keys import LocalSigner

    ks = Pkcs11KeyStore(
        tmp_path / "keys", token_label="signer", pin=PIN, purposes=("log",), label_prefix="cp"
    )
    try:
        with provmark.open(tmp_path / "cp.db", keystore=ks, flush_interval=0.01) as pm:
            assert isinstance(pm.signer, LocalSigner) and isinstance(
                pm.log.log_signer, Pkcs11Signer
            )
            with pm.record(model=provmark.Model("m"), input="x") as rec:
                rec.set_output("checkpoint-only")
            assert pm.verify("checkpoint-only").checks[3].name == "checkpoint_signature"
        assert [p.name for p in (tmp_path / "keys").glob("*.pem")] == ["records.pem"]
    finally:
        ks.close()
    with pytest.raises(ConfigError, match="HSM key purposes"):
        Pkcs11KeyStore(tmp_path / "k2", token_label="signer", pin=PIN, purposes=("audit",))
