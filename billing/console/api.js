// The access token (sessionStorage) and the billing API: one request function, errors as the API words them, a sign-in screen on 401/403.

import { $ } from './dom.js';
import { route, state } from './router.js';

const TOKEN_KEY = 'tollgate.billing.token';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's claims, for display only (the API verifies it). */
export function tokenClaims(token) {
  try {
    const part = token.split('.')[1] ?? '';
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** "invalid_payload: amount must …" — the API's own words. */
  get display() {
    return this.code ? `${this.message} (${this.code})` : this.message;
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && String(value).trim() !== '') search.set(key, String(value).trim());
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Calls the API with the bearer token; resolves `{ status, data, response }`, rejects with ApiError. */
export async function request(path, { method = 'GET', body, raw = false, token = getToken(), handleAuth = true } = {}) {
  const headers = { accept: raw ? '*/*' : 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (error) {
    throw new ApiError(0, 'network_error', `Could not reach the billing API (${error instanceof Error ? error.message : 'network error'}).`);
  }
  if (response.ok && raw) return { status: response.status, data: null, response };
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const apiError = data && typeof data === 'object' ? data.error : null;
    const error = new ApiError(
      response.status,
      apiError?.code ?? `http_${response.status}`,
      apiError?.message ?? `The billing API answered ${response.status} ${response.statusText}.`,
    );
    if (handleAuth && (response.status === 401 || response.status === 403)) onAuthFailure(error);
    throw error;
  }
  return { status: response.status, data, response };
}

export const api = {
  sessions: (params) => request(`/api/ledger/sessions${query(params)}`),
  session: (id) => request(`/api/ledger/sessions/${encodeURIComponent(id)}`),
  reconciliation: (params) => request(`/api/ledger/reconciliation${query(params)}`),
  creators: (params) => request(`/api/analytics/creators${query(params)}`),
  users: (params) => request(`/api/analytics/users${query(params)}`),
  exportCsv: (params) => request(`/api/ledger/export.csv${query(params)}`, { raw: true }),
  adjust: (body) => request('/api/ledger/adjustments', { method: 'POST', body }),
  movements: (params) => request(`/api/ledger/movements${query(params)}`),
  payoutBalances: () => request('/api/payouts/balances'),
  runPayouts: (body) => request('/api/payouts/run', { method: 'POST', body }),
};

export function notAllowedMessage(error) {
  return `Not allowed: this account is not a billing admin. The billing API refused it (${error.message}).`;
}

/** A 401/403 on any call: the token is dropped and the sign-in form explains why. */
function onAuthFailure(error) {
  setToken(null);
  const message =
    error.status === 403 ? notAllowedMessage(error) : `Your token was rejected: ${error.message} Sign in again.`;
  state.signinError = message;
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else route();
}
