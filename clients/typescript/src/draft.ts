// Unsigned record drafts, as the Python client builds them (capture/drafts.py): the
// server validates, signs, stores and logs them.

import { createHash, randomBytes } from 'node:crypto';
import { hostname, platform, release, arch } from 'node:os';
import { encodeContent, type Content } from './hashing.js';
import { jcs } from './encoding.js';

export const MAX_SNAPSHOT_CHARS = 8 * 1024;
export const MAX_ERROR_CHARS = 2048;

export interface ModelSpec {
  name: string;
  version?: string;
  provider?: string;
  revision?: string;
  digest?: string;
}

export type Draft = Record<string, unknown>;

const startNs = BigInt(Date.now()) * 1_000_000n;
const startHr = process.hrtime.bigint();

/** Unix nanoseconds with sub-millisecond resolution (a monotonic clock anchored at load). */
export function nowNs(): bigint {
  return startNs + (process.hrtime.bigint() - startHr);
}

/** RFC 3339 UTC with microseconds, as every record time. */
export function formatNs(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const micros = Number((ns / 1000n) % 1_000_000n);
  return `${new Date(ms).toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
}

/** UUIDv7 (RFC 9562) ids, strictly increasing within this process. */
export class RecordIds {
  private lastMs = -1;
  private seq = 0;

  next(ns: bigint = nowNs()): string {
    const ms = Number(ns / 1_000_000n);
    const rand = randomBytes(10);
    if (ms === this.lastMs) {
      this.seq += 1;
    } else {
      this.lastMs = ms;
      this.seq = ((rand[0] & 0x07) << 8) | rand[1]; // start low in the 12 bits: room to count
    }
    const bytes = Buffer.alloc(16);
    bytes.writeUIntBE(ms, 0, 6);
    const randA = this.seq & 0x0fff;
    bytes[6] = 0x70 | (randA >> 8);
    bytes[7] = randA & 0xff;
    rand.copy(bytes, 8, 2, 10);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    const h = bytes.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}

export interface Digest {
  sha256: string;
  size: number;
  media_type: string;
}

export function digest(content: Content, mediaType?: string): Digest {
  const { bytes, mediaType: found } = encodeContent(content);
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    media_type: mediaType ?? found,
  };
}

/** Hashes a streamed output chunk by chunk: the digest of the concatenated chunks. */
export class StreamHasher {
  private hash = createHash('sha256');
  private size = 0;
  private text: boolean | undefined;

  update(chunk: string | Uint8Array): void {
    const isText = typeof chunk === 'string';
    if (this.text !== undefined && this.text !== isText) throw new TypeError('a stream mixes text and bytes');
    this.text = isText;
    const bytes = isText ? Buffer.from(chunk, 'utf8') : chunk;
    this.hash.update(bytes);
    this.size += bytes.length;
  }

  digest(): Digest {
    return {
      sha256: this.hash.digest('hex'),
      size: this.size,
      media_type: this.text === false ? 'application/octet-stream' : 'text/plain; charset=utf-8',
    };
  }
}

/** The input part: SHA-256 of the input under the output rules, a text snapshot. */
export function inputPart(input: unknown, seed: unknown, snapshot: boolean): Record<string, unknown> {
  const part: Record<string, unknown> = {};
  if (input !== undefined && input !== null) {
    const d = digest(input);
    part.sha256 = d.sha256;
    part.media_type = d.media_type;
    if (snapshot && (typeof input === 'string' || typeof input === 'object') && !(input instanceof Uint8Array)) {
      const text = typeof input === 'string' ? input : jcs(input);
      part.snapshot = text.slice(0, MAX_SNAPSHOT_CHARS);
    }
  }
  if (seed !== undefined && seed !== null) part.seed = String(seed);
  return part;
}

/** Where this process runs: the `context` part (Node's platform, host and package versions). */
export function probeContext(packages: Record<string, string>): Record<string, unknown> {
  const env = process.env;
  const ctx: Record<string, unknown> = {
    platform: `${platform()}-${release()}-${arch()}`,
    hostname: hostname(),
    packages: { node: process.versions.node, ...packages },
  };
  const container = { image: env.PROVMARK_CONTAINER_IMAGE, digest: env.PROVMARK_CONTAINER_DIGEST };
  if (container.image || container.digest) ctx.container = clean(container);
  const k8s = { namespace: env.POD_NAMESPACE, pod: env.POD_NAME, node: env.NODE_NAME };
  if (k8s.pod) ctx.k8s = clean(k8s);
  if (env.PROVMARK_GIT_COMMIT) ctx.git = { commit: env.PROVMARK_GIT_COMMIT };
  return ctx;
}

export function clean<T extends Record<string, unknown>>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== null && v !== '')) as Partial<T>;
}

/** JSON values only (what a record can sign); undefined for anything else. */
export function jsonValue(value: unknown): unknown {
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return undefined;
    const back = JSON.parse(text);
    jcs(back);
    return back;
  } catch {
    return undefined;
  }
}

/** Same model, or a pinned snapshot of it (gpt-4o -> gpt-4o-2024-08-06), as the Python integrations decide. */
export function sameModel(requested: string | undefined, served: string | undefined): boolean {
  if (!requested || !served) return true;
  const r = requested.toLowerCase().split('/').pop() as string;
  const s = served.toLowerCase().split('/').pop() as string;
  return s === r || (s.startsWith(r) && /^(?:-\d[\d.-]*|-latest|[@:].+)$/.test(s.slice(r.length)));
}
