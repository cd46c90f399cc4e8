// Re-checking a record in this browser: the leaf hash (RFC 9162) of the exact signed
// bytes, the record signature over them (WebCrypto), the checkpoint signature and the
// inclusion proof. The fields a page shows are a view (decrypted for auditors,
// sanitized for developers); `differences` says where that view departs from the
// signed bytes.

import {sha256, b64decode, b64encode, verifyInclusion, verifyNote, parseCheckpoint} from './merkle.js';

const NOT_PAYLOAD = new Set(['slug', 'signature', 'log', 'view', 'redacted']);

/** RFC 8785 (JCS): ES number formatting, keys sorted by UTF-16 code units. */
export function jcs(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(value[k])}`).join(',')}}`;
}

/** SHA-256(0x00 || {"record":<payload>,"signature":<JCS of the signature>}) (RFC 9162 leaf). */
export async function leafHash(payload, signature) {
  const entry = `{"record":${payload},"signature":${jcs(signature)}}`;
  const bytes = new TextEncoder().encode(entry);
  const data = new Uint8Array(bytes.length + 1);
  data.set(bytes, 1);
  return sha256(data);
}

const empty = (v) => v === undefined || v === null ||
  (Array.isArray(v) && !v.length) || (typeof v === 'object' && !Array.isArray(v) && !Object.keys(v).length);

/** Dotted paths where the fields shown differ from the signed ones (empty values equal absent). */
export function differences(shown, signed, path = '') {
  if (empty(shown) && empty(signed)) return [];
  if (shown && signed && typeof shown === 'object' && typeof signed === 'object' && !Array.isArray(shown) && !Array.isArray(signed)) {
    const keys = new Set([...Object.keys(shown), ...Object.keys(signed)]);
    return [...keys].sort().flatMap((k) => (!path && NOT_PAYLOAD.has(k) ? [] : differences(shown[k], signed[k], path ? `${path}.${k}` : k)));
  }
  return jcs(shown ?? null) === jcs(signed ?? null) ? [] : [path];
}

function pemToDer(pem) {
  return b64decode(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''));
}

async function verifySignature(payload, sig, keys) {
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
  const ok = await crypto.subtle.verify(alg[1], pub, b64decode(sig.sig), new TextEncoder().encode(payload));
  return ok
    ? {result: 'pass', detail: `${sig.alg} signature by key ${sig.key_id} over the record's RFC 8785 bytes`}
    : {result: 'fail', detail: `the ${sig.alg} signature by key ${sig.key_id} does not match the record's fields`};
}

/**
 * [{check, result, detail}] computed here from the exact signed bytes (GET
 * /v1/ui/records/{id}/signed; null when this role may not read them, with `why`),
 * the proof (GET /v1/records/{id}/proof; null when not yet logged) and the key set.
 */
export async function browserChecks(signed, why, proof, keys) {
  const checks = [];
  if (!signed) {
    checks.push({check: 'leaf_hash', result: 'not_run', detail: `not run: ${why}`});
    checks.push({check: 'record_signature', result: 'not_run', detail: `not run: ${why}`});
  } else {
    const leaf = b64encode(await leafHash(signed.payload, signed.signature));
    checks.push(leaf === signed.log.leaf_hash
      ? {check: 'leaf_hash', result: 'pass', detail: `recomputed from the signed bytes: ${leaf}`}
      : {check: 'leaf_hash', result: 'fail', detail: `the signed bytes hash to ${leaf}, the log holds ${signed.log.leaf_hash}`});
    checks.push({check: 'record_signature', ...(await verifySignature(signed.payload, signed.signature, keys))});
  }
  if (!proof) {
    checks.push({check: 'checkpoint_signature', result: 'not_run', detail: 'not run: the record is not in a checkpoint yet'});
    checks.push({check: 'inclusion_proof', result: 'not_run', detail: 'not run: the record is not in a checkpoint yet'});
    return checks;
  }
  const note = await verifyNote(proof.checkpoint, proof.log_key);
  checks.push({check: 'checkpoint_signature', result: note.ok === true ? 'pass' : note.ok === false ? 'fail' : 'unknown', detail: note.reason});
  const leaf = signed ? signed.log.leaf_hash : proof.leaf_hash;
  if (proof.leaf_hash !== leaf) {
    checks.push({check: 'inclusion_proof', result: 'fail', detail: 'the proof is for a different leaf than the signed record'});
    return checks;
  }
  const cp = parseCheckpoint(proof.checkpoint);
  const inc = await verifyInclusion(proof.index, cp.size, b64decode(proof.leaf_hash), proof.proof.map(b64decode), cp.root);
  checks.push({check: 'inclusion_proof', result: inc.ok ? 'pass' : 'fail', detail: inc.reason});
  return checks;
}
