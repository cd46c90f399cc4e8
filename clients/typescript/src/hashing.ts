// How content becomes the bytes whose SHA-256 a record states (docs/hashing.md):
// a string -> its UTF-8 bytes; bytes -> as they are; anything else JSON -> RFC 8785.

import { hex, jcs, sha256, toBytes } from './encoding.js';

export type Content = string | Uint8Array | ArrayBuffer | unknown;

export interface Encoded {
  bytes: Uint8Array;
  mediaType: string;
}

export function encodeContent(content: Content): Encoded {
  if (typeof content === 'string') return { bytes: toBytes(content), mediaType: 'text/plain; charset=utf-8' };
  if (content instanceof Uint8Array) return { bytes: content, mediaType: 'application/octet-stream' };
  if (content instanceof ArrayBuffer) return { bytes: new Uint8Array(content), mediaType: 'application/octet-stream' };
  return { bytes: toBytes(jcs(content)), mediaType: 'application/json' };
}

/** SHA-256 (hex) of content under the rules above. */
export async function contentSha256(content: Content): Promise<string> {
  return hex(await sha256(encodeContent(content).bytes));
}
