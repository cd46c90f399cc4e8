// When the exact check finds no record for the content, offer the fuzzy lookup
// (POST /v1/verify/fuzzy): the records an edited, quoted or re-encoded copy may come from.
// A match is shown as "derived from": a lead to follow, never a proof.

import {ApiError} from './api.js';
import {h, add, clear, message} from './dom.js';

const pct = (x) => `${Math.round(x * 100)}%`;

function matchItem(m) {
  const model = [m.model, m.model_version].filter(Boolean).join(' ');
  const record = m.record_verified
    ? h('span', {class: 'badge ok'}, 'record signed and logged')
    : h('span', {class: 'badge bad'}, `record FAILED ${m.record_problem || 'its checks'}`);
  const cover = m.coverage !== undefined ? `, ${pct(m.coverage)} of this content found in it` : '';
  return h('li', {class: 'fuzzy-match', 'data-record': m.record_id},
    h('p', {},
      h('span', {class: 'badge warn'}, 'lead, not proof'), ' Derived from ',
      h('a', {href: `#/record/${encodeURIComponent(m.record_id)}`}, m.slug),
      model ? ` (${model})` : '', ' ', record),
    h('p', {class: 'small'},
      `Similarity ${m.similarity.toFixed(2)}${cover} · ${m.method}`),
    m.parts.length
      ? h('ul', {class: 'small fuzzy-parts'}, m.parts.slice(0, 5).map((p) => h('li', {}, p.detail)))
      : null);
}

function showResult(box, result) {
  clear(box);
  add(box, h('h2', {}, 'Derived from?'));
  if (result.status === 'identical') {
    add(box, message('ok', result.detail));
    return;
  }
  if (result.status !== 'derived') {
    add(box, h('p', {id: 'fuzzy-none'}, result.status === 'too_short'
      ? `Too little to compare: ${result.detail}.`
      : 'No recorded output resembles this content.'));
    return;
  }
  add(box,
    message('warn', h('strong', {}, 'A lead, not a proof. '),
      'Fingerprints say this content resembles the outputs below. Each record is itself ' +
      'signed and logged, but the link between this content and a record is an estimate: ' +
      'edits can hide a source and unrelated texts can share phrases. Only the exact check proves.'),
    h('ol', {id: 'fuzzy-matches', class: 'fuzzy-matches'}, result.matches.map(matchItem)));
}

// `send` returns the answer of POST /v1/verify/fuzzy for the content just checked.
export function fuzzyOffer(send) {
  const box = h('section', {class: 'panel', id: 'fuzzy-offer', 'aria-live': 'polite'});
  const button = h('button', {type: 'button', id: 'fuzzy-button'}, 'Look for the record it may come from');
  add(box,
    h('h2', {}, 'Edited copy?'),
    h('p', {class: 'hint'},
      'The exact check finds byte-identical outputs only. Fingerprints taken at capture can ' +
      'find the record that an edited, quoted or re-encoded copy came from, as a lead.'),
    button);
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = 'Looking…';
    try {
      showResult(box, await send());
    } catch (err) {
      add(clear(box), h('h2', {}, 'Derived from?'),
        message('error', err instanceof ApiError ? err.text : String(err)));
    }
  });
  return box;
}
