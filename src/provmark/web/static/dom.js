// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so record
// content can never become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected' || key === 'disabled') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h('p', {class: 'x'}, 'text', h('b', {}, 'bold')) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  return append(el, children);
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  return append(el, children);
}

/** Append children, skipping null / undefined / false (Element.append would print them). */
export function add(el, ...children) {
  return append(el, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// ------------------------------------------------------------------ formatting

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n, w = 2) => String(n).padStart(w, '0');

export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : new Date(t);
}

/** "25 Nov 2026, 16:20:27 UTC" */
export function humanTime(iso) {
  const d = typeof iso === 'string' ? parseTime(iso) : iso;
  if (!d) return String(iso ?? '');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

export function shortTime(d) {
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

export function shortDate(d) {
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}

/** "12 s", "4 min", "2 h 5 min", "3 d 4 h" */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  const d = Math.floor(hrs / 24);
  return hrs % 24 ? `${d} d ${hrs % 24} h` : `${d} d`;
}

export function ago(iso) {
  const d = parseTime(iso);
  if (!d) return '';
  const s = (Date.now() - d.getTime()) / 1000;
  return s < 0 ? `in ${duration(-s)}` : `${duration(s)} ago`;
}

export function bytes(n) {
  if (typeof n !== 'number') return String(n);
  if (n < 1000) return `${n} bytes`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]} (${n.toLocaleString('en')} bytes)`;
}

export function number(n) {
  return typeof n === 'number' ? n.toLocaleString('en') : String(n ?? '');
}

export function short(hash, n = 12) {
  if (!hash) return '';
  const s = String(hash);
  return s.length > n + 1 ? `${s.slice(0, n)}…` : s;
}

// ------------------------------------------------------------------ small widgets

export function copyButton(text, label) {
  const button = h('button', {type: 'button', class: 'copy', 'aria-label': `Copy ${label}`}, 'Copy');
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      const area = h('textarea', {class: 'offscreen', 'aria-hidden': 'true'});
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
      button.textContent = 'Copied';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
  return button;
}

/** A pass / fail / not run badge: words and a symbol, never colour alone. */
export function result(value) {
  const map = {
    pass: ['✓', 'pass', 'ok'],
    fail: ['✗', 'fail', 'bad'],
    not_run: ['–', 'not run', 'muted'],
    unknown: ['?', 'not checked', 'muted'],
  };
  const [symbol, word, cls] = map[value] || map.unknown;
  return h('span', {class: `badge ${cls}`}, h('span', {'aria-hidden': 'true'}, symbol), ` ${word}`);
}

export const CHECK_NAMES = {
  output_hash: 'Content hash',
  record_signature: 'Record signature',
  key_validity: 'Key validity',
  checkpoint_signature: 'Checkpoint signature',
  inclusion_proof: 'Inclusion proof',
  consistency: 'Log consistency',
  c2pa_manifest: 'C2PA manifest',
  c2pa_record: 'Manifest names a record',
  record: 'Record',
  leaf_hash: 'Leaf hash',
};

/** A list of checks [{check, result, detail}] as a table. */
export function checksTable(checks, caption) {
  return h('table', {class: 'checks'},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Check'), h('th', {scope: 'col'}, 'Result'),
      h('th', {scope: 'col'}, 'Reason'))),
    h('tbody', {}, checks.map((c) => h('tr', {class: `check-${c.result}`, dataset: {check: c.check}},
      h('th', {scope: 'row'}, CHECK_NAMES[c.check] || c.check),
      h('td', {}, result(c.result)),
      h('td', {class: 'detail'}, c.detail || '')))));
}

export function message(kind, ...children) {
  return h('div', {class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status'}, ...children);
}

export function panel(title, ...children) {
  const id = `panel-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', {class: 'panel', 'aria-labelledby': id},
    h('h2', {id}, title), ...children);
}
