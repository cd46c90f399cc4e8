// The package's checks are a port of the web UI's in-browser ones
// (src/provmark/web/static/merkle.js, browser_verify.js): run both on the same real
// inputs, good and tampered, and require the same answers.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { b64decode, b64encode, jcs, sha256, toBytes, concat } from '../src/encoding.js';
import { parseCheckpoint, verifyConsistency, verifyInclusion, openNote, parseVerifierKey } from '../src/merkle.js';
import { fixture, REPO } from './helpers.js';

const STATIC = join(REPO, 'src', 'provmark', 'web', 'static');
const load = (name: string): Promise<any> => import(pathToFileURL(join(STATIC, name)).href);

test('inclusion proofs: same answers as the web UI', async () => {
  const web = await load('merkle.js');
  for (const name of ['ed25519', 'es256']) {
    const b = fixture(`${name}.provmark.json`);
    const cp = parseCheckpoint(b.log.checkpoint);
    const leaf = b64decode(b.log.leaf_hash);
    const proof = b.log.proof.map(b64decode);
    const cases: Array<[number, number, Uint8Array, Uint8Array[]]> = [
      [b.log.index, cp.size, leaf, proof],
      [b.log.index + 1, cp.size, leaf, proof],
      [b.log.index, cp.size + 1, leaf, proof],
      [b.log.index, cp.size, new Uint8Array(32), proof],
      [b.log.index, cp.size, leaf, proof.slice(1)],
      [b.log.index, cp.size, leaf, [...proof, new Uint8Array(32)]],
    ];
    for (const [index, size, l, p] of cases) {
      const ours = await verifyInclusion(index, size, l, p, cp.root);
      const theirs = await web.verifyInclusion(index, size, l, p, cp.root);
      assert.deepEqual(ours, theirs, `index ${index} size ${size}`);
    }
  }
});

test('consistency proofs and signed notes: same answers as the web UI', async () => {
  const web = await load('merkle.js');
  const c = fixture('consistency.json');
  const { log_key: logKey } = fixture('keyset.json');
  const proof = c.proof.map(b64decode);
  const [r1, r2] = [b64decode(c.old_root), b64decode(c.new_root)];
  for (const [s1, s2, p, a, b] of [
    [c.old_size, c.new_size, proof, r1, r2],
    [c.old_size, c.new_size, proof.slice(1), r1, r2],
    [c.old_size, c.new_size, proof, r2, r2],
    [c.new_size, c.old_size, proof, r1, r2],
    [c.new_size, c.new_size, [], r2, r2],
  ] as Array<[number, number, Uint8Array[], Uint8Array, Uint8Array]>) {
    assert.deepEqual(await verifyConsistency(s1, s2, p, a, b), await web.verifyConsistency(s1, s2, p, a, b));
  }
  const key = await parseVerifierKey(logKey);
  for (const note of [c.old_checkpoint, c.new_checkpoint.replace('\n', 'x\n')]) {
    const ours = await openNote(note, key);
    const theirs = await web.verifyNote(note, logKey);
    assert.equal(ours.ok, theirs.ok);
  }
});

test('leaf hashes and RFC 8785 bytes: same as the web UI', async () => {
  const bv = await load('browser_verify.js');
  for (const name of ['ed25519', 'es256']) {
    const b = fixture(`${name}.provmark.json`);
    assert.equal(jcs(b.record), bv.jcs(b.record));
    const ours = await sha256(concat(Uint8Array.of(0), toBytes(`{"record":${jcs(b.record)},"signature":${jcs(b.signature)}}`)));
    assert.equal(b64encode(ours), b64encode(await bv.leafHash(jcs(b.record), b.signature)));
    assert.equal(b64encode(ours), b.log.leaf_hash);
  }
  for (const value of [{ b: 1e21, a: [1e-7, 0.1, -0, 'é\u2028\ud83d\ude00'] }, { '\u00e9': 1, e: 2, E: 3 }]) {
    assert.equal(jcs(value), bv.jcs(value));
  }
});
