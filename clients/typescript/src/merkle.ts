// RFC 9162 inclusion and consistency proofs, C2SP signed notes and checkpoints.
// A port of the web UI's src/provmark/web/static/merkle.js (the same algorithms and
// reasons); test/webui-parity.test.ts runs both on the same inputs.

import { b64decode, b64decodeStrict, b64encode, bs, concat, equalBytes, sha256, toBytes } from './encoding.js';

export interface Outcome {
  ok: boolean;
  reason: string;
}

const nodeHash = (left: Uint8Array, right: Uint8Array) => sha256(concat(Uint8Array.of(1), left, right));

/** SHA-256(0x00 || entry): an RFC 9162 leaf hash. */
export const leafHashOf = (entry: Uint8Array) => sha256(concat(Uint8Array.of(0), entry));

function isPowerOfTwo(n: number): boolean {
  let v = n;
  while (v > 1) {
    if (v % 2) return false;
    v /= 2;
  }
  return v === 1;
}

/** RFC 9162 section 2.1.3.2. Sizes are plain numbers (< 2^53). */
export async function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): Promise<Outcome> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    return { ok: false, reason: `index ${index} is outside a tree of size ${size}` };
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return { ok: false, reason: 'the proof is longer than the tree is deep' };
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'the proof is too short for the tree size' };
  if (!equalBytes(r, root)) return { ok: false, reason: `computed root ${b64encode(r)} differs from the checkpoint root` };
  return { ok: true, reason: `leaf ${index} hashes up to the root of the tree of size ${size}` };
}

/** RFC 9162 section 2.1.4.2. */
export async function verifyConsistency(
  size1: number,
  size2: number,
  proof: Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): Promise<Outcome> {
  if (size1 > size2) return { ok: false, reason: `old size ${size1} is larger than new size ${size2}` };
  if (size1 === size2) {
    if (proof.length) return { ok: false, reason: 'equal sizes need an empty proof' };
    return equalBytes(root1, root2)
      ? { ok: true, reason: 'same size and same root' }
      : { ok: false, reason: 'same size but different roots: the log was rewritten' };
  }
  if (size1 === 0) return { ok: true, reason: 'every tree extends the empty tree' };
  if (!proof.length) return { ok: false, reason: 'the proof is empty' };
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return { ok: false, reason: 'the proof is longer than needed' };
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'the proof is too short' };
  if (!equalBytes(fr, root1)) return { ok: false, reason: `the proof does not lead to the old root (size ${size1})` };
  if (!equalBytes(sr, root2)) return { ok: false, reason: `the proof does not lead to the new root (size ${size2})` };
  return { ok: true, reason: `the tree of size ${size2} extends the tree of size ${size1}: nothing was removed or changed` };
}

// ------------------------------------------------------------------ signed notes (C2SP)

export interface NoteSignature {
  name: string;
  keyId: number;
  sig: Uint8Array;
}

export interface SignedNote {
  body: string;
  signatures: NoteSignature[];
}

export interface Checkpoint extends SignedNote {
  origin: string;
  size: number;
  root: Uint8Array;
}

/** A C2SP signed note: the body (ending in a newline), a blank line, signature lines. */
export function parseNote(note: string): SignedNote {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('not a signed note: no blank line before the signatures');
  if (!note.endsWith('\n')) throw new Error('a signed note ends with a newline');
  const body = note.slice(0, split + 1);
  const signatures: NoteSignature[] = [];
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed signature line ${JSON.stringify(line)}`);
    const raw = b64decodeStrict(m[2]);
    if (raw === null || raw.length < 5) throw new Error('a signature is not canonical base64 of key id + signature');
    signatures.push({ name: m[1], keyId: new DataView(raw.buffer).getUint32(0), sig: raw.slice(4) });
  }
  if (!signatures.length) throw new Error('the note has no signature');
  return { body, signatures };
}

/** A C2SP tlog-checkpoint: `origin\nsize\nbase64 root\n[extension lines]`. */
export function parseCheckpoint(note: string): Checkpoint {
  const parsed = parseNote(note);
  const lines = parsed.body.slice(0, -1).split('\n');
  if (lines.length < 3 || !lines[0]) throw new Error('a checkpoint body has origin, size and root lines');
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error(`tree size ${JSON.stringify(lines[1])} is not a decimal number`);
  const root = b64decodeStrict(lines[2]);
  if (root === null || root.length !== 32) throw new Error('the root hash is not base64 of 32 bytes');
  return { ...parsed, origin: lines[0], size: Number(lines[1]), root };
}

export interface VerifierKey {
  name: string;
  keyId: number;
  publicKey: Uint8Array;
  text: string;
}

async function noteKeyId(name: string, publicKey: Uint8Array): Promise<number> {
  const digest = await sha256(concat(toBytes(`${name}\n`), Uint8Array.of(1), publicKey));
  return new DataView(digest.buffer).getUint32(0);
}

/** `name+hexid+base64(0x01 || key)`, checked: Ed25519, the id derived from name and key. */
export async function parseVerifierKey(text: string): Promise<VerifierKey> {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text);
  if (!m) throw new Error('not a note verifier key (name+hexid+base64key)');
  const raw = b64decodeStrict(m[3]);
  if (raw === null || raw[0] !== 1 || raw.length !== 33) throw new Error('not an Ed25519 note verifier key');
  const publicKey = raw.slice(1);
  const keyId = parseInt(m[2], 16);
  if ((await noteKeyId(m[1], publicKey)) !== keyId) throw new Error('the key id does not match the key name and key');
  return { name: m[1], keyId, publicKey, text };
}

/** Check a note's signature by `key`; the note's body when it holds. */
export async function openNote(note: string, key: VerifierKey): Promise<{ ok: boolean; reason: string; body?: string }> {
  let parsed: SignedNote;
  try {
    parsed = parseNote(note);
  } catch (err) {
    return { ok: false, reason: `malformed: ${(err as Error).message}` };
  }
  const sig = parsed.signatures.find((s) => s.name === key.name && s.keyId === key.keyId);
  if (!sig) return { ok: false, reason: `no signature by the log key ${key.name}` };
  const pub = await globalThis.crypto.subtle.importKey('raw', bs(key.publicKey), { name: 'Ed25519' }, false, ['verify']);
  const good = await globalThis.crypto.subtle.verify({ name: 'Ed25519' }, pub, bs(sig.sig), bs(toBytes(parsed.body)));
  return good
    ? { ok: true, reason: `Ed25519 signature by ${key.name}`, body: parsed.body }
    : { ok: false, reason: `the signature by ${key.name} does not match the note text` };
}

export { b64decode };
