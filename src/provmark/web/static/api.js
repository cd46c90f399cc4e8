// Talking to the provmark API: the token (kept in this tab only), errors as RFC 9457
// problems, downloads that need the Authorization header.

const TOKEN = 'provmark.token';
const REASON = 'provmark.reason';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** "detail" plus the field and reason when the server named them. */
  get text() {
    const p = this.problem;
    const field = p.field && p.reason && !String(p.detail || '').includes(p.reason)
      ? ` (${p.field}: ${p.reason})` : '';
    return `${p.detail || p.title || `HTTP ${this.status}`}${field}`;
  }
}

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN) || ''; },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN, value); else sessionStorage.removeItem(TOKEN);
  },
  // sent as X-Provmark-Reason: header values must be printable ASCII
  get reason() { return sessionStorage.getItem(REASON) || ''; },
  set reason(value) {
    const clean = String(value || '').replace(/[^\x20-\x7e]/g, '?').trim().slice(0, 500);
    if (clean) sessionStorage.setItem(REASON, clean); else sessionStorage.removeItem(REASON);
  },
  session: null,
  onUnauthorized: null,
};

function headers(extra) {
  const hs = new Headers(extra || {});
  if (auth.token) hs.set('Authorization', `Bearer ${auth.token}`);
  if (auth.reason) hs.set('X-Provmark-Reason', auth.reason);
  return hs;
}

/** fetch JSON from the API; throws ApiError with the problem document. */
export async function api(path, {method = 'GET', body, raw = false, accept} = {}) {
  const hs = headers(accept ? {Accept: accept} : {Accept: 'application/json'});
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
    hs.set('Content-Type', 'application/json');
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, {method, headers: hs, body: payload, cache: 'no-store', credentials: 'omit'});
  } catch (err) {
    throw new ApiError(0, {title: 'Network error', detail: `the server did not answer (${err.message})`});
  }
  if (!res.ok) {
    let problem;
    try {
      problem = await res.json();
    } catch {
      problem = {title: res.statusText, detail: `HTTP ${res.status} ${res.statusText}`};
    }
    const error = new ApiError(res.status, problem);
    if (res.status === 401 && auth.onUnauthorized && path !== '/v1/ui/session') auth.onUnauthorized(error);
    throw error;
  }
  return raw ? res : res.json();
}

/** Query string from an object; arrays repeat the key, empty values are left out. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== '') q.append(key, v);
    }
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

function filename(res, fallback) {
  const cd = res.headers.get('content-disposition') || '';
  const m = /filename="?([^";]+)"?/i.exec(cd);
  return m ? m[1] : fallback;
}

/** Fetch with the token and save what comes back as a file. */
export async function download(path, fallback) {
  const res = await api(path, {raw: true, accept: '*/*'});
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename(res, fallback);
  a.className = 'offscreen';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
  return a.download;
}

export const recordPath = (id) => `/v1/records/${encodeURIComponent(id)}`;
export const uiRecordPath = (id) => `/v1/ui/records/${encodeURIComponent(id)}`;
