// Every field of a record, grouped, each in a readable form and in the form it is
// stored in (hashes in full, with a copy button).

import {h, humanTime, ago, bytes, copyButton} from './dom.js';

const SECTIONS = [
  ['Identity', ['record_id', 'slug', 'schema_version', 'status', 'operation', 'started_at', 'generated_at']],
  ['Model', ['model']],
  ['Input', ['input']],
  ['Parameters', ['params']],
  ['Output', ['output', 'outputs']],
  ['Actor', ['actor']],
  ['Usage', ['usage']],
  ['Fallback', ['fallback']],
  ['Error', ['error']],
  ['Tags', ['tags']],
  ['Parents', ['parents']],
  ['Environment', ['context']],
  ['Extra', ['extra']],
  ['Signature', ['signature']],
  ['Log position', ['log']],
];
const HIDDEN = new Set(['view']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function flatten(value, path, out) {
  if (Array.isArray(value)) {
    if (!value.length) return out;
    if (value.every((v) => v === null || typeof v !== 'object') && !path.endsWith('parents')) {
      out.push([path, value]);
      return out;
    }
    value.forEach((v, i) => flatten(v, `${path}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (!keys.length) return out;
    for (const k of keys) flatten(value[k], path ? `${path}.${k}` : k, out);
  } else {
    out.push([path, value]);
  }
  return out;
}

function uuidTime(id) {
  const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

function b64ToHex(text) {
  try {
    return Array.from(atob(text), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch {
    return '';
  }
}

const isHash = (path, value) => typeof value === 'string' &&
  (/(^|\.)(sha256|digest|leaf_hash|sig|hmac)$/.test(path) || /^[0-9a-f]{64}$/.test(value) ||
   String(value).startsWith('hmac-sha256:'));

/** [readable (Node|string), stored (Node|string|null)] for one field. */
function forms(path, value, record) {
  const raw = typeof value === 'string' ? value : JSON.stringify(value);
  if (value === '[redacted]') {
    return [h('span', {class: 'badge muted'}, 'redacted in the sanitized view'), null];
  }
  if (/(^|\.)(generated_at|started_at|created_at|not_before|not_after)$/.test(path) && typeof value === 'string') {
    return [`${humanTime(value)} (${ago(value)})`, raw];
  }
  if (path === 'record_id' && UUID.test(value)) {
    const t = uuidTime(value);
    return [`UUIDv7 made ${t ? humanTime(t) : '?'}; short form ${record.slug}`, hashCell(value, 'record id')];
  }
  if (/(^|\.)size$/.test(path) && typeof value === 'number') return [bytes(value), raw];
  if (/latency_ms$/.test(path) && typeof value === 'number') return [`${value} ms`, raw];
  if (path === 'log.index') return [`entry ${value.toLocaleString('en')} of the log (counting from 0)`, raw];
  if (path === 'log.leaf_hash') {
    return [h('span', {}, 'RFC 9162 leaf hash; hex: ', h('code', {class: 'hash'}, b64ToHex(value))), hashCell(value, 'leaf hash (base64)')];
  }
  if (path === 'signature.sig') {
    const n = Math.floor((value.replace(/=+$/, '').length * 3) / 4);
    return [`${record.signature?.alg || ''} signature over the record's RFC 8785 bytes, ${n} bytes`, hashCell(value, 'signature')];
  }
  if (path === 'signature.key_id') return ['record-signing key (see /.well-known/provmark/keys)', raw];
  if (/^parents\[\d+\]$/.test(path)) {
    return UUID.test(value)
      ? [h('a', {href: `#/record/${encodeURIComponent(value)}`}, 'open parent record'), hashCell(value, 'parent id')]
      : ['external input (not a provmark record)', hashCell(value, 'parent')];
  }
  if (path === 'actor.user_id' && String(value).startsWith('hmac-sha256:')) {
    return ['keyed hash of the user id (equal users, equal hashes)', hashCell(value, 'user id hash')];
  }
  if (/(^|\.)sha256$/.test(path)) {
    const what = path.startsWith('output') ? 'the output bytes' : path.startsWith('input') ? 'the input' : 'this file';
    return [`SHA-256 of ${what}`, hashCell(value, `${path}`)];
  }
  if (/(^|\.)digest$/.test(path)) return ['digest of the model weights', hashCell(value, 'model digest')];
  if (isHash(path, value)) return ['hash', hashCell(value, path)];
  if (typeof value === 'boolean') return [value ? 'yes' : 'no', raw];
  if (Array.isArray(value)) return [value.join(', '), raw];
  if (value === null) return [h('span', {class: 'muted'}, 'null'), null];
  if (typeof value === 'string' && value.length > 120) return [h('span', {class: 'long'}, value), null];
  return [String(value), null];
}

function hashCell(value, label) {
  return h('span', {class: 'hash-cell'}, h('code', {class: 'hash'}, value), copyButton(value, label));
}

function sectionTable(title, rows, record, hidden) {
  const id = `fields-${title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
  return h('section', {class: 'fields', 'aria-labelledby': id},
    h('h3', {id}, title),
    h('table', {},
      h('thead', {class: 'offscreen'}, h('tr', {},
        h('th', {scope: 'col'}, 'Field'), h('th', {scope: 'col'}, 'Readable'), h('th', {scope: 'col'}, 'Stored form'))),
      h('tbody', {}, rows.map(([path, value]) => {
        const [readable, stored] = forms(path, value, record);
        const changed = hidden.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
        return h('tr', {dataset: {field: path}, class: changed ? 'redacted' : ''},
          h('th', {scope: 'row'}, h('code', {}, path)),
          h('td', {class: 'readable'}, readable,
            changed ? h('span', {class: 'badge info changed'}, 'changed in the sanitized view') : null),
          h('td', {class: 'stored'}, stored === raw(readable) ? null : stored));
      }))));
}

const raw = (x) => (typeof x === 'string' ? x : undefined);

/** hidden: the paths the caller's sanitized view changed. */
export function fieldSections(record, hidden = []) {
  const used = new Set();
  const out = [];
  for (const [title, keys] of SECTIONS) {
    const rows = [];
    for (const key of keys) {
      used.add(key);
      if (record[key] === undefined) continue;
      flatten(record[key], key, rows);
    }
    if (rows.length) out.push(sectionTable(title, rows, record, hidden));
  }
  const other = [];
  for (const key of Object.keys(record)) {
    if (!used.has(key) && !HIDDEN.has(key)) flatten(record[key], key, other);
  }
  if (other.length) out.push(sectionTable('Other fields', other, record, hidden));
  return out;
}
