// Search: filters (model, actor, time range, tags, output hash, record id), a paginated
// table of records with links. The filters live in the address (#/search?...), so a
// search can be bookmarked and the back button works.

import {api, query, recordPath} from './api.js';
import {h, add, clear, message, number, short, humanTime, ago} from './dom.js';
import {sha256, hex} from './merkle.js';

const FIELDS = ['record', 'model', 'operation', 'actor', 'status', 'since', 'until', 'tags', 'output', 'limit', 'order'];
const RANGES = [['', 'Any time'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];

function input(id, label, value, {hint, placeholder, type = 'text', attrs = {}} = {}) {
  return h('div', {class: 'field'},
    h('label', {for: `f-${id}`}, label),
    h('input', {id: `f-${id}`, name: id, type, value: value || '', placeholder, autocomplete: 'off',
      'aria-describedby': hint ? `f-${id}-hint` : null, ...attrs}),
    hint ? h('p', {class: 'hint', id: `f-${id}-hint`}, hint) : null);
}

function select(id, label, value, options) {
  return h('div', {class: 'field'},
    h('label', {for: `f-${id}`}, label),
    h('select', {id: `f-${id}`, name: id}, options.map(([v, text]) => h('option', {value: v, selected: v === (value || '')}, text))));
}

function actorText(actor) {
  if (!actor) return '';
  const parts = [];
  if (actor.user_id) parts.push(String(actor.user_id).startsWith('hmac-sha256:') ? `${short(actor.user_id, 20)}` : actor.user_id);
  if (actor.service) parts.push(`via ${actor.service}`);
  return parts.join(' ');
}

function row(r) {
  const model = [r.model?.name, r.model?.version].filter(Boolean).join(' ');
  const out = r.output?.sha256;
  const tags = Object.entries(r.tags || {});
  return h('tr', {dataset: {id: r.record_id}},
    h('td', {class: 'nowrap'}, h('time', {datetime: r.generated_at, title: `${r.generated_at} (${ago(r.generated_at)})`},
      humanTime(r.generated_at).replace(' UTC', '').replace(/ \d{4},/, ''))),
    h('td', {}, h('a', {href: `#/record/${encodeURIComponent(r.record_id)}`, class: 'slug'}, r.slug)),
    h('td', {}, model),
    h('td', {}, r.operation),
    h('td', {}, h('span', {class: `badge ${r.status === 'ok' ? 'ok' : 'bad'}`}, r.status)),
    h('td', {class: 'actor'}, actorText(r.actor)),
    h('td', {}, out ? h('code', {title: out}, short(out, 16)) : h('span', {class: 'muted'}, 'none')),
    h('td', {}, tags.map(([k, v]) => h('span', {class: 'tag'}, `${k}=${v}`))));
}

function table(records, caption) {
  return h('table', {class: 'results'},
    h('caption', {class: 'offscreen'}, caption),
    h('thead', {}, h('tr', {}, ['Generated (UTC)', 'Record', 'Model', 'Operation', 'Status', 'Actor', 'Output SHA-256', 'Tags']
      .map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, records.map(row)));
}

function apiParams(p) {
  const tags = (p.get('tags') || '').split(',').map((t) => t.trim()).filter(Boolean);
  return {
    model: p.get('model'), operation: p.get('operation'), actor: p.get('actor'), status: p.get('status'),
    since: p.get('since'), until: p.get('until'), output: (p.get('output') || '').toLowerCase(), tag: tags,
    limit: p.get('limit') || '25', order: p.get('order') || 'desc',
  };
}

export async function render(main, {params, alive}) {
  document.title = 'Search · provmark';
  const p = params;
  const results = h('div', {id: 'results'});
  const live = h('p', {class: 'offscreen', 'aria-live': 'polite', id: 'results-live'});
  const fileHint = h('p', {class: 'hint', id: 'f-file-hint'}, 'The file is hashed in this browser and never uploaded.');
  const file = h('input', {id: 'f-file', type: 'file', 'aria-describedby': 'f-file-hint'});
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Record filters'},
    h('fieldset', {},
      h('legend', {}, 'Find records'),
      h('div', {class: 'grid'},
        input('record', 'Record id or slug', p.get('record'), {placeholder: 'pm-20261125-c758ae', hint: 'Opens exactly this record; other filters are ignored.'}),
        input('model', 'Model', p.get('model'), {placeholder: 'provmark/markov-demo'}),
        input('operation', 'Operation', p.get('operation'), {placeholder: 'chat'}),
        input('actor', 'Actor (user id)', p.get('actor'), {hint: 'As stored: a user id, or its hmac-sha256 hash.'}),
        select('status', 'Status', p.get('status'), [['', 'Any'], ['ok', 'ok'], ['error', 'error']]),
        select('range', 'Time range', RANGES.some(([v]) => v === p.get('since')) ? p.get('since') : '', RANGES),
        input('since', 'From', p.get('since'), {placeholder: '2026-11-25T09:00:00Z or 6h', hint: 'RFC 3339 time, or an age: 30m, 6h, 2d.'}),
        input('until', 'Until', p.get('until'), {placeholder: '2026-11-25T18:00:00Z'}),
        input('tags', 'Tags', p.get('tags'), {placeholder: 'app=demo, team=risk', hint: 'key=value pairs, comma separated; all must match.'}),
        input('output', 'Output SHA-256', p.get('output'), {placeholder: '64 hex digits', attrs: {spellcheck: 'false', class: 'mono'}}),
        h('div', {class: 'field'}, h('label', {for: 'f-file'}, 'Or hash a file'), file, fileHint),
        select('limit', 'Rows per page', p.get('limit') || '25', [['10', '10'], ['25', '25'], ['50', '50'], ['100', '100']]),
        select('order', 'Order', p.get('order') || 'desc', [['desc', 'Newest first'], ['asc', 'Oldest first']])),
      h('div', {class: 'buttons'},
        h('button', {type: 'submit', class: 'primary'}, 'Search'),
        h('button', {type: 'button', id: 'clear'}, 'Clear'))));

  const rangeSelect = form.querySelector('#f-range');
  rangeSelect.addEventListener('change', () => { form.querySelector('#f-since').value = rangeSelect.value; });
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    fileHint.textContent = `Hashing ${f.name}…`;
    const digest = hex(await sha256(new Uint8Array(await f.arrayBuffer())));
    form.querySelector('#f-output').value = digest;
    fileHint.textContent = `SHA-256 of ${f.name}: filled in above. The file was not uploaded.`;
  });

  let loads = 0;
  async function load(current, cursors) {
    const mine = ++loads;
    const stale = () => mine !== loads || !alive();
    clear(results);
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    add(results, h('p', {class: 'muted'}, 'Searching…'));
    try {
      let records;
      let next = null;
      if (current.get('record')) {
        records = [await api(recordPath(current.get('record').trim()))];
      } else {
        const answer = await api(`/v1/records${query({...apiParams(current), cursor: cursors[cursors.length - 1]})}`);
        records = answer.records;
        next = answer.next_cursor;
      }
      if (stale()) return;
      clear(results);
      const limit = Number(current.get('limit') || 25);
      const first = cursors.length * limit + 1;
      const summary = records.length
        ? `Records ${number(first)}–${number(first + records.length - 1)}${next ? '' : ' (last page)'}`
        : 'No records match these filters.';
      live.textContent = records.length ? `${records.length} records shown. ${summary}.` : summary;
      add(results, h('h2', {id: 'results-heading', tabindex: -1}, summary));
      if (records.length) add(results, table(records, summary));
      const go = (list) => {
        const q = new URLSearchParams(current);
        if (list.length) q.set('page', list.join('.')); else q.delete('page');
        history.pushState(null, '', `#/search?${q}`);
        load(q, list);
      };
      if (!current.get('record') && (next || cursors.length)) {
        add(results, h('nav', {class: 'pager', 'aria-label': 'Pages'},
          h('button', {type: 'button', disabled: !cursors.length, onclick: () => go(cursors.slice(0, -1))}, '← Previous page'),
          h('span', {}, `Page ${cursors.length + 1}`),
          h('button', {type: 'button', disabled: !next, onclick: () => go([...cursors, next])}, 'Next page →')));
      }
    } catch (err) {
      if (stale()) return;
      clear(results);
      const field = (err.problem?.field || '').replace(/^query\./, '').replace(/^path\.record_id$/, 'record');
      const target = form.querySelector(`[name="${field === 'tag' ? 'tags' : field}"]`);
      if (target) target.setAttribute('aria-invalid', 'true');
      add(results, message('error', err.status === 404 && current.get('record')
        ? `No record “${current.get('record')}” in this store.` : err.text || String(err)));
      live.textContent = 'Search failed.';
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const name of FIELDS) {
      const el = form.elements.namedItem(name);
      const v = el ? el.value.trim() : '';
      if (v && !(name === 'limit' && v === '25') && !(name === 'order' && v === 'desc')) q.set(name, v);
    }
    history.pushState(null, '', `#/search${q.toString() ? `?${q}` : ''}`);
    load(q, []).then(() => results.querySelector('#results-heading')?.focus());
  });

  form.querySelector('#clear').addEventListener('click', () => {
    const defaults = {limit: '25', order: 'desc'};
    for (const el of form.querySelectorAll('input, select')) el.value = defaults[el.name] || '';
    fileHint.textContent = 'The file is hashed in this browser and never uploaded.';
    history.pushState(null, '', '#/search');
    load(new URLSearchParams(), []);
  });
  add(main, h('h1', {tabindex: -1}, 'Search records'), form, live, results);
  const cursors = (p.get('page') || '').split('.').filter(Boolean);
  await load(p, cursors);
}
