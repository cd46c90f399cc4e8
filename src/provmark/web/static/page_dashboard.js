// Dashboard: records per minute, totals by model and operation, the latest
// checkpoint and its age, capture and verification failures.

import {api, query} from './api.js';
import {h, add, clear, message, panel, number, duration, humanTime, CHECK_NAMES, shortTime, parseTime} from './dom.js';
import {rateChart, totalsTable} from './charts.js';

const WINDOWS = [['15m', '15 minutes'], ['1h', 'hour'], ['6h', '6 hours'], ['24h', '24 hours'], ['7d', '7 days']];
const REFRESH_MS = 15000;

function card(title, value, ...detail) {
  return h('section', {class: 'card', 'aria-label': title},
    h('h2', {}, title), h('p', {class: 'big'}, value), h('p', {class: 'small'}, ...detail));
}

function checkpointCard(cp) {
  if (!cp) return card('Latest checkpoint', '—', 'The log is empty: no checkpoint yet.');
  const age = cp.age_seconds;
  const stale = age !== null && age > 3600;
  return h('section', {class: `card${stale ? ' warn' : ''}`, 'aria-label': 'Latest checkpoint'},
    h('h2', {}, 'Latest checkpoint'),
    h('p', {class: 'big'}, age === null ? '—' : `${duration(age)} ago`),
    h('p', {class: 'small'}, `size ${number(cp.size)} · signed ${humanTime(cp.created_at)}`,
      stale ? h('span', {class: 'badge warn'}, ' no new checkpoint for over an hour') : null),
    h('p', {class: 'small'}, h('a', {href: '#/log'}, 'Open the log')));
}

function failuresPanel(data) {
  const f = data.failures;
  const verification = Object.entries(f.verification_failures);
  const failedVerifications = verification.reduce((n, [, v]) => n + v, 0);
  const rows = [
    ['Capture failures', f.capture, 'records the writer could not sign or store'],
    ['Store retries', f.writer_retries, 'store errors the writer retried'],
    ['Ingest batches refused', f.ingest_rejected, 'invalid or too large POST /v1/records'],
    ['Failed generations', f.error_records, h('span', {}, `records with status error in this window (`,
      h('a', {href: `#/search${query({status: 'error', since: data.window})}`}, 'show them'), ')')],
    ['Verifications that failed', failedVerifications,
      `of ${number((f.verifications.verified || 0) + (f.verifications.failed || 0))} verifications`],
    ...verification.map(([check, n]) => [h('span', {class: 'indent'}, `failed at ${CHECK_NAMES[check] || check}`), n, '']),
  ];
  return panel('Failures',
    h('table', {class: 'failures'},
      h('caption', {}, `Counted since this server started (${humanTime(f.since)}), except failed generations.`),
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'What'), h('th', {scope: 'col', class: 'num'}, 'Count'), h('th', {scope: 'col'}, 'Meaning'))),
      h('tbody', {}, rows.map(([what, n, meaning]) => h('tr', {class: n ? 'nonzero' : ''},
        h('th', {scope: 'row'}, what), h('td', {class: 'num'}, number(n)), h('td', {class: 'muted'}, meaning))))));
}

function deadLettersPanel(dead) {
  if (!dead || !dead.count) return null;
  return panel('Dead letters',
    h('table', {class: 'failures'},
      h('caption', {}, `${number(dead.count)} record(s) the store refused, set aside with the reason; the writer went on. Newest first (GET /v1/dead-letters).`),
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Record'), h('th', {scope: 'col'}, 'Last refused'),
        h('th', {scope: 'col', class: 'num'}, 'Times'), h('th', {scope: 'col'}, 'Reason'))),
      h('tbody', {}, dead.newest.map((d) => h('tr', {class: 'nonzero'},
        h('td', {}, h('code', {}, d.record_id)), h('td', {}, humanTime(d.at)),
        h('td', {class: 'num'}, number(d.times)), h('td', {class: 'muted'}, d.reason))))));
}

function dataTable(data) {
  const nonEmpty = data.series.filter((s) => s.count);
  return h('details', {class: 'alt'},
    h('summary', {}, 'Show the chart as a table'),
    h('table', {},
      h('caption', {}, `Buckets of ${duration(data.bucket_seconds)} with records`),
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'From (UTC)'), h('th', {scope: 'col', class: 'num'}, 'Records'),
        h('th', {scope: 'col', class: 'num'}, 'Failed'), h('th', {scope: 'col', class: 'num'}, 'Per minute'))),
      h('tbody', {}, nonEmpty.length ? nonEmpty.map((s) => h('tr', {},
        h('td', {}, humanTime(s.start)), h('td', {class: 'num'}, number(s.count)),
        h('td', {class: 'num'}, number(s.errors)), h('td', {class: 'num'}, s.per_minute))) :
        h('tr', {}, h('td', {colspan: 4}, 'No records in this window.')))));
}

function draw(body, data) {
  clear(body);
  const label = WINDOWS.find(([w]) => w === data.window)[1];
  const rate = `${number(data.records)} in the last ${label}`;
  const failures = data.failures.capture + data.failures.error_records +
    Object.values(data.failures.verification_failures).reduce((n, v) => n + v, 0);
  add(body, 
    h('div', {class: 'cards'},
      card('Records', number(data.totals.records), rate,
        data.pending ? ` · ${number(data.pending)} waiting to be stored` : ''),
      card('Peak rate', `${data.peak_per_minute} / min`, `busiest ${duration(data.bucket_seconds)} in the last ${label}`),
      checkpointCard(data.checkpoint),
      h('section', {class: `card${failures ? ' bad' : ''}`, 'aria-label': 'Failures'},
        h('h2', {}, 'Failures'), h('p', {class: 'big'}, number(failures)),
        h('p', {class: 'small'}, 'capture, failed generations and failed verifications; see below'))),
    panel(`Records per minute, last ${label}`,
      h('figure', {class: 'chart-figure'},
        rateChart(data.series, {
          title: `Records per minute over the last ${label}`,
          description: `${data.records} records; peak ${data.peak_per_minute} per minute; bars of ${duration(data.bucket_seconds)}` +
            ` from ${shortTime(parseTime(data.since))} to ${shortTime(parseTime(data.until))} UTC. Failed generations are stacked in red.`,
          bucketSeconds: data.bucket_seconds,
          width: document.getElementById('main').clientWidth,
        }),
        h('figcaption', {}, h('span', {class: 'key ok'}, 'stored'), h('span', {class: 'key err'}, 'failed generation'),
          data.truncated ? h('span', {class: 'badge warn'}, `only the newest ${number(data.records)} records were counted`) : '')),
      dataTable(data)),
    h('div', {class: 'two'},
      panel('By model', totalsTable(
        data.by_model.map((m) => ({...m, label: [m.name, m.version].filter(Boolean).join(' ')})),
        {caption: `Records per model, last ${label}`, name: 'Model', link: (m) => `#/search${query({model: m.name, since: data.window})}`})),
      panel('By operation', totalsTable(
        data.by_operation.map((o) => ({...o, label: o.operation})),
        {caption: `Records per operation, last ${label}`, name: 'Operation', link: (o) => `#/search${query({operation: o.operation, since: data.window})}`}))),
    failuresPanel(data),
    deadLettersPanel(data.dead_letters),
    h('p', {class: 'small muted'}, `Updated ${humanTime(new Date())}.`));
}

export async function render(main, {params, alive}) {
  document.title = 'Dashboard · provmark';
  let win = params.get('window') || '1h';
  if (!WINDOWS.some(([w]) => w === win)) win = '1h';
  const body = h('div', {'aria-live': 'off'});
  const status = h('div', {role: 'status', class: 'inline-status'});
  const select = h('select', {id: 'window'}, WINDOWS.map(([w, label]) => h('option', {value: w, selected: w === win}, `Last ${label}`)));
  const auto = h('input', {type: 'checkbox', id: 'auto', checked: true});
  const refresh = h('button', {type: 'button'}, 'Refresh');

  async function load(quiet = false) {
    if (!quiet) status.textContent = 'Loading…';
    try {
      const data = await api(`/v1/ui/dashboard${query({window: win})}`);
      if (!alive()) return;
      draw(body, data);
      status.textContent = '';
    } catch (err) {
      if (!alive()) return;
      status.textContent = '';
      add(clear(body), message('error', err.text || String(err)));
    }
  }

  select.addEventListener('change', () => {
    win = select.value;
    history.replaceState(null, '', `#/dashboard${query({window: win})}`);
    load();
  });
  refresh.addEventListener('click', () => load());
  add(main, 
    h('div', {class: 'page-head'},
      h('h1', {tabindex: -1}, 'Dashboard'),
      h('div', {class: 'controls'},
        h('label', {for: 'window'}, 'Time window'), select,
        h('span', {class: 'check'}, auto, h('label', {for: 'auto'}, 'Refresh every 15 s')),
        refresh, status)),
    body);
  await load();
  const timer = setInterval(() => {
    if (auto.checked && !document.hidden && alive()) load(true);
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
