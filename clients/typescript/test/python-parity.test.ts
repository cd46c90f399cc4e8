// The Python verifier (provmark.bundle.bundle_report) and this one must give the same
// answer, pass or the same failed check, on the same bundles: good ones and variants
// with one character changed or one member changed.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { verifyBundle, VerificationError } from '../src/verify.js';
import { fixtureText } from './helpers.js';

const PYTHON = process.env.PROVMARK_PYTHON ?? 'python3';
const PY_VERIFY = `
import json, sys
from provmark.bundle import bundle_report
out = []
for bundle in json.load(sys.stdin):
    try:
        report = bundle_report(bundle)
        failed = [c.name for c in report.checks if c.result == "fail"]
        out.append(failed[0] if failed else "ok")
    except Exception as exc:  # a bundle the Python verifier cannot even read
        out.append("error:" + type(exc).__name__)
print(json.dumps(out))
`;

async function ours(bundle: unknown): Promise<string> {
  try {
    await verifyBundle(bundle);
    return 'ok';
  } catch (err) {
    if (err instanceof VerificationError) return err.check;
    return `error:${(err as Error).name}`;
  }
}

function variants(name: string): unknown[] {
  const text = fixtureText(`${name}.provmark.json`);
  const out: unknown[] = [JSON.parse(text)];
  for (let i = 0; i < text.length; i += 5) {
    const changed = text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
    try {
      out.push(JSON.parse(changed));
    } catch {
      // not JSON: neither verifier gets it
    }
  }
  const b = () => JSON.parse(text);
  const edits: Array<(x: any) => void> = [
    (x) => delete x.log.tree_size,
    (x) => (x.log.tree_size = String(x.log.tree_size)),
    (x) => (x.unknown = 1),
    (x) => delete x.revocations,
    (x) => (x.key.not_after = '2020-01-01T00:00:00.000000Z'),
    (x) => (x.signature.alg = x.signature.alg === 'Ed25519' ? 'ES256' : 'Ed25519'),
    (x) => (x.log.proof = []),
    (x) => (x.log.index = -1),
    (x) => (x.media_type = 'application/json'),
  ];
  for (const edit of edits) {
    const x = b();
    edit(x);
    out.push(x);
  }
  return out;
}

for (const name of ['ed25519', 'es256']) {
  test(`${name}: the Python verifier and this one agree on every variant`, async () => {
    const all = variants(name);
    const python = JSON.parse(execFileSync(PYTHON, ['-c', PY_VERIFY], { input: JSON.stringify(all), encoding: 'utf8', maxBuffer: 1 << 26 })) as string[];
    const mine = [];
    for (const bundle of all) mine.push(await ours(bundle));
    assert.equal(mine[0], 'ok');
    const differ = mine.map((m, i) => [i, m, python[i]]).filter(([, m, p]) => m !== p);
    assert.deepEqual(differ, [], `variants where the answers differ: [index, ours, python]`);
  });
}
