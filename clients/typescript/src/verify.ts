// Offline verification of provmark bundles (`*.provmark.json`) and checkpoints, with
// the checks and rules of the Python verifier (src/provmark/bundle/__init__.py, verify.py):
// output_hash, record_signature, key_validity, checkpoint_signature, inclusion_proof
// (and consistency when given an older trusted checkpoint). Strict: unknown or renamed
// members and non-canonical base64 or key strings fail, so one changed bit anywhere fails.

import { b64decodeStrict, b64encode, bs, hex, jcs, sha256, toBytes } from './encoding.js';
import { contentSha256, type Content } from './hashing.js';
import {
  leafHashOf,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyInclusion,
  type Checkpoint,
  type VerifierKey,
} from './merkle.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.provmark.bundle+json;version=1';
const ROTATION_SKEW_MS = 60_000;

export type CheckName =
  | 'bundle_format'
  | 'record_payload'
  | 'output_hash'
  | 'record_signature'
  | 'key_validity'
  | 'checkpoint_signature'
  | 'inclusion_proof'
  | 'consistency'
  | 'key_revoked';

export interface Check {
  check: CheckName;
  result: 'pass';
  detail: string;
}

/** A failed check: `check` names it, `detail` says why. */
export class VerificationError extends Error {
  constructor(
    readonly check: CheckName,
    readonly detail: string,
  ) {
    super(`${check}: ${detail}`);
    this.name = 'VerificationError';
  }
}

/** A record public key as `provmark keys export` and `/.well-known/provmark/keys` give it. */
export interface PublicKeyInfo {
  key_id: string;
  alg: string;
  purpose?: string;
  public_key: string; // PEM (SubjectPublicKeyInfo)
  not_before: string;
  not_after?: string | null;
}

export interface VerifyOptions {
  /** The content to check against the record's output hash (string: its UTF-8 bytes). */
  content?: Content;
  /** Or its SHA-256, hex. */
  contentSha256?: string;
  /** Pin the record keys (else the bundle's own key, attested by the log key, is used). */
  keys?: PublicKeyInfo[];
  /** Pin the log's note verifier key (else the bundle's). */
  logKey?: string;
  /** An older checkpoint you trust, with a consistency proof from it to the bundle's. */
  trustedCheckpoint?: { size: number; root: Uint8Array; proof: Uint8Array[] };
  /** A revocation list you got from the operator (`revocations` of `provmark keys export`). */
  revocations?: string;
}

export interface Verified {
  record: Record<string, unknown>;
  recordId: string;
  checks: Check[];
  index: number;
  treeSize: number;
  /** Whether keys and log key were given by the caller (else they came with the bundle). */
  pinned: boolean;
  /** What was in the bundle but not checked here (RFC 3161 time-stamp tokens). */
  notChecked: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const SHAPE: Record<string, [string[], string[]]> = {
  bundle: [['media_type', 'record', 'signature', 'log', 'public_key', 'key'], ['timestamps', 'revocations']],
  signature: [['alg', 'key_id', 'sig'], []],
  log: [['origin', 'index', 'leaf_hash', 'tree_size', 'proof', 'checkpoint', 'log_key'], []],
  key: [['key_id', 'alg', 'purpose', 'not_before', 'attestation'], ['not_after']],
};

function shape(obj: unknown, where: string): Obj {
  if (!isObj(obj)) throw new VerificationError('bundle_format', `${where} must be an object`);
  const [required, optional] = SHAPE[where];
  const missing = required.filter((k) => !(k in obj));
  const unknown = Object.keys(obj).filter((k) => !required.includes(k) && !optional.includes(k));
  if (missing.length || unknown.length) {
    const parts = [missing.length ? `missing ${missing.sort().join(', ')}` : '', unknown.length ? `unknown ${unknown.sort().join(', ')}` : ''];
    throw new VerificationError('bundle_format', `${where}: ${parts.filter(Boolean).join(', ')}`);
  }
  return obj;
}

function str(obj: Obj, name: string, where: string): string {
  const v = obj[name];
  if (typeof v !== 'string') throw new VerificationError('bundle_format', `${where}.${name} must be a string`);
  return v;
}

function b64(text: unknown, where: string): Uint8Array {
  const raw = typeof text === 'string' ? b64decodeStrict(text) : null;
  if (raw === null) throw new VerificationError('bundle_format', `${where} is not canonical base64`);
  return raw;
}

/** The DER of a PEM public key, read as OpenSSL reads it (text around the block is
 * ignored: the key attestation, over the exact PEM text, catches any change there). */
function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----/.exec(pem);
  const raw = m ? b64decodeStrict(m[1].replace(/\s+/g, '')) : null;
  if (raw === null) throw new VerificationError('record_signature', 'the public key is not a PEM SubjectPublicKeyInfo');
  return raw;
}

const ALGS: Record<string, { importAlg: EcKeyImportParams | Algorithm; verifyAlg: EcdsaParams | Algorithm }> = {
  Ed25519: { importAlg: { name: 'Ed25519' }, verifyAlg: { name: 'Ed25519' } },
  ES256: { importAlg: { name: 'ECDSA', namedCurve: 'P-256' }, verifyAlg: { name: 'ECDSA', hash: 'SHA-256' } },
};

/** Key id = first 8 bytes of SHA-256 of the raw public key (Ed25519 32 bytes, P-256 uncompressed point). */
async function keyIdOf(key: CryptoKey): Promise<string> {
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', key));
  return hex((await sha256(raw)).slice(0, 8));
}

/** The record key in a PEM, of whichever supported type it is (the stated alg is checked later). */
async function importRecordKey(info: PublicKeyInfo): Promise<CryptoKey> {
  const der = bs(pemToDer(info.public_key));
  let key: CryptoKey | undefined;
  for (const alg of Object.values(ALGS)) {
    try {
      key = await globalThis.crypto.subtle.importKey('spki', der, alg.importAlg, true, ['verify']);
      break;
    } catch {
      // not this type
    }
  }
  if (!key) throw new VerificationError('record_signature', `bundle key: key ${info.key_id} is not an Ed25519 or ECDSA P-256 public key`);
  if ((await keyIdOf(key)) !== info.key_id) {
    throw new VerificationError('record_signature', `bundle key: key ${info.key_id}: key id does not match the public key`);
  }
  return key;
}

/** RFC 3339 UTC -> microseconds since the epoch (records carry microseconds). */
function micros(text: string, what: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) throw new VerificationError('key_validity', `${what} ${JSON.stringify(text)} is not an RFC 3339 time`);
  return ms * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

/** The note body by which the log key vouches for a record key and its validity window. */
export async function keyStatement(info: PublicKeyInfo): Promise<string> {
  const spki = hex(await sha256(toBytes(info.public_key)));
  return `provmark-key/v1\n${info.key_id}\n${info.alg}\n${info.purpose ?? 'records'}\n${spki}\n${info.not_before}\n${info.not_after || '-'}\n`;
}

/** Open a checkpoint note with the log key; the checkpoint when the signature holds. */
export async function verifyCheckpoint(note: string, logKey: string | VerifierKey, origin?: string): Promise<Checkpoint> {
  let key: VerifierKey;
  try {
    key = typeof logKey === 'string' ? await parseVerifierKey(logKey) : logKey;
  } catch (err) {
    throw new VerificationError('checkpoint_signature', `log key: ${(err as Error).message}`);
  }
  const opened = await openNote(note, key);
  if (!opened.ok) throw new VerificationError('checkpoint_signature', opened.reason);
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(note);
  } catch (err) {
    throw new VerificationError('checkpoint_signature', `checkpoint: ${(err as Error).message}`);
  }
  const want = origin ?? key.name;
  if (cp.origin !== want) throw new VerificationError('checkpoint_signature', `checkpoint origin ${JSON.stringify(cp.origin)}, expected ${JSON.stringify(want)}`);
  return cp;
}

/** Verify a bundle offline; returns the checks that passed or throws the first failure. */
export async function verifyBundle(bundle: unknown, options: VerifyOptions = {}): Promise<Verified> {
  if (!isObj(bundle)) throw new VerificationError('bundle_format', 'a bundle is a JSON object');
  if (bundle.media_type !== BUNDLE_MEDIA_TYPE) {
    throw new VerificationError('bundle_format', `media_type is ${JSON.stringify(bundle.media_type)}, want ${JSON.stringify(BUNDLE_MEDIA_TYPE)}`);
  }
  shape(bundle, 'bundle');
  const signature = shape(bundle.signature, 'signature');
  const lg = shape(bundle.log, 'log');
  const keyInfo = shape(bundle.key, 'key');
  const record = bundle.record;
  if (!isObj(record)) throw new VerificationError('bundle_format', 'bundle.record must be an object');
  for (const name of ['alg', 'key_id', 'sig']) str(signature, name, 'signature');
  const sig = b64(signature.sig, 'signature.sig');
  const origin = str(lg, 'origin', 'log');
  const index = lg.index;
  if (typeof index !== 'number' || !Number.isSafeInteger(index)) throw new VerificationError('bundle_format', 'log.index must be an integer');
  const treeSize = lg.tree_size;
  if (typeof treeSize !== 'number' || !Number.isSafeInteger(treeSize)) throw new VerificationError('bundle_format', 'log.tree_size must be an integer');
  if (!Array.isArray(lg.proof)) throw new VerificationError('bundle_format', 'log.proof must be a list');
  const proof = lg.proof.map((p) => b64(p, 'log.proof'));
  const checkpointNote = str(lg, 'checkpoint', 'log');
  let payload: string;
  try {
    payload = jcs(record);
  } catch (err) {
    throw new VerificationError('bundle_format', `record: ${(err as Error).message}`);
  }
  const sigObj = { alg: signature.alg, key_id: signature.key_id, sig: signature.sig };
  const stated = b64(str(lg, 'leaf_hash', 'log'), 'log.leaf_hash');
  const leaf = await leafHashOf(toBytes(`{"record":${payload},"signature":${jcs(sigObj)}}`));
  if (b64encode(leaf) !== b64encode(stated)) {
    throw new VerificationError('inclusion_proof', 'log.leaf_hash does not match the record and signature');
  }

  const checks: Check[] = [];
  if (typeof record.generated_at !== 'string') throw new VerificationError('record_payload', 'record has no generated_at time');
  const wanted = options.contentSha256 ?? (options.content !== undefined ? await contentSha256(options.content) : undefined);
  if (wanted !== undefined) {
    const stated = outputHashes(record);
    if (!stated.includes(wanted)) {
      throw new VerificationError('output_hash', `content sha256 ${wanted} differs from the recorded ${stated.join(', ') || 'no output hash'}`);
    }
    checks.push({ check: 'output_hash', result: 'pass', detail: `content sha256 ${wanted} matches the record` });
  }

  // trust: the bundle's key, attested by the log key, and (when pinned) the same as the pin
  const pinned = options.keys !== undefined && options.logKey !== undefined;
  const logKeyText = str(lg, 'log_key', 'log');
  if (options.logKey !== undefined && options.logKey !== logKeyText) {
    throw new VerificationError('checkpoint_signature', "the bundle's log.log_key differs from the pinned log key");
  }
  let logKey: VerifierKey;
  try {
    logKey = await parseVerifierKey(logKeyText);
  } catch (err) {
    throw new VerificationError('checkpoint_signature', `log key: ${(err as Error).message}`);
  }
  const bundled: PublicKeyInfo = {
    key_id: str(keyInfo, 'key_id', 'key'),
    alg: str(keyInfo, 'alg', 'key'),
    purpose: str(keyInfo, 'purpose', 'key'),
    public_key: str(bundle, 'public_key', 'bundle'),
    not_before: str(keyInfo, 'not_before', 'key'),
    not_after: keyInfo.not_after === undefined ? undefined : (keyInfo.not_after as string | null),
  };
  await importRecordKey(bundled); // a real key whose id is its own
  const attested = await openNote(str(keyInfo, 'attestation', 'key'), logKey);
  if (!attested.ok) throw new VerificationError('key_validity', `key attestation: ${attested.reason}`);
  if (attested.body !== (await keyStatement(bundled))) {
    throw new VerificationError('key_validity', 'the key, its window or purpose differ from what the log key attested');
  }
  const keys = [options.keys === undefined ? bundled : await pinnedKey(bundled, options.keys)];
  const revoked = [
    ...(bundle.revocations === undefined ? [] : await openRevocations(bundle.revocations, logKey)),
    ...(options.revocations === undefined ? [] : await openRevocations(options.revocations, logKey)),
  ];
  const info = keys.find((k) => k.key_id === signature.key_id);
  if (!info) throw new VerificationError('record_signature', `unknown key id ${JSON.stringify(signature.key_id)}; not among the trusted keys`);
  if ((info.purpose ?? 'records') !== 'records') throw new VerificationError('record_signature', `key ${info.key_id} is a ${JSON.stringify(info.purpose)} key, not a record key`);
  if (info.alg !== signature.alg) throw new VerificationError('record_signature', `signature says alg ${JSON.stringify(signature.alg)}, key ${info.key_id} is ${info.alg}`);
  const key = await importRecordKey(info);
  const keyAlg = key.algorithm.name === 'Ed25519' ? 'Ed25519' : 'ES256';
  if (!ALGS[info.alg] || keyAlg !== info.alg) throw new VerificationError('record_signature', `key ${info.key_id} is ${keyAlg}, not ${info.alg}`);
  const good = await globalThis.crypto.subtle.verify(ALGS[info.alg].verifyAlg, key, bs(sig), bs(toBytes(payload)));
  if (!good) throw new VerificationError('record_signature', `signature does not match the record bytes (key ${info.key_id})`);
  checks.push({
    check: 'record_signature',
    result: 'pass',
    detail: `${info.alg} signature by key ${info.key_id}, ${pinned ? 'pinned' : 'embedded in the bundle (not pinned)'}`,
  });

  const at = micros(record.generated_at, 'generated_at');
  const starts = micros(info.not_before, 'not_before') - ROTATION_SKEW_MS * 1000;
  const ends = info.not_after ? micros(info.not_after, 'not_after') : undefined;
  if (at < starts || (ends !== undefined && at > ends)) {
    throw new VerificationError('key_validity', `key ${info.key_id} was not valid at ${record.generated_at} (valid ${info.not_before} .. ${info.not_after || 'now'})`);
  }
  checks.push({ check: 'key_validity', result: 'pass', detail: `key ${info.key_id} valid at ${record.generated_at}` });
  for (const rev of revoked.filter((r) => r.keyId === info.key_id)) judge(rev, record.generated_at);

  if (origin !== logKey.name) throw new VerificationError('checkpoint_signature', `log origin ${JSON.stringify(origin)}, expected ${JSON.stringify(logKey.name)}`);
  const cp = await verifyCheckpoint(checkpointNote, logKey);
  checks.push({ check: 'checkpoint_signature', result: 'pass', detail: `checkpoint of size ${cp.size} signed by ${logKey.name}` });

  const inclusion = await verifyInclusion(index, cp.size, leaf, proof, cp.root);
  if (!inclusion.ok) throw new VerificationError('inclusion_proof', inclusion.reason);
  checks.push({ check: 'inclusion_proof', result: 'pass', detail: `leaf ${index} is in the tree of size ${cp.size} (root ${b64encode(cp.root)})` });

  if (options.trustedCheckpoint) {
    const t = options.trustedCheckpoint;
    const consistent = await verifyConsistency(t.size, cp.size, t.proof, t.root, cp.root);
    if (!consistent.ok) throw new VerificationError('consistency', consistent.reason);
    checks.push({ check: 'consistency', result: 'pass', detail: `tree of size ${t.size} is a prefix of size ${cp.size}` });
  }
  if (treeSize !== cp.size) throw new VerificationError('bundle_format', `log.tree_size ${treeSize} is not the checkpoint's size`);
  const notChecked = Array.isArray(bundle.timestamps) && bundle.timestamps.length
    ? [`${bundle.timestamps.length} RFC 3161 time-stamp token(s): not checked here (provmark verify checks them)`]
    : [];
  return { record, recordId: String(record.record_id), checks, index, treeSize: cp.size, pinned, notChecked };
}

/** The output hashes a record states: `output` and each of `outputs` (schema v2). */
export function outputHashes(record: Obj): string[] {
  const found: string[] = [];
  const add = (o: unknown) => {
    if (isObj(o) && typeof o.sha256 === 'string' && !found.includes(o.sha256)) found.push(o.sha256);
  };
  add(record.output);
  if (Array.isArray(record.outputs)) record.outputs.forEach(add);
  return found;
}

export const PIN_WITHOUT_WINDOW = '1970-01-01T00:00:00Z';

/** The pinned key the bundle's (attested) key must be: same id and key; same window when the pin has one. */
async function pinnedKey(bundled: PublicKeyInfo, pins: PublicKeyInfo[]): Promise<PublicKeyInfo> {
  const pin = pins.find((k) => k.key_id === bundled.key_id);
  if (!pin) throw new VerificationError('record_signature', `key ${bundled.key_id} of the bundle is not among the pinned keys`);
  const der = async (k: PublicKeyInfo) => b64encode(new Uint8Array(await globalThis.crypto.subtle.exportKey('spki', await importRecordKey(k))));
  if ((await der(pin)) !== (await der(bundled))) {
    throw new VerificationError('record_signature', `the bundle's public key differs from the pinned key ${pin.key_id}`);
  }
  if (pin.not_before === PIN_WITHOUT_WINDOW) return bundled;
  const same = pin.alg === bundled.alg && (pin.purpose ?? 'records') === bundled.purpose && pin.not_before === bundled.not_before && (pin.not_after ?? null) === (bundled.not_after ?? null);
  if (!same) throw new VerificationError('key_validity', `the bundle's window or purpose of key ${pin.key_id} differs from the pinned key set`);
  return pin;
}

export interface Revocation {
  keyId: string;
  since: string;
  revokedAt: string;
  reason: unknown;
}

const REVOCATIONS = 'provmark-revocations/v1';
const asciiJson = (v: unknown) => JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The revoked record keys of a revocation list signed by the log key (`key_revoked` when it does not hold). */
export async function openRevocations(note: unknown, logKey: VerifierKey): Promise<Revocation[]> {
  if (typeof note !== 'string') throw new VerificationError('bundle_format', 'bundle.revocations must be a string');
  const opened = await openNote(note, logKey);
  if (!opened.ok || opened.body === undefined) throw new VerificationError('key_revoked', `revocation list: ${opened.reason}`);
  const lines = opened.body.replace(/\n$/, '').split('\n');
  if (lines[0] !== REVOCATIONS) throw new VerificationError('key_revoked', 'revocation list: not a provmark revocation statement');
  const out: Revocation[] = [];
  for (const line of lines.slice(1)) {
    const m = /^(\S+) (\S+) (\S+) (.*)$/.exec(line);
    let reason: unknown;
    try {
      reason = m ? JSON.parse(m[4]) : undefined;
    } catch {
      reason = undefined;
    }
    if (!m || reason === undefined) throw new VerificationError('key_revoked', `revocation list: bad line ${JSON.stringify(line)}`);
    out.push({ keyId: m[1], since: m[2], revokedAt: m[3] === '-' ? '' : m[3], reason });
  }
  const sorted = [...out].sort((a, b) => (a.keyId === b.keyId ? (a.since < b.since ? -1 : a.since > b.since ? 1 : 0) : a.keyId < b.keyId ? -1 : 1));
  const canonical = [REVOCATIONS, ...sorted.map((r) => `${r.keyId} ${r.since} ${r.revokedAt || '-'} ${asciiJson(r.reason)}`)].join('\n') + '\n';
  if (canonical !== opened.body) throw new VerificationError('key_revoked', 'revocation list: not in canonical form');
  return out;
}

/**
 * A record signed by a revoked key fails: made at or after `since`, or claiming an earlier
 * time with no outside evidence that it existed then (witness cosignatures or a pinned
 * time-stamp authority, which only `provmark verify` weighs).
 */
function judge(rev: Revocation, generatedAt: string): void {
  const why = rev.reason ? ` (${String(rev.reason)})` : '';
  const head = `key ${rev.keyId} is revoked since ${rev.since}${why}`;
  if (micros(generatedAt, 'generated_at') >= micros(rev.since, 'since')) {
    throw new VerificationError('key_revoked', `${head}; this record was signed at ${generatedAt}, after the compromise`);
  }
  throw new VerificationError('key_revoked', `${head}; the record claims ${generatedAt} but no checkpoint witnessed or time-stamped before the compromise includes it (it may be backdated)`);
}
