"""Make the offline-verification fixtures of the TypeScript tests with the Python library.

    python clients/typescript/scripts/make_fixtures.py      # writes test/fixtures/

Real bundles made by the provmark CLI (``provmark bundle``, ``provmark keys export``):
one record signed with Ed25519, one with ECDSA P-256 (after a key rotation), the
content each was made from, the key set a verifier pins and a consistency proof between
two checkpoints. The tests tamper with copies of them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import provmark

PARAMS = {"temperature": 0.25, "max_tokens": 64, "top_p": 0.95, "eps": 1e-7}
OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        with provmark.open(Path(tmp) / "fixtures.db", home=home) as pm:
            model = provmark.Model("acme/summarizer", version="3.2", provider="acme")
            tail = "the quarterly report shows growth. \u00e9\u2014\U0001f600"
            texts = [f"Summary number {i}: {tail}" for i in range(7)]
            ids = []
            for i, text in enumerate(texts[:4]):
                with pm.record(model=model, input=f"article {i}", params=PARAMS) as rec:
                    rec.set_output(text)
                    rec.set_usage(input_tokens=12, output_tokens=9)
                ids.append(rec.record_id)
            pm.flush()
            old = pm.latest_checkpoint()
            assert old is not None
            pm.rotate_keys("ES256")
            for i, text in enumerate(texts[4:], 4):
                with pm.record(model=model, input=f"article {i}", params={"seed": 7}) as rec:
                    rec.set_output(text)
                ids.append(rec.record_id)
            pm.flush()
            new = pm.latest_checkpoint()
            assert new is not None
            consistency = {
                "old_size": old.size,
                "old_root": base64.b64encode(old.root).decode(),
                "old_checkpoint": old.note,
                "new_size": new.size,
                "new_root": base64.b64encode(new.root).decode(),
                "new_checkpoint": new.note,
                "proof": [
                    base64.b64encode(p).decode() for p in pm.consistency_proof(old.size, new.size)
                ],
            }
            (OUT / "consistency.json").write_text(json.dumps(consistency, indent=2) + "\n")
        cli = [sys.executable, "-m", "provmark.cli"]
        where = ["--db", str(Path(tmp) / "fixtures.db"), "--home", str(home)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
        for name, index in (("ed25519", 2), ("es256", 5)):
            path = OUT / f"{name}.provmark.json"
            subprocess.run(
                [*cli, "bundle", ids[index], "-o", str(path), *where], env=env, check=True
            )
            provmark.verify_bundle(provmark.load_bundle(path))  # the Python verifier accepts it
            (OUT / f"{name}.txt").write_text(texts[index], encoding="utf-8")
        keyset = OUT / "keyset.json"
        subprocess.run([*cli, "keys", "export", "-o", str(keyset), *where], env=env, check=True)
    print(f"fixtures in {OUT}")


if __name__ == "__main__":
    main()
