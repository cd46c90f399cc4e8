// AI disclosure: coverage of the EU AI Act Art. 50(2) / SB 942 fields over a period
// (GET /v1/disclosure/report, a chart per day), and the disclosure of one file
// (POST /v1/disclose): each field with its sources, whether signed, and the verdict.

import {api, query} from './api.js';
import {h, svg, add, clear, message, panel, number, checksTable} from './dom.js';

const PERIODS = [['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days']];
// series drawn side by side per day: [key, label, fill]
const SERIES = [
  ['captured', 'outputs captured', '#1d4ed8'],
  ['marked', 'with manifest or sidecar', '#0f766e'],
  ['complete', 'with all SB 942 fields', '#7c3aed'],
  ['failures', 'failures', '#b91c1c'],
];

function card(title, value, detail, warn = false) {
  return h('section', {class: `card${warn ? ' warn' : ''}`, 'aria-label': title},
    h('h2', {}, title), h('p', {class: 'big'}, value), h('p', {class: 'small'}, detail));
}

const pct = (v) => (v === null || v === undefined ? '—' : `${v}%`);

export function coverageChart(days) {
  const W = 960;
  const H = 260;
  const m = {top: 16, right: 16, bottom: 40, left: 56};
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const peak = Math.max(1, ...days.flatMap((d) => SERIES.map(([k]) => d[k])));
  const y = (v) => m.top + ih - (v / peak) * ih;
  const bw = iw / Math.max(1, days.length);
  const parts = [
    svg('title', {id: 'coverage-t'}, 'Disclosure coverage per day'),
    svg('desc', {id: 'coverage-d'}, 'For each day: outputs captured, marked with a C2PA manifest or sidecar, carrying every SB 942 field, and failures.'),
  ];
  for (const v of [0, peak / 2, peak]) {
    parts.push(svg('line', {class: 'grid', x1: m.left, x2: W - m.right, y1: y(v), y2: y(v)}));
    parts.push(svg('text', {class: 'tick', x: m.left - 8, y: y(v) + 4, 'text-anchor': 'end'}, String(Math.round(v))));
  }
  const every = Math.max(1, Math.ceil(days.length / 10));
  days.forEach((d, i) => {
    const x = m.left + i * bw;
    const label = `${d.day}: ${SERIES.map(([k, name]) => `${d[k]} ${name}`).join(', ')}`;
    const g = svg('g', {class: 'bar day', 'data-day': d.day}, svg('title', {}, label));
    const w = (bw * 0.8) / SERIES.length;
    SERIES.forEach(([k, , fill], j) => {
      if (d[k] > 0) {
        g.append(svg('rect', {class: `s-${k}`, fill, x: x + bw * 0.1 + j * w, width: w, y: y(d[k]), height: y(0) - y(d[k])}));
      }
    });
    parts.push(g);
    if (i % every === 0) {
      parts.push(svg('text', {class: 'tick', x: x + bw / 2, y: H - m.bottom + 18, 'text-anchor': 'middle'}, d.day.slice(5)));
    }
  });
  parts.push(svg('line', {class: 'axis', x1: m.left, x2: W - m.right, y1: y(0), y2: y(0)}));
  parts.push(svg('text', {class: 'axis-label', x: m.left + iw / 2, y: H - 4, 'text-anchor': 'middle'}, 'day (UTC)'));
  return svg('svg', {class: 'chart coverage', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'coverage-t coverage-d'}, ...parts);
}

function legend() {
  return h('figcaption', {}, SERIES.map(([, name, fill]) => h('span', {},
    svg('svg', {width: 12, height: 12, 'aria-hidden': 'true'}, svg('rect', {width: 12, height: 12, fill})), ` ${name}`)));
}

function drawReport(body, r) {
  const failures = r.failures.generations + r.failures.markings;
  const missing = Object.entries(r.missing_fields);
  const busy = r.days.filter((d) => d.captured || d.failures);
  add(clear(body),
    h('div', {class: 'cards'},
      card('Outputs captured', number(r.outputs_captured), `${number(r.records)} records in the period`),
      card('With manifest or sidecar', pct(r.percent_marked),
        `${number(r.with_manifest_or_sidecar)} (embedded ${number(r.with_manifest_embedded)}, sidecar ${number(r.with_sidecar)})`,
        r.outputs_captured > 0 && r.with_manifest_or_sidecar < r.outputs_captured),
      card('With all SB 942 fields', pct(r.percent_sb942_complete), `${number(r.with_all_sb942_fields)} signed in their records`,
        r.with_all_sb942_fields < r.outputs_captured),
      card('Failures', number(failures), `${number(r.failures.generations)} generations, ${number(r.failures.markings)} markings`, failures > 0)),
    panel('Per day', h('figure', {class: 'chart-figure'}, coverageChart(r.days), legend()),
      h('details', {class: 'alt'}, h('summary', {}, 'Show the chart as a table'),
        h('table', {class: 'coverage-days'},
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Day'), SERIES.map(([, name]) => h('th', {scope: 'col', class: 'num'}, name)))),
          h('tbody', {}, busy.length ? busy.map((d) => h('tr', {}, h('td', {}, d.day), SERIES.map(([k]) => h('td', {class: 'num'}, number(d[k]))))) :
            h('tr', {}, h('td', {colspan: 5}, 'No records in this period.')))))),
    panel('Missing fields', missing.length ?
      h('table', {class: 'missing-fields'}, h('tbody', {}, missing.map(([name, n]) => h('tr', {}, h('th', {scope: 'row'}, name), h('td', {class: 'num'}, number(n)))))) :
      h('p', {}, 'No captured output lacks an SB 942 field.')),
    r.truncated ? message('warn', 'More records than the report reads: the counts are partial.') : null);
}

function fieldsTable(d) {
  return h('table', {class: 'disclosure-fields'},
    h('caption', {}, 'Each field, every place that states it, and whether that place is signed'),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Field'), h('th', {scope: 'col'}, 'Value'), h('th', {scope: 'col'}, 'Sources'))),
    h('tbody', {}, d.fields.map((f) => h('tr', {class: f.present ? '' : 'missing'},
      h('th', {scope: 'row', title: f.law}, f.name),
      h('td', {}, f.present ? String(f.value) : h('span', {class: 'badge bad'}, 'missing')),
      h('td', {}, f.sources.map((s) => h('div', {}, `${s.where} `,
        h('span', {class: `badge ${s.signed ? 'ok' : 'bad'}`}, s.signed ? 'signed' : 'not signed'),
        s.signer ? ` by ${s.signer}` : '')))))));
}

function drawDisclosure(out, d) {
  const v = d.verdict;
  const kind = v.status === 'verified' ? 'ok' : 'error';
  const text = {verified: 'Verified', not_verified: 'Not verified', no_record: 'No record states this content'}[v.status];
  add(clear(out),
    message(kind, h('strong', {class: 'verdict-text'}, text), v.reason ? ` — ${v.failed_check || ''}: ${v.reason}` : ''),
    h('p', {}, `Marking: ${d.marking}`, d.record_id ? ['. Record ', h('a', {href: `#/record/${encodeURIComponent(d.record_id)}`}, d.slug)] : '',
      `. ${d.complete ? 'Every SB 942 field is present and signed.' : `Missing: ${d.missing.join(', ') || 'none'}.`}`),
    fieldsTable(d),
    v.checks.length ? checksTable(v.checks, 'Verification checks') : null);
}

export async function render(main, {params, alive}) {
  document.title = 'Disclosure · provmark';
  let since = params.get('since') || '30d';
  if (!PERIODS.some(([p]) => p === since)) since = '30d';
  const body = h('div', {});
  const status = h('div', {role: 'status', class: 'inline-status'});
  const select = h('select', {id: 'period'}, PERIODS.map(([p, label]) => h('option', {value: p, selected: p === since}, `Last ${label}`)));
  const file = h('input', {type: 'file', id: 'disclose-file'});
  const out = h('div', {id: 'disclose-result', 'aria-live': 'polite'});

  async function load() {
    status.textContent = 'Loading…';
    try {
      const r = await api(`/v1/disclosure/report${query({since})}`);
      if (!alive()) return;
      drawReport(body, r);
      status.textContent = '';
    } catch (err) {
      if (!alive()) return;
      status.textContent = '';
      add(clear(body), message('error', err.text || String(err)));
    }
  }
  select.addEventListener('change', () => {
    since = select.value;
    history.replaceState(null, '', `#/disclosure${query({since})}`);
    load();
  });
  file.addEventListener('change', async () => {
    if (!file.files.length) return;
    add(clear(out), h('p', {class: 'muted'}, 'Reading…'));
    const form = new FormData();
    form.append('file', file.files[0], file.files[0].name);
    try {
      drawDisclosure(out, await api('/v1/disclose', {method: 'POST', body: form}));
    } catch (err) {
      add(clear(out), message('error', err.text || String(err)));
    }
  });
  add(main,
    h('div', {class: 'page-head'},
      h('h1', {tabindex: -1}, 'AI disclosure'),
      h('div', {class: 'controls'}, h('label', {for: 'period'}, 'Period'), select, status)),
    h('p', {class: 'muted'}, 'EU AI Act Art. 50(2): outputs marked machine-readably as AI-generated. ' +
      'California SB 942 / AB 853: provider, system name and version, time of creation, unique identifier.'),
    body,
    panel('Disclose one output', h('label', {for: 'disclose-file'}, 'A generated file (text or media, marked or not) '), file, out));
  await load();
  return null;
}
