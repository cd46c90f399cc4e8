// The shell: session, navigation, routing between pages (#/page/arg?query).

import {api, auth, ApiError} from './api.js';
import {h, add, clear, message} from './dom.js';
import * as signin from './page_signin.js';
import * as dashboard from './page_dashboard.js';
import * as search from './page_search.js';
import * as record from './page_record.js';
import * as verify from './page_verify.js';
import * as logPage from './page_log.js';
import * as disclosure from './page_disclosure.js';

const PAGES = {dashboard, search, record, verify, log: logPage, disclosure};
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const banner = document.getElementById('banner');
let generation = 0;
let stopPage = null;

export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const [page, ...rest] = path.split('/');
  return {page: page || 'dashboard', arg: rest.map(decodeURIComponent).join('/'), params: new URLSearchParams(qs || '')};
}

function showSession(info) {
  clear(who);
  clear(banner);
  if (!info) {
    nav.hidden = true;
    who.hidden = true;
    return;
  }
  nav.hidden = false;
  who.hidden = false;
  add(who, 
    h('span', {class: `role role-${info.role}`, title: `token ${info.token_id}`}, info.role),
    info.name ? h('span', {class: 'name'}, info.name) : null,
    info.auth ? h('button', {type: 'button', class: 'link', onclick: signOut}, 'Sign out') : h('span', {class: 'muted'}, 'no auth'));
  if (info.view === 'sanitized') {
    add(banner, message('info',
      h('strong', {}, 'Sanitized view. '),
      `Your role (${info.role}) sees input snapshots and error messages as [redacted] and user ids as keyed hashes. ` +
      'Exports and bundles of records holding such data need an auditor token.'));
  } else if (info.auth) {
    add(banner, message('info',
      h('strong', {}, 'Full view. '),
      'Every record you open is written to the audit log',
      auth.reason ? [' with the reason ', h('q', {}, auth.reason)] : ' (no reason given at sign-in)', '.'));
  } else {
    add(banner, message('warn', h('strong', {}, 'Authentication is off '), '(provmark serve --no-auth): for a local demo only.'));
  }
}

function signOut() {
  auth.token = '';
  auth.reason = '';
  auth.session = null;
  showSession(null);
  location.hash = '#/signin';
}

function markNav(page) {
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function loadSession() {
  try {
    // without a token, ask only whether one is needed: no 401 at every page load
    if (!auth.token && (await api('/v1/ui/config')).auth) return {error: null};
    const info = await api('/v1/ui/session');
    if (!info.can_read) {
      auth.token = '';
      return {error: `This is an ${info.role} token: it may only submit records. Sign in with a developer, auditor or admin token.`};
    }
    auth.session = info;
    return {info};
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      const hadToken = Boolean(auth.token);
      auth.token = '';
      return {error: hadToken ? 'Your token is unknown or was revoked. Sign in again.' : null};
    }
    return {error: err instanceof ApiError ? err.text : String(err)};
  }
}

async function route() {
  const mine = ++generation;
  if (stopPage) {
    stopPage();
    stopPage = null;
  }
  const {page, arg, params} = parseHash();
  if (!auth.session) {
    const {info, error} = await loadSession();
    if (mine !== generation) return;
    if (!info) {
      showSession(null);
      markNav(null);
      const back = page === 'signin' || !location.hash ? '#/dashboard' : location.hash;
      signin.render(main, {error, done: async () => {
        const again = await loadSession();
        if (!again.info) return again.error || 'Sign-in failed.';
        showSession(again.info);
        if (location.hash === back) route(); else location.hash = back;
        return null;
      }});
      return;
    }
    showSession(info);
  }
  const target = PAGES[page] || (page === 'signin' ? dashboard : null);
  markNav(page === 'signin' ? 'dashboard' : page);
  clear(main);
  if (!target) {
    add(main, h('h1', {tabindex: -1}, 'Not found'), message('error', `There is no page “${page}”.`));
    return;
  }
  const alive = () => mine === generation;
  try {
    stopPage = await target.render(main, {arg, params, session: auth.session, alive}) || null;
  } catch (err) {
    if (!alive()) return;
    add(main, message('error', err instanceof ApiError ? err.text : `Something went wrong: ${err.message}`));
  }
  if (alive() && !(main.contains(document.activeElement) && document.activeElement !== main)) {
    const heading = main.querySelector('h1');
    if (heading) heading.focus({preventScroll: true});
  }
}

auth.onUnauthorized = () => {
  auth.session = null;
  auth.token = '';
  showSession(null);
  route();
};

window.addEventListener('hashchange', () => {
  route();
});
route();
