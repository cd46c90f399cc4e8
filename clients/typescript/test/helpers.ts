import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// compiled to dist/test/: the sources' folder is two levels up
export const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REPO = join(PACKAGE, '..', '..');
export const FIXTURES = join(PACKAGE, 'test', 'fixtures');

export const fixtureText = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
export const fixture = (name: string): any => JSON.parse(fixtureText(name));
