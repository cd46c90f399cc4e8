// Offline verification of real bundles made by the Python CLI (scripts/make_fixtures.py),
// and of tampered copies, which must all fail naming the check.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { b64decode, b64encode, jcs, sha256, toBytes } from '../src/encoding.js';
import { verifyConsistency, parseCheckpoint } from '../src/merkle.js';
import { verifyBundle, verifyCheckpoint, VerificationError, type CheckName } from '../src/verify.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fixture, fixtureText, FIXTURES, PACKAGE } from './helpers.js';

const ALL = ['output_hash', 'record_signature', 'key_validity', 'checkpoint_signature', 'inclusion_proof'];

async function fails(bundle: unknown, check: CheckName, options = {}): Promise<void> {
  await assert.rejects(verifyBundle(bundle, options), (err: unknown) => {
    assert.ok(err instanceof VerificationError, `not a VerificationError: ${String(err)}`);
    assert.equal(err.check, check, err.message);
    return true;
  });
}

/** Re-make the leaf hash after changing the record, so the later checks are reached. */
async function releaf(b: any): Promise<any> {
  const entry = `{"record":${jcs(b.record)},"signature":${jcs(b.signature)}}`;
  b.log.leaf_hash = b64encode(await sha256(new Uint8Array([0, ...toBytes(entry)])));
  return b;
}

for (const name of ['ed25519', 'es256']) {
  test(`${name}: a bundle from the Python CLI verifies with its content`, async () => {
    const bundle = fixture(`${name}.provmark.json`);
    const verified = await verifyBundle(bundle, { content: fixtureText(`${name}.txt`) });
    assert.deepEqual(verified.checks.map((c) => c.check), ALL);
    assert.equal(verified.record.record_id, bundle.record.record_id);
    assert.equal(verified.pinned, false);
    assert.equal(verified.checks[1].detail.split(' ')[0], name === 'ed25519' ? 'Ed25519' : 'ES256');
    const keyset = fixture('keyset.json');
    const pinned = await verifyBundle(bundle, { keys: keyset.keys, logKey: keyset.log_key });
    assert.equal(pinned.pinned, true);
  });

  test(`${name}: tampered copies fail, each naming its check`, async () => {
    const good = () => fixture(`${name}.provmark.json`);
    await fails(good(), 'output_hash', { content: fixtureText(`${name}.txt`) + ' ' });
    let b = good();
    b.record.model.name = 'acme/other';
    await fails(b, 'inclusion_proof'); // the leaf no longer matches the record
    await fails(await releaf(b), 'record_signature');
    b = good();
    b.signature.sig = b64encode(b64decode(b.signature.sig).map((x: number, i: number) => (i === 5 ? x ^ 1 : x)));
    await fails(await releaf(b), 'record_signature');
    b = good();
    b.key.not_before = '2020-01-01T00:00:00.000000Z';
    await fails(b, 'key_validity');
    b = good();
    b.record.generated_at = '2020-01-01T00:00:00.000000Z';
    await fails(await releaf(b), 'record_signature');
    b = good();
    b.log.checkpoint = b.log.checkpoint.replace(/\n(\d+)\n/, (_: string, n: string) => `\n${Number(n) + 1}\n`);
    await fails(b, 'checkpoint_signature');
    b = good();
    b.log.proof[0] = b64encode(new Uint8Array(32));
    await fails(b, 'inclusion_proof');
    b = good();
    b.log.index += 1;
    await fails(b, 'inclusion_proof');
    b = good();
    b.log.tree_size += 1;
    await fails(b, 'bundle_format');
    b = good();
    b.log.extra = 1;
    await fails(b, 'bundle_format');
    b = good();
    b.log.leaf_hash = b.log.leaf_hash.replace(/=$/, '');
    await fails(b, 'bundle_format');
    const other = fixture(`${name === 'ed25519' ? 'es256' : 'ed25519'}.provmark.json`);
    b = good();
    b.public_key = other.public_key;
    await fails(b, 'record_signature'); // not the key its id names (as the Python verifier says)
    b = good();
    await fails(b, 'record_signature', { keys: [other.key && { ...other.key, public_key: other.public_key }], logKey: b.log.log_key });
    b = good();
    b.log.log_key = b.log.log_key.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
    await fails(b, 'checkpoint_signature');
  });
}

test('every single changed character of a bundle file fails', async () => {
  const text = fixtureText('ed25519.provmark.json');
  let checked = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    const changed = text.slice(0, i) + String.fromCharCode(code ^ 1) + text.slice(i + 1);
    let bundle: unknown;
    try {
      bundle = JSON.parse(changed);
    } catch {
      continue; // not JSON any more: no verifier would get that far
    }
    await assert.rejects(verifyBundle(bundle), VerificationError, `position ${i} (${JSON.stringify(text[i])})`);
    checked += 1;
  }
  assert.ok(checked > text.length / 2, `only ${checked} of ${text.length} variants parsed`);
});

test('checkpoints and consistency between two of them', async () => {
  const c = fixture('consistency.json');
  const { log_key: logKey, origin } = fixture('keyset.json');
  const old = await verifyCheckpoint(c.old_checkpoint, logKey);
  const cur = await verifyCheckpoint(c.new_checkpoint, logKey, origin);
  assert.equal(old.size, c.old_size);
  assert.equal(b64encode(cur.root), c.new_root);
  const proof = c.proof.map(b64decode);
  assert.equal((await verifyConsistency(old.size, cur.size, proof, old.root, cur.root)).ok, true);
  const bad = [...proof];
  bad[0] = new Uint8Array(32);
  assert.equal((await verifyConsistency(old.size, cur.size, bad, old.root, cur.root)).ok, false);
  // the ES256 bundle's checkpoint is the newer one: pin the older as trusted
  const bundle = fixture('es256.provmark.json');
  assert.equal(parseCheckpoint(bundle.log.checkpoint).size, c.new_size);
  const verified = await verifyBundle(bundle, { trustedCheckpoint: { size: old.size, root: old.root, proof } });
  assert.equal(verified.checks.at(-1)?.check, 'consistency');
  await fails(bundle, 'consistency', { trustedCheckpoint: { size: old.size, root: cur.root, proof } });
  await assert.rejects(verifyCheckpoint(c.old_checkpoint.replace(origin, `${origin}x`), logKey), VerificationError);
  await assert.rejects(verifyCheckpoint(c.old_checkpoint, logKey, 'another.origin'), /origin/);
});

test('the provmark-verify command: exit 0 verified, 1 not, 2 usage', () => {
  const cli = join(PACKAGE, 'dist', 'src', 'cli.js');
  const out = execFileSync(process.execPath, [cli, join(FIXTURES, 'ed25519.txt'), '--bundle', join(FIXTURES, 'ed25519.provmark.json'), '--keyset', join(FIXTURES, 'keyset.json')], { encoding: 'utf8' });
  assert.match(out, /PASS  output_hash/);
  assert.match(out, /VERIFIED record [0-9a-f-]{36}\n/);
  const wrong = spawnSync(process.execPath, [cli, join(FIXTURES, 'es256.txt'), '--bundle', join(FIXTURES, 'ed25519.provmark.json')], { encoding: 'utf8' });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stdout, /FAIL  output_hash/);
  assert.equal(spawnSync(process.execPath, [cli, 'x'], { encoding: 'utf8' }).status, 2);
});
