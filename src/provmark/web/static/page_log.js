// The log: the latest signed checkpoint, checkpoints over time, and a consistency
// check between two chosen sizes, recomputed in this browser.

import {api, query} from './api.js';
import {h, add, clear, message, panel, checksTable, humanTime, ago, number, copyButton} from './dom.js';
import {sizeChart} from './charts.js';
import {b64decode, hex, parseCheckpoint, verifyConsistency, verifyNote} from './merkle.js';

function noteResult(check, r) {
  return {check, result: r.ok === true ? 'pass' : r.ok === false ? 'fail' : 'unknown', detail: r.reason};
}

async function latestPanel(latest, alive) {
  const sig = await verifyNote(latest.note, latest.log_key);
  if (!alive()) return null;
  return panel('Latest checkpoint',
    h('table', {class: 'kv', id: 'latest-checkpoint'}, h('tbody', {},
      h('tr', {}, h('th', {scope: 'row'}, 'Size'), h('td', {}, `${number(latest.size)} records`)),
      h('tr', {}, h('th', {scope: 'row'}, 'Signed'), h('td', {}, `${humanTime(latest.created_at)} (${ago(latest.created_at)})`)),
      h('tr', {}, h('th', {scope: 'row'}, 'Root hash'), h('td', {},
        h('code', {class: 'hash'}, latest.root), copyButton(latest.root, 'root hash'),
        h('br'), h('span', {class: 'small muted'}, 'hex '), h('code', {class: 'hash small'}, hex(b64decode(latest.root))))),
      h('tr', {}, h('th', {scope: 'row'}, 'Origin'), h('td', {}, h('code', {}, latest.origin))),
      h('tr', {}, h('th', {scope: 'row'}, 'Log key'), h('td', {}, h('code', {class: 'hash'}, latest.log_key), copyButton(latest.log_key, 'log key'))),
      h('tr', {}, h('th', {scope: 'row'}, 'Signature'), h('td', {}, checksTable([noteResult('checkpoint_signature', sig)]))))),
    h('details', {class: 'alt'}, h('summary', {}, 'The signed note (C2SP checkpoint)'),
      h('pre', {class: 'note'}, latest.note), copyButton(latest.note, 'signed checkpoint')));
}

function historyPanel(list) {
  const oldestFirst = [...list.checkpoints].reverse();
  return panel('Checkpoints over time',
    oldestFirst.length > 1
      ? h('figure', {class: 'chart-figure'}, sizeChart(oldestFirst, {
        title: 'Log size at each signed checkpoint',
        width: document.getElementById('main').clientWidth,
        description: `${oldestFirst.length} checkpoints from size ${oldestFirst[0].size} to ${oldestFirst[oldestFirst.length - 1].size}; the line only goes up in a healthy log.`,
      }), h('figcaption', {}, list.complete ? `All ${list.checkpoints.length} checkpoints.` : `The newest ${list.checkpoints.length} checkpoints.`))
      : h('p', {class: 'muted'}, 'Only one checkpoint so far.'),
    h('details', {class: 'alt'}, h('summary', {}, 'Checkpoints as a table'),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {scope: 'col', class: 'num'}, 'Size'), h('th', {scope: 'col'}, 'Signed (UTC)'), h('th', {scope: 'col'}, 'Root hash'))),
        h('tbody', {}, list.checkpoints.map((c) => h('tr', {},
          h('td', {class: 'num'}, number(c.size)), h('td', {}, humanTime(c.created_at)), h('td', {}, h('code', {class: 'hash'}, c.root))))))));
}

function consistencyPanel(list, alive) {
  const sizes = list.checkpoints.map((c) => c.size);
  const older = h('select', {id: 'c-from', name: 'from'}, sizes.map((s, i) => h('option', {value: s, selected: i === sizes.length - 1}, number(s))));
  const newer = h('select', {id: 'c-to', name: 'to'}, sizes.map((s, i) => h('option', {value: s, selected: i === 0}, number(s))));
  const out = h('div', {id: 'consistency-result', 'aria-live': 'polite'});
  const form = h('form', {class: 'inline'},
    h('div', {class: 'field'}, h('label', {for: 'c-from'}, 'Older size'), older),
    h('div', {class: 'field'}, h('label', {for: 'c-to'}, 'Newer size'), newer),
    h('button', {type: 'submit', class: 'primary'}, 'Check consistency'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const from = Number(older.value);
    const to = Number(newer.value);
    add(clear(out), h('p', {class: 'muted'}, 'Checking…'));
    try {
      if (from > to) throw new Error(`the older size (${from}) must not be larger than the newer size (${to})`);
      const proof = await api(`/v1/checkpoints/consistency${query({from, to})}`);
      const checks = [];
      let roots = null;
      for (const [key, size, label] of [['from_checkpoint', from, 'Older'], ['to_checkpoint', to, 'Newer']]) {
        const note = proof[key];
        if (!note) {
          checks.push({check: `${label} checkpoint`, result: 'fail', detail: `no signed checkpoint of size ${size}`});
          continue;
        }
        const cp = parseCheckpoint(note);
        const sig = await verifyNote(note, list.log_key);
        checks.push({...noteResult('checkpoint_signature', sig), check: `${label} checkpoint signature`,
          detail: `size ${cp.size}: ${sig.reason}`});
        if (cp.size !== size) checks.push({check: `${label} checkpoint size`, result: 'fail', detail: `the note is for size ${cp.size}, not ${size}`});
        roots = roots || {};
        roots[label.toLowerCase()] = cp.root;
      }
      if (roots?.older && roots?.newer) {
        const r = await verifyConsistency(from, to, proof.proof.map(b64decode), roots.older, roots.newer);
        checks.push({check: 'consistency', result: r.ok ? 'pass' : 'fail', detail: r.reason});
      } else {
        checks.push({check: 'consistency', result: 'not_run', detail: 'not run: a checkpoint is missing'});
      }
      if (!alive()) return;
      const ok = checks.every((c) => c.result === 'pass');
      add(clear(out), 
        h('p', {class: `verdict ${ok ? 'ok' : 'bad'}`, id: 'consistency-verdict'},
          ok ? `Consistent: the log at size ${number(to)} contains the log at size ${number(from)} unchanged.`
            : 'Not shown consistent: see the failed check.'),
        checksTable(checks, `Consistency from size ${from} to ${to}, checked in this browser`),
        h('details', {class: 'alt'}, h('summary', {}, `The proof (${proof.proof.length} hashes)`),
          h('ol', {start: 0, class: 'proof'}, proof.proof.map((p) => h('li', {}, h('code', {}, p))))));
    } catch (err) {
      if (alive()) add(clear(out), message('error', err.text || err.message || String(err)));
    }
  });
  return panel('Consistency between two sizes',
    h('p', {class: 'small'}, 'Choose two signed checkpoints. This browser checks both signatures with the log key and recomputes the RFC 9162 consistency proof: ' +
      'if it holds, nothing in the older log was changed or removed.'),
    form, out);
}

export async function render(main, {alive}) {
  document.title = 'Log · provmark';
  add(main, h('h1', {tabindex: -1}, 'Transparency log'));
  let latest;
  try {
    latest = await api('/v1/checkpoints/latest');
  } catch (err) {
    add(main, message(err.status === 404 ? 'info' : 'error', err.status === 404 ? 'The log is empty: no checkpoint yet.' : err.text));
    return null;
  }
  const list = await api(`/v1/ui/checkpoints${query({limit: 500})}`);
  const first = await latestPanel(latest, alive);
  if (!alive()) return null;
  add(main, first, historyPanel(list), consistencyPanel(list, alive));
  return null;
}
