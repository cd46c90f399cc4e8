// Bytes, base64, SHA-256 and RFC 8785 (JCS): the encodings every provmark check rests on.
// WebCrypto only, so the same code runs in Node 20+ and in browsers.

const utf8 = new TextEncoder();

export function toBytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/** A Uint8Array as WebCrypto's BufferSource (TypeScript 5.9 types them apart). */
export const bs = (u: Uint8Array): Uint8Array<ArrayBuffer> => u as Uint8Array<ArrayBuffer>;

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bs(data)));
}

export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export function b64encode(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Standard base64; null when `text` is not canonical base64 (one text per byte string). */
export function b64decodeStrict(text: string): Uint8Array | null {
  let bin: string;
  try {
    bin = atob(text);
  } catch {
    return null;
  }
  const raw = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return b64encode(raw) === text ? raw : null;
}

export function b64decode(text: string): Uint8Array {
  const raw = b64decodeStrict(text);
  if (raw === null) throw new Error(`not canonical base64: ${text.slice(0, 40)}`);
  return raw;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * RFC 8785 (JCS): ECMAScript number formatting, keys sorted by UTF-16 code units, no
 * whitespace. Throws on values JSON cannot hold (NaN, Infinity, undefined in arrays).
 */
export function jcs(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'bigint':
      throw new TypeError('bigint is not a JSON number: send large integers as strings');
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => jcs(v === undefined ? null : v)).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`a ${typeof value} cannot be put in a record`);
  }
}
