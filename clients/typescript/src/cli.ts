#!/usr/bin/env node
// provmark-verify FILE --bundle B.provmark.json [--keyset keyset.json]
// Offline, as `provmark verify FILE --bundle B` does: exit 0 verified, 1 not, 2 usage/I-O.

import { readFileSync } from 'node:fs';
import { verifyBundle, VerificationError, type VerifyOptions } from './verify.js';

async function main(argv: string[]): Promise<number> {
  let file: string | undefined;
  let bundlePath: string | undefined;
  let keysetPath: string | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--bundle') bundlePath = argv[++i];
    else if (argv[i] === '--keyset') keysetPath = argv[++i];
    else if (!file && !argv[i].startsWith('-')) file = argv[i];
    else {
      console.error(`provmark-verify: unknown argument ${argv[i]}`);
      return 2;
    }
  }
  if (!bundlePath) {
    console.error('usage: provmark-verify [FILE] --bundle B.provmark.json [--keyset keyset.json]');
    return 2;
  }
  let bundle: unknown;
  const options: VerifyOptions = {};
  try {
    bundle = JSON.parse(readFileSync(bundlePath, 'utf8'));
    if (file) options.content = new Uint8Array(readFileSync(file));
    if (keysetPath) {
      const keyset = JSON.parse(readFileSync(keysetPath, 'utf8'));
      Object.assign(options, { keys: keyset.keys, logKey: keyset.log_key, revocations: keyset.revocations });
    }
  } catch (err) {
    console.error(`provmark-verify: ${(err as Error).message}`);
    return 2;
  }
  try {
    const v = await verifyBundle(bundle, options);
    for (const c of v.checks) console.log(`PASS  ${c.check.padEnd(22)} ${c.detail}`);
    for (const note of v.notChecked) console.log(`NOTE  ${note}`);
    console.log(`VERIFIED record ${v.recordId}${v.pinned ? '' : ' (keys from the bundle, not pinned: give --keyset)'}`);
    return 0;
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
    console.log(`FAIL  ${err.check.padEnd(22)} ${err.detail}`);
    console.log('NOT VERIFIED');
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
