// Record detail: integrity (checked by the server and again in this browser), the
// lineage graph, exports as downloads, and every field in readable and stored form.

import {api, download, recordPath, uiRecordPath, ApiError, query} from './api.js';
import {h, add, clear, message, panel, checksTable, humanTime, ago, copyButton} from './dom.js';
import {lineageGraph} from './lineage.js';
import {fieldSections} from './fields.js';
import {browserChecks, differences} from './browser_verify.js';

const EXPORTS = [
  ['bundle', 'Offline bundle', '.provmark.json', 'verifiable with no server: provmark verify FILE --bundle'],
  ['prov-json', 'W3C PROV-JSON', '.prov.json', 'the record and its ancestors'],
  ['prov-o', 'W3C PROV-O (Turtle)', '.prov.ttl', 'the record and its ancestors'],
  ['in-toto', 'in-toto (DSSE)', '.intoto.jsonl', 'signed attestation statements'],
  ['openlineage', 'OpenLineage', '.openlineage.jsonl', 'run events for lineage tools'],
];

function exportsPanel(record, session, hidden) {
  const status = h('div', {'aria-live': 'polite', class: 'inline-status'});
  const buttons = EXPORTS.map(([fmt, label, suffix, what]) => {
    const path = fmt === 'bundle' ? `${recordPath(record.record_id)}/bundle` : `${uiRecordPath(record.record_id)}/export/${fmt}`;
    const button = h('button', {type: 'button', class: 'download', dataset: {format: fmt}, disabled: hidden.length > 0,
      'aria-describedby': hidden.length ? 'exports-why' : null},
    h('span', {class: 'label'}, label), h('span', {class: 'file small muted'}, `${record.slug}${suffix}`));
    button.addEventListener('click', async () => {
      add(clear(status), `Preparing ${label}…`);
      try {
        const name = await download(path, `${record.slug}${suffix}`);
        add(clear(status), message('ok', `Downloaded ${name}.`));
      } catch (err) {
        add(clear(status), message('error', err instanceof ApiError ? err.text : String(err)));
      }
    });
    return h('li', {}, button, h('span', {class: 'small muted'}, ` ${what}`));
  });
  return panel('Exports',
    hidden.length ? h('p', {id: 'exports-why', class: 'message info'},
      `Exports and bundles carry the signed record as stored, including ${hidden.join(', ')}, which your role (${session.role}) sees changed. Ask an auditor.`) : null,
    h('ul', {class: 'downloads'}, buttons),
    status);
}

function integrityPanel(record, server, alive) {
  const local = h('div', {}, h('p', {class: 'muted'}, 'Checking…'));
  const note = h('div', {});
  const section = panel('Integrity',
    h('div', {class: 'two'},
      h('div', {}, h('h3', {}, 'Checked by the server'),
        h('p', {class: `verdict ${server.verified ? 'ok' : 'bad'}`, id: 'server-verdict'},
          server.verified ? 'Intact: signed, and included in the signed log.' : `Not intact: ${server.reason}`),
        checksTable(server.checks, 'Server checks of the stored record')),
      h('div', {}, h('h3', {}, 'Checked in this browser'), local)),
    note);
  const id = record.record_id;
  const done = (async () => {
    let proof = null;
    try {
      proof = await api(`${recordPath(id)}/proof`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
    let signed = null;
    let why = '';
    try {
      signed = await api(`${uiRecordPath(id)}/signed`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 403)) throw err;
      why = 'your role may not read the signed bytes (they hold data your view hides)';
    }
    const keys = (await api('/.well-known/provmark/keys')).keys;
    const checks = await browserChecks(signed, why, proof, keys);
    if (!alive()) return;
    const failed = checks.some((c) => c.result === 'fail');
    add(clear(local),
      h('p', {class: `verdict ${failed ? 'bad' : 'ok'}`, id: 'browser-verdict'},
        failed ? 'A check failed in this browser.' : 'No check failed in this browser.'),
      checksTable(checks, 'Checks recomputed in this browser'),
      proof ? h('details', {class: 'alt'}, h('summary', {}, `Inclusion proof (${proof.proof.length} hashes, tree size ${proof.tree_size})`),
        h('pre', {class: 'note'}, proof.checkpoint), copyButton(proof.checkpoint, 'signed checkpoint'),
        h('ol', {start: 0, class: 'proof'}, proof.proof.map((p) => h('li', {}, h('code', {}, p))))) : null);
    if (signed) {
      const diff = differences(record, JSON.parse(signed.payload));
      add(note,
        diff.length ? h('div', {class: 'message info', id: 'view-differs'}, h('strong', {}, 'The fields below are your view, not the signed bytes. '),
          `They differ at ${diff.join(', ')}: `, record.view === 'full'
            ? 'values the capture redacted or encrypted are shown decrypted for your role. '
            : 'your view hides personal data. ',
          'The signature and the log cover the signed bytes, shown under “The signed record”.') : null,
        h('details', {class: 'alt', id: 'signed-bytes'}, h('summary', {}, `The signed record (${signed.payload.length.toLocaleString('en')} bytes, RFC 8785)`),
          h('pre', {class: 'json'}, signed.payload), copyButton(signed.payload, 'signed record bytes')));
    }
  })().catch((err) => alive() && add(clear(local), message('error', err.text || String(err))));
  return {section, done};
}

function lineagePanel(record, alive) {
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading the lineage…'));
  const depth = h('select', {id: 'lineage-depth'}, [1, 2, 3, 4, 6].map((d) => h('option', {value: d, selected: d === 3}, `${d}`)));
  async function load() {
    try {
      const data = await api(`${uiRecordPath(record.record_id)}/lineage${query({depth: depth.value})}`);
      if (!alive()) return;
      add(clear(body), lineageGraph(data));
    } catch (err) {
      if (alive()) add(clear(body), message('error', err.text || String(err)));
    }
  }
  depth.addEventListener('change', load);
  const section = panel('Lineage',
    h('div', {class: 'controls'}, h('label', {for: 'lineage-depth'}, 'Steps to follow each way'), depth),
    body);
  return {section, done: load()};
}

export async function render(main, {arg, session, alive}) {
  document.title = 'Record · provmark';
  let record;
  let server;
  try {
    [record, server] = await Promise.all([api(recordPath(arg)), api(`${uiRecordPath(arg)}/checks`)]);
  } catch (err) {
    add(main, h('h1', {tabindex: -1}, 'Record'), message('error', err.status === 404 ? `No record “${arg}” in this store.` : err.text || String(err)));
    return null;
  }
  if (!alive()) return null;
  document.title = `${record.slug} · provmark`;
  const hidden = server.sanitized_fields || [];
  const model = [record.model?.name, record.model?.version].filter(Boolean).join(' ');
  const integrity = integrityPanel(record, server, alive);
  const lineage = lineagePanel(record, alive);
  add(main,
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '#/search'}, 'Search'), ' / ', record.slug),
    h('div', {class: 'page-head'},
      h('h1', {tabindex: -1}, 'Record ', h('span', {class: 'slug'}, record.slug)),
      h('span', {class: `badge ${record.status === 'ok' ? 'ok' : 'bad'}`}, `status ${record.status}`),
      h('span', {class: `badge ${record.view === 'full' ? 'muted' : 'info'}`, id: 'view-badge'}, `${record.view} view`)),
    h('p', {class: 'lead'},
      h('strong', {}, record.operation), ' by ', h('strong', {}, model || 'unknown model'),
      `, ${humanTime(record.generated_at)} (${ago(record.generated_at)})`,
      record.output?.sha256 ? [' · output ', h('code', {class: 'hash'}, record.output.sha256)] : ''),
    hidden.length
      ? message('info', `Sanitized view: ${hidden.join(', ')} ${hidden.length > 1 ? 'are' : 'is'} shown changed for your role (personal data removed, user ids as keyed hashes).`) : null,
    integrity.section,
    lineage.section,
    exportsPanel(record, session, hidden),
    panel('Fields', h('p', {class: 'small muted'}, 'Every field of the record as your role sees it: a readable form, and the stored form where it differs (hashes in full).'),
      ...fieldSections(record, hidden),
      h('details', {class: 'alt'}, h('summary', {}, 'The record as JSON'),
        h('pre', {class: 'json'}, JSON.stringify(record, null, 2)), copyButton(JSON.stringify(record, null, 2), 'record JSON'))));
  await Promise.all([integrity.done, lineage.done]);
  return null;
}
