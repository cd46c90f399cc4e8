// Checks done in this browser, independently of the server's own answer:
// SHA-256, RFC 9162 inclusion and consistency proofs, and C2SP signed-note
// signatures (Ed25519 through WebCrypto, where the browser offers it).

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 in plain JavaScript (for pages not served over a secure context). */
export function sha256Sync(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const bitLen = bytes.length * 8;
  const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const H = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const W = new Uint32Array(64);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15];
      const b = W[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = H;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + W[i]) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0;
      d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, H[i]);
  return out;
}

export async function sha256(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (globalThis.crypto && crypto.subtle) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  }
  return sha256Sync(bytes);
}

export const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export function b64decode(text) {
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function b64encode(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function isPowerOfTwo(n) {
  let v = n;
  while (v > 1) {
    if (v % 2) return false;
    v /= 2;
  }
  return v === 1;
}

const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** RFC 9162 section 2.1.3.2. Returns {ok, reason}. Sizes are plain numbers (< 2^53). */
export async function verifyInclusion(index, size, leaf, proof, root) {
  if (index < 0 || index >= size) return {ok: false, reason: `index ${index} is outside a tree of size ${size}`};
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return {ok: false, reason: 'the proof is longer than the tree is deep'};
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
  if (sn !== 0) return {ok: false, reason: 'the proof is too short for the tree size'};
  if (!equal(r, root)) return {ok: false, reason: `computed root ${b64encode(r)} differs from the checkpoint root`};
  return {ok: true, reason: `leaf ${index} hashes up to the root of the tree of size ${size}`};
}

/** RFC 9162 section 2.1.4.2. Returns {ok, reason}. */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  if (size1 > size2) return {ok: false, reason: `old size ${size1} is larger than new size ${size2}`};
  if (size1 === size2) {
    if (proof.length) return {ok: false, reason: 'equal sizes need an empty proof'};
    return equal(root1, root2)
      ? {ok: true, reason: 'same size and same root'}
      : {ok: false, reason: 'same size but different roots: the log was rewritten'};
  }
  if (size1 === 0) return {ok: true, reason: 'every tree extends the empty tree'};
  if (!proof.length) return {ok: false, reason: 'the proof is empty'};
  let path = proof;
  if (isPowerOfTwo(size1)) path = [root1, ...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return {ok: false, reason: 'the proof is longer than needed'};
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
  if (sn !== 0) return {ok: false, reason: 'the proof is too short'};
  if (!equal(fr, root1)) return {ok: false, reason: `the proof does not lead to the old root (size ${size1})`};
  if (!equal(sr, root2)) return {ok: false, reason: `the proof does not lead to the new root (size ${size2})`};
  return {ok: true, reason: `the tree of size ${size2} extends the tree of size ${size1}: nothing was removed or changed`};
}

// ------------------------------------------------------------------ signed notes (C2SP)

/** {body, origin, size, root (bytes), signatures: [{name, keyId, sig}]} */
export function parseCheckpoint(note) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('not a signed note: no blank line before the signatures');
  const body = note.slice(0, split + 1);
  const lines = body.split('\n');
  const signatures = note.slice(split + 2).split('\n').filter(Boolean).map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) return null;
    const raw = b64decode(m[2]);
    const keyId = new DataView(raw.buffer).getUint32(0);
    return {name: m[1], keyId, sig: raw.slice(4)};
  }).filter(Boolean);
  return {body, origin: lines[0], size: Number(lines[1]), root: b64decode(lines[2]), signatures};
}

/** {name, keyId, publicKey (32 bytes)} from "name+hexid+base64(0x01 || key)". */
export function parseVerifierKey(text) {
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  const name = text.slice(0, first);
  const id = text.slice(first + 1, second);
  const encoded = text.slice(second + 1);
  const raw = b64decode(encoded);
  if (raw[0] !== 1 || raw.length !== 33) throw new Error('not an Ed25519 note verifier key');
  return {name, keyId: parseInt(id, 16), publicKey: raw.slice(1)};
}

/** Check the note's signature by the log key. {ok: true|false|null, reason}; null = cannot check here. */
export async function verifyNote(note, verifierKey) {
  let cp;
  let key;
  try {
    cp = parseCheckpoint(note);
    key = parseVerifierKey(verifierKey);
  } catch (err) {
    return {ok: false, reason: `malformed: ${err.message}`};
  }
  const sig = cp.signatures.find((s) => s.name === key.name && s.keyId === key.keyId);
  if (!sig) return {ok: false, reason: `no signature by the log key ${key.name}`};
  if (!(globalThis.crypto && crypto.subtle)) {
    return {ok: null, reason: 'this page is not a secure context, so WebCrypto is unavailable'};
  }
  let pub;
  try {
    pub = await crypto.subtle.importKey('raw', key.publicKey, {name: 'Ed25519'}, false, ['verify']);
  } catch {
    return {ok: null, reason: 'this browser has no Ed25519 in WebCrypto'};
  }
  const good = await crypto.subtle.verify({name: 'Ed25519'}, pub, sig.sig, new TextEncoder().encode(cp.body));
  return good
    ? {ok: true, reason: `Ed25519 signature by ${key.name} checked in this browser`}
    : {ok: false, reason: `the signature by ${key.name} does not match the checkpoint text`};
}

export const asResult = (check) => (check.ok === true ? 'pass' : check.ok === false ? 'fail' : 'unknown');
