// Verify: drop a file or paste text; every check passes or fails with its reason.
// Media that carry a C2PA manifest (embedded, or a .c2pa sidecar) show the manifest.

import {api, ApiError} from './api.js';
import {h, add, clear, message, panel, checksTable, humanTime, short, bytes} from './dom.js';
import {fuzzyOffer} from './fuzzy_offer.js';

// first bytes of the formats C2PA embeds into
function looksLikeMedia(head) {
  const s = String.fromCharCode(...head.slice(0, 12));
  return s.startsWith('\x89PNG') || (head[0] === 0xff && head[1] === 0xd8) ||
    (s.startsWith('RIFF') && s.slice(8, 12) === 'WEBP') || s.startsWith('GIF8') ||
    s.startsWith('II*\0') || s.startsWith('MM\0*') || s.slice(4, 8) === 'ftyp';
}

function recordSummary(r) {
  if (!r) return null;
  const model = [r.model?.name, r.model?.version].filter(Boolean).join(' ');
  const who = r.actor?.user_id ? ` for ${r.actor.user_id}` : '';
  return h('p', {class: 'record-link'},
    'Made by ', h('strong', {}, model), ` (${r.operation}), ${humanTime(r.generated_at)}${who}. `,
    h('a', {href: `#/record/${encodeURIComponent(r.record_id)}`}, `Open record ${r.slug}`));
}

function manifestPanel(c2pa) {
  const m = c2pa.manifest;
  const rows = [];
  const add = (k, v) => v !== undefined && v !== null && v !== '' && rows.push([k, v]);
  add('Validation state', h('span', {class: `badge ${m.ok ? 'ok' : 'bad'}`}, m.state));
  add('Where', m.embedded ? 'embedded in the file' : 'sidecar .c2pa file');
  const signer = m.signer || {};
  add('Signed by', [signer.issuer, signer.common_name, signer.alg].filter(Boolean).join(' · ') || null);
  add('Signed at', signer.time ? humanTime(signer.time) : null);
  add('Claim generator', (m.claim_generator || []).map((g) => [g.name, g.version].filter(Boolean).join(' ')).join(', '));
  for (const a of m.actions || []) {
    add(`Action ${a.action}`, [
      a.softwareAgent?.name ? `by ${a.softwareAgent.name}${a.softwareAgent.version ? ` ${a.softwareAgent.version}` : ''}` : '',
      a.when ? ` at ${humanTime(a.when)}` : '',
      a.digitalSourceType ? ` · source: ${a.digitalSourceType.split('/').pop()}` : ''].join(''));
  }
  const d = m.disclosure || {};
  if (Object.keys(d).length) {
    add('AI disclosure (SB 942)', `${d.ai_generated ? 'AI generated' : 'not marked as AI generated'}; provider ${d.provider || '?'}; ` +
      `system ${d.system_name || '?'} ${d.system_version || ''}; created ${d.created_at ? humanTime(d.created_at) : '?'}`);
  }
  const rec = m.record || {};
  if (rec.record_id) {
    add('provmark record', h('span', {}, h('a', {href: `#/record/${encodeURIComponent(rec.record_id)}`}, rec.record_id),
      ` · log index ${rec.log_index} · record hash `, h('code', {class: 'hash'}, rec.record_hash)));
  }
  for (const i of m.ingredients || []) add('Ingredient', `${i.title || '?'} (${i.relationship || '?'})`);
  for (const f of m.failures || []) add('Failure', `${f.code}: ${f.explanation}`);
  return panel('C2PA manifest',
    h('table', {class: 'kv', id: 'c2pa-manifest'},
      h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', {scope: 'row'}, k), h('td', {}, v))))));
}

function showAnswer(out, answer, c2pa, label, fuzzy) {
  clear(out);
  const viaManifest = !answer.verified && c2pa?.verified;
  const verified = answer.verified || viaManifest;
  add(out, h('h2', {id: 'verdict', tabindex: -1, class: `verdict ${verified ? 'ok' : 'bad'}`},
    h('span', {'aria-hidden': 'true'}, verified ? '✓ ' : '✗ '),
    verified ? `Verified: ${label}` : `Not verified: ${label}`));
  add(out, h('p', {}, 'SHA-256 of the content: ', h('code', {class: 'hash', id: 'content-sha'}, answer.content_sha256)));
  if (answer.verified) {
    add(out, recordSummary(answer.record));
  } else if (viaManifest) {
    add(out, message('info', 'These bytes are not the recorded output, because the C2PA manifest was added to the file after generation. ' +
      'The manifest is intact and names a record in this log, which verifies.'), recordSummary(c2pa.record));
  } else {
    add(out, h('p', {class: 'reason', id: 'fail-reason'}, h('strong', {}, `Failed check: ${answer.failed_check}. `), answer.reason));
    if (fuzzy && answer.failed_check === 'output_hash') add(out, fuzzyOffer(fuzzy));
  }
  add(out, checksTable(answer.checks, 'Checks of the content against this log'));
  if (c2pa && c2pa.found) {
    add(out, checksTable(c2pa.checks, 'Checks through the C2PA manifest'), manifestPanel(c2pa));
  } else if (c2pa && !c2pa.found && !answer.verified) {
    add(out, h('p', {class: 'small muted'}, `C2PA: ${c2pa.reason}`));
  }
}

export async function render(main) {
  document.title = 'Verify · provmark';
  const out = h('div', {id: 'verify-result', 'aria-live': 'polite'});
  const recordId = h('input', {id: 'v-record', type: 'text', autocomplete: 'off', placeholder: 'pm-20261125-c758ae'});
  const trusted = h('textarea', {id: 'v-trusted', rows: 4, spellcheck: 'false', class: 'mono', placeholder: 'an older signed checkpoint note'});
  const sidecar = h('input', {id: 'v-sidecar', type: 'file', accept: '.c2pa'});
  const file = h('input', {id: 'v-file', type: 'file', class: 'file-input', 'aria-describedby': 'v-file-hint'});
  const fileName = h('span', {id: 'v-file-name', class: 'small'});
  const text = h('textarea', {id: 'v-text', rows: 7, 'aria-describedby': 'v-text-hint'});

  function options() {
    const o = {};
    if (recordId.value.trim()) o.record_id = recordId.value.trim();
    if (trusted.value.trim()) o.trusted_checkpoint = `${trusted.value.trim()}\n`;
    return o;
  }

  async function run(label, send, fuzzy) {
    add(clear(out), h('p', {class: 'muted'}, `Checking ${label}…`));
    try {
      const [answer, c2pa] = await send();
      showAnswer(out, answer, c2pa, label, fuzzy);
    } catch (err) {
      add(clear(out), message('error', err instanceof ApiError ? err.text : String(err)));
    }
    out.querySelector('#verdict')?.focus();
  }

  async function verifyFile(f) {
    fileName.textContent = `${f.name} (${bytes(f.size)})`;
    await run(f.name, async () => {
      const form = new FormData();
      form.append('file', f, f.name);
      for (const [k, v] of Object.entries(options())) form.append(k, v);
      const answer = await api('/v1/verify', {method: 'POST', body: form});
      let c2pa = null;
      const head = new Uint8Array(await f.slice(0, 16).arrayBuffer());
      const side = sidecar.files[0];
      if (side || (!answer.verified && answer.failed_check === 'output_hash' && looksLikeMedia(head))) {
        const cform = new FormData();
        cform.append('file', f, f.name);
        if (side) cform.append('sidecar', side, `${f.name}.c2pa`);
        try {
          c2pa = await api('/v1/ui/c2pa', {method: 'POST', body: cform});
        } catch (err) {
          c2pa = {found: false, reason: err instanceof ApiError ? err.text : String(err)};
        }
      }
      return [answer, c2pa];
    }, () => {
      const form = new FormData();
      form.append('file', f, f.name);
      return api('/v1/verify/fuzzy', {method: 'POST', body: form});
    });
  }

  file.addEventListener('change', () => file.files[0] && verifyFile(file.files[0]));
  const zone = h('label', {class: 'dropzone', id: 'dropzone'},
    file,
    h('span', {class: 'big'}, 'Drop a file here'),
    h('span', {}, 'or press to choose one (images, documents, any bytes)'),
    fileName);
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add('over'); });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) verifyFile(f);
  });

  const textForm = h('form', {id: 'text-form'},
    h('label', {for: 'v-text'}, 'Paste the text'),
    text,
    h('p', {class: 'hint', id: 'v-text-hint'}, 'Paste it exactly: one changed character, space or line break makes a different hash.'),
    h('button', {type: 'submit', class: 'primary'}, 'Verify text'));
  textForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!text.value) {
      text.setAttribute('aria-invalid', 'true');
      add(clear(out), message('error', 'Paste some text to verify.'));
      text.focus();
      return;
    }
    text.removeAttribute('aria-invalid');
    run(`pasted text (${short(text.value.replace(/\s+/g, ' '), 40)})`,
      async () => [await api('/v1/verify', {method: 'POST', body: {text: text.value, ...options()}}), null],
      ((pasted) => () => api('/v1/verify/fuzzy', {method: 'POST', body: {text: pasted}}))(text.value));
  });

  add(main, 
    h('h1', {tabindex: -1}, 'Verify content'),
    h('p', {class: 'lead'}, 'Was this made here, by what, and is it intact? The server hashes the content and checks the record, its signature, the key and the log.'),
    h('div', {class: 'two'},
      h('section', {class: 'panel', 'aria-label': 'Verify a file'}, h('h2', {}, 'A file'), zone,
        h('p', {class: 'hint', id: 'v-file-hint'}, 'The file is sent to this server to be hashed, and is not stored.')),
      h('section', {class: 'panel', 'aria-label': 'Verify text'}, h('h2', {}, 'Text'), textForm)),
    h('details', {class: 'panel advanced'},
      h('summary', {}, 'Options: a record id, an older checkpoint, a C2PA sidecar'),
      h('div', {class: 'grid'},
        h('div', {class: 'field'}, h('label', {for: 'v-record'}, 'Check against this record only'), recordId),
        h('div', {class: 'field'}, h('label', {for: 'v-trusted'}, 'Trusted older checkpoint (also checks the log only grew)'), trusted),
        h('div', {class: 'field'}, h('label', {for: 'v-sidecar'}, 'C2PA sidecar manifest (.c2pa) for the file'), sidecar))),
    out);
}
