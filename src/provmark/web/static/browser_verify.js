// Re-checking a record in this browser, from what the API returned: the leaf hash
// (RFC 8785 of the fields, then RFC 9162), the record signature (WebCrypto), the
// checkpoint signature and the inclusion proof. Only the full view carries the signed
// fields; a sanitized record cannot be re-hashed (that is the point of sanitizing).

import {sha256, b64decode, b64encode, verifyInclusion, verifyNote, parseCheckpoint} from './merkle.js';

const NOT_PAYLOAD = new Set(['slug', 'signature', 'log', 'view', 'redacted']);

/** RFC 8785 (JCS): ES number formatting, keys sorted by UTF-16 code units. */
export function jcs(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(value[k])}`).join(',')}}`;
}

function unsafeNumber(value) {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (value && typeof value === 'object') return Object.values(value).some(unsafeNumber);
  return false;
}

export function payloadText(record) {
  const payload = {};
  for (const [k, v] of Object.entries(record)) if (!NOT_PAYLOAD.has(k)) payload[k] = v;
  return jcs(payload);
}

export async function leafHash(record) {
  const entry = `{"record":${payloadText(record)},"signature":${jcs(record.signature)}}`;
  const bytes = new TextEncoder().encode(entry);
  const data = new Uint8Array(bytes.length + 1);
  data.set(bytes, 1);
  return sha256(data);
}

function pemToDer(pem) {
  return b64decode(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''));
}

async function verifySignature(record, keys) {
  const sig = record.signature || {};
  const key = keys.find((k) => k.key_id === sig.key_id);
  if (!key) return {result: 'fail', detail: `key ${sig.key_id} is not among the server's published keys`};
  if (!(globalThis.crypto && crypto.subtle)) return {result: 'unknown', detail: 'WebCrypto is unavailable (not a secure context)'};
  const algs = {
    Ed25519: [{name: 'Ed25519'}, {name: 'Ed25519'}],
    ES256: [{name: 'ECDSA', namedCurve: 'P-256'}, {name: 'ECDSA', hash: 'SHA-256'}],
  };
  const alg = algs[sig.alg];
  if (!alg) return {result: 'unknown', detail: `algorithm ${sig.alg} is not checked in the browser`};
  let pub;
  try {
    pub = await crypto.subtle.importKey('spki', pemToDer(key.public_key), alg[0], false, ['verify']);
  } catch {
    return {result: 'unknown', detail: `this browser cannot use ${sig.alg} keys`};
  }
  const ok = await crypto.subtle.verify(alg[1], pub, b64decode(sig.sig), new TextEncoder().encode(payloadText(record)));
  return ok
    ? {result: 'pass', detail: `${sig.alg} signature by key ${sig.key_id} over the record's RFC 8785 bytes`}
    : {result: 'fail', detail: `the ${sig.alg} signature by key ${sig.key_id} does not match the record's fields`};
}

/** [{check, result, detail}] computed here. proof: GET /v1/records/{id}/proof; keys: the key set. */
export async function browserChecks(record, proof, keys) {
  const checks = [];
  const full = record.view !== 'sanitized';
  if (!full) {
    const why = 'not run: the sanitized view does not carry the signed fields';
    checks.push({check: 'leaf_hash', result: 'not_run', detail: why});
    checks.push({check: 'record_signature', result: 'not_run', detail: why});
  } else if (unsafeNumber(record)) {
    const why = 'not run: the record holds integers too large for a browser to re-encode exactly';
    checks.push({check: 'leaf_hash', result: 'unknown', detail: why});
    checks.push({check: 'record_signature', result: 'unknown', detail: why});
  } else {
    const leaf = b64encode(await leafHash(record));
    checks.push(leaf === record.log?.leaf_hash
      ? {check: 'leaf_hash', result: 'pass', detail: `recomputed from the fields shown: ${leaf}`}
      : {check: 'leaf_hash', result: 'fail', detail: `the fields hash to ${leaf}, the log holds ${record.log?.leaf_hash}`});
    checks.push({check: 'record_signature', ...(await verifySignature(record, keys))});
  }
  if (!proof) {
    checks.push({check: 'checkpoint_signature', result: 'not_run', detail: 'no proof: the record is not in a checkpoint yet'});
    checks.push({check: 'inclusion_proof', result: 'not_run', detail: 'no proof: the record is not in a checkpoint yet'});
    return checks;
  }
  const note = await verifyNote(proof.checkpoint, proof.log_key);
  checks.push({check: 'checkpoint_signature', result: note.ok === true ? 'pass' : note.ok === false ? 'fail' : 'unknown', detail: note.reason});
  if (proof.leaf_hash !== record.log?.leaf_hash) {
    checks.push({check: 'inclusion_proof', result: 'fail', detail: 'the proof is for a different leaf than the record shows'});
    return checks;
  }
  const cp = parseCheckpoint(proof.checkpoint);
  const inc = await verifyInclusion(proof.index, cp.size, b64decode(proof.leaf_hash), proof.proof.map(b64decode), cp.root);
  checks.push({check: 'inclusion_proof', result: inc.ok ? 'pass' : 'fail', detail: inc.reason});
  return checks;
}
