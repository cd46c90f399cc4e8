// Sign in with an API token. The role of the token decides what the pages show.

import {auth} from './api.js';
import {h, add, clear, message} from './dom.js';

export function render(main, {error, done}) {
  clear(main);
  document.title = 'Sign in · provmark';
  const status = h('div', {id: 'signin-status', 'aria-live': 'polite'});
  if (error) add(status, message('error', error));
  const token = h('input', {
    id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'token-hint', placeholder: 'pmk_…',
  });
  const reason = h('input', {id: 'reason', name: 'reason', type: 'text', autocomplete: 'off', 'aria-describedby': 'reason-hint', maxlength: 500});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Sign in');
  const form = h('form', {class: 'signin', novalidate: true},
    h('div', {class: 'field'},
      h('label', {for: 'token'}, 'API token'),
      token,
      h('p', {id: 'token-hint', class: 'hint'},
        'Make one with ', h('code', {}, 'provmark tokens create --role auditor'),
        ' (or developer, admin). It is kept in this browser tab only and sent to this server only.')),
    h('div', {class: 'field'},
      h('label', {for: 'reason'}, 'Reason for access ', h('span', {class: 'muted'}, '(optional)')),
      reason,
      h('p', {id: 'reason-hint', class: 'hint'},
        'Auditors: written to the audit log with every full-data read (for example a case number).')),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(status);
    const value = token.value.trim();
    if (!value) {
      token.setAttribute('aria-invalid', 'true');
      add(status, message('error', 'Enter an API token.'));
      token.focus();
      return;
    }
    token.removeAttribute('aria-invalid');
    button.disabled = true;
    button.textContent = 'Signing in…';
    auth.token = value;
    auth.reason = reason.value;
    const problem = await done();
    if (problem) {
      auth.token = '';
      button.disabled = false;
      button.textContent = 'Sign in';
      token.setAttribute('aria-invalid', 'true');
      add(status, message('error', problem));
      token.focus();
    }
  });
  add(main, 
    h('div', {class: 'signin-wrap'},
      h('h1', {tabindex: -1}, 'Sign in'),
      h('p', {class: 'lead'}, 'provmark keeps signed, tamper-evident provenance records of AI outputs. ' +
        'Auditors see records in full (and every read is logged); developers and admins see a sanitized view.'),
      status,
      form));
  token.focus();
}
