// Tollgate billing console: a plain ES module, no build step, no dependencies.
// Every piece of server text goes into the page through textContent / attributes, never innerHTML.
// Money is shown exactly as the API sends it (decimal strings); it is never parsed for arithmetic
// (the chart converts values to numbers only to size its bars).

const TOKEN_KEY = 'tollgate.billing.token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------------------
// Small DOM helpers

const $ = (selector, root = document) => {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`missing element ${selector}`);
  return found;
};

/**
 * Builds an element. `props`: `class`, `text` (textContent), `dataset`, `on<event>` handlers; anything
 * else becomes an attribute. Children: nodes or strings (strings become text nodes).
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, props = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  applyProps(node, props);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function applyProps(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function setText(node, text) {
  node.textContent = text ?? '';
}

function clear(node) {
  node.replaceChildren();
}

// ---------------------------------------------------------------------------------------------------------
// Formatting (display only)

/** "2025-03-01 10:00:00" (UTC) from an ISO time; the input itself when it does not parse. */
function formatTime(iso) {
  if (iso === null || iso === undefined || iso === '') return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().replace('T', ' ').slice(0, 19);
}

/** "12m 30s" from milliseconds (a number or a bigint string). */
function formatDuration(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const total = Math.round(Number(ms) / 1000);
  if (!Number.isFinite(total)) return String(ms);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours}h ${minutes}m ${seconds}s`;
  if (minutes > 0) return `${minutes}m ${seconds}s`;
  return `${seconds}s`;
}

const show = (value) => (value === null || value === undefined || value === '' ? '—' : String(value));

/** A sign class for a money string, read from its text (no parsing). */
function signClass(amount) {
  const text = String(amount ?? '');
  if (text.startsWith('-')) return 'negative';
  if (/^\+?0*(\.0*)?$/.test(text)) return '';
  return 'positive';
}

const isZeroMoney = (text) => /^[+-]?0*(\.0*)?$/.test(String(text ?? ''));

/** "userDebits" → "User debits". */
function humanize(key) {
  const words = String(key).replace(/_/g, ' ').replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The date after a 'YYYY-MM-DD' date. */
function nextDay(date) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
}

/**
 * The form's dates (both days included, UTC) as the API's range: `from` at midnight, `to` exclusive, so the
 * day after the last day shown.
 */
function apiRange(from, to) {
  return { from: from || undefined, to: to ? nextDay(to) : undefined };
}

const todayUtc = () => new Date().toISOString().slice(0, 10);
const daysAgoUtc = (days) => new Date(Date.now() - days * DAY_MS).toISOString().slice(0, 10);

/** A UUID v4: crypto.randomUUID where available (secure contexts), else from getRandomValues. */
function newIdempotencyKey() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Token and API

function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's claims, for display only (the API verifies it). */
function tokenClaims(token) {
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

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && String(value).trim() !== '') search.set(key, String(value).trim());
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Calls the API with the bearer token; resolves `{ status, data, response }`, rejects with ApiError. */
async function request(path, { method = 'GET', body, raw = false, token = getToken(), handleAuth = true } = {}) {
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

const api = {
  sessions: (params) => request(`/api/ledger/sessions${query(params)}`),
  session: (id) => request(`/api/ledger/sessions/${encodeURIComponent(id)}`),
  reconciliation: (params) => request(`/api/ledger/reconciliation${query(params)}`),
  creators: (params) => request(`/api/analytics/creators${query(params)}`),
  users: (params) => request(`/api/analytics/users${query(params)}`),
  exportCsv: (params) => request(`/api/ledger/export.csv${query(params)}`, { raw: true }),
  adjust: (body) => request('/api/ledger/adjustments', { method: 'POST', body }),
};

function notAllowedMessage(error) {
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

// ---------------------------------------------------------------------------------------------------------
// State and routing

const state = {
  signinError: '',
  list: {
    filters: {},
    cursor: null,
    /** Cursors of the pages before the current one. */
    previous: [],
    seq: 0,
  },
  recon: { from: '', to: '', seq: 0 },
  analytics: { from: '', to: '', seq: 0 },
  detail: { id: null, seq: 0, adjustment: null, inFlight: false },
};

const views = ['signin', 'sessions', 'session', 'reconciliation', 'analytics'];

function showView(name) {
  for (const view of views) $(`#view-${view}`).hidden = view !== name;
  const signedIn = name !== 'signin';
  $('#nav').hidden = !signedIn;
  $('#who').hidden = !signedIn;
  const section = name === 'session' ? 'sessions' : name;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

let lastRoute = '';
function focusHeading(name) {
  const heading = document.querySelector(`#view-${name} h2`);
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
}

function route() {
  const hash = location.hash || '';
  const token = getToken();
  if (!token) {
    showView('signin');
    setText($('#signin-error'), state.signinError);
    if (hash !== '#/signin' && hash !== '') {
      history.replaceState(null, '', '#/signin');
    }
    document.title = 'Sign in · Tollgate billing console';
    return;
  }
  const claims = tokenClaims(token);
  setText($('#who-name'), claims.email ? `Signed in as ${claims.email}` : claims.sub ? `Signed in as ${claims.sub}` : 'Signed in');

  const match = /^#\/sessions\/([^/?#]+)$/.exec(hash);
  let name;
  if (match) {
    name = 'session';
    showView(name);
    loadSession(decodeURIComponent(match[1]));
  } else if (hash === '#/reconciliation') {
    name = 'reconciliation';
    showView(name);
    enterReconciliation();
  } else if (hash === '#/analytics') {
    name = 'analytics';
    showView(name);
    enterAnalytics();
  } else {
    name = 'sessions';
    if (hash !== '#/sessions') history.replaceState(null, '', '#/sessions');
    showView(name);
    loadSessions();
  }
  document.title = `${$(`#view-${name} h2`).textContent} · Tollgate billing console`;
  if (lastRoute && lastRoute !== hash) focusHeading(name);
  lastRoute = hash;
}

// ---------------------------------------------------------------------------------------------------------
// Sign in / out

async function signIn(event) {
  event.preventDefault();
  const input = $('#token');
  const token = input.value.trim().replace(/^Bearer\s+/i, '');
  const error = $('#signin-error');
  if (!token) {
    setText(error, 'Paste an access token first.');
    input.focus();
    return;
  }
  const button = $('#signin-form button[type=submit]');
  button.disabled = true;
  setText(error, '');
  try {
    // Any admin call proves the token: the smallest page of sessions.
    await request(`/api/ledger/sessions${query({ limit: 1 })}`, { token, handleAuth: false });
    setToken(token);
    input.value = '';
    state.signinError = '';
    lastRoute = '';
    location.hash = '#/sessions';
    route();
  } catch (failure) {
    const message =
      failure.status === 403
        ? notAllowedMessage(failure)
        : failure.status === 401
          ? `Token rejected: ${failure.message}`
          : `Could not sign in: ${failure.display ?? failure.message}`;
    state.signinError = message;
    setText(error, message);
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  setToken(null);
  state.signinError = '';
  $('#filters').reset();
  state.list = { filters: readFilters(), cursor: null, previous: [], seq: state.list.seq + 1 };
  location.hash = '#/signin';
  route();
  $('#token').focus();
}

// ---------------------------------------------------------------------------------------------------------
// Sessions list

function readFilters() {
  const form = $('#filters');
  const data = new FormData(form);
  const filters = {};
  for (const [key, value] of data.entries()) {
    const text = String(value).trim();
    if (text) filters[key] = text;
  }
  return filters;
}

/** A table cell: its content in one wrapper, so at phone width it sits beside its label as one block. */
function cell(label, content, className) {
  return el('td', { 'data-label': label, class: className }, el('div', { class: 'cell' }, content));
}

async function loadSessions() {
  const list = state.list;
  const seq = ++list.seq;
  const table = $('#sessions-table');
  const body = $('#sessions-table tbody');
  const status = $('#sessions-status');
  setText($('#sessions-error'), '');
  setText(status, 'Loading sessions…');
  table.setAttribute('aria-busy', 'true');
  try {
    const { data } = await api.sessions({ ...list.filters, ...apiRange(list.filters.from, list.filters.to), cursor: list.cursor });
    if (seq !== list.seq) return;
    const sessions = Array.isArray(data?.sessions) ? data.sessions : [];
    clear(body);
    if (sessions.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: 10, class: 'empty', text: 'No settled sessions match these filters.' })));
    }
    for (const s of sessions) body.append(sessionRow(s));
    list.nextCursor = data?.nextCursor ?? null;
    const page = list.previous.length + 1;
    setText($('#page-label'), `Page ${page}`);
    $('#page-next').disabled = !list.nextCursor;
    $('#page-prev').disabled = list.previous.length === 0;
    $('#page-first').disabled = list.previous.length === 0;
    const filtered = Object.keys(list.filters).some((k) => k !== 'limit');
    setText(
      status,
      `${sessions.length} session${sessions.length === 1 ? '' : 's'} on page ${page}${filtered ? ' (filtered)' : ''}${list.nextCursor ? '; more on the next page' : ''}.`,
    );
  } catch (error) {
    if (seq !== list.seq) return;
    setText(status, '');
    if (error.status !== 401 && error.status !== 403) setText($('#sessions-error'), `Could not load sessions: ${error.display}`);
  } finally {
    if (seq === list.seq) table.removeAttribute('aria-busy');
  }
}

function sessionRow(s) {
  const link = el('a', { href: `#/sessions/${encodeURIComponent(s.id)}`, class: 'id', title: s.id, 'aria-label': `Open session ${s.id}` }, String(s.id).slice(0, 8));
  return el(
    'tr',
    { dataset: { sessionId: s.id, type: s.type ?? '' } },
    cell('Session', [link, el('span', { class: 'sub', text: s.settledAt ? `settled ${formatTime(s.settledAt)}` : show(s.status) })]),
    cell('Start (UTC)', [formatTime(s.startTime), el('span', { class: 'sub', text: `to ${formatTime(s.endTime)}` })]),
    cell('User', [show(s.userEmail), el('span', { class: 'sub id', text: show(s.userId) })]),
    cell('Clone', [show(s.cloneName), el('span', { class: 'sub id', text: show(s.cloneId) })]),
    cell('Type', show(s.type), 'type'),
    cell('Active', [formatDuration(s.activeMs), el('span', { class: 'sub', text: `${show(s.durationMinutes)} min` })], 'num'),
    cell('Rate/min', show(s.ratePerMinute), 'num'),
    cell('Total', show(s.totalCost), 'num total'),
    cell('Msgs', show(s.messageCount), 'num'),
    cell('End reason', show(s.endReason), 'reason'),
  );
}

function applyFilters(event) {
  event.preventDefault();
  state.list.filters = readFilters();
  state.list.cursor = null;
  state.list.previous = [];
  loadSessions();
}

function resetFilters() {
  $('#filters').reset();
  state.list.filters = readFilters();
  state.list.cursor = null;
  state.list.previous = [];
  loadSessions();
}

function nextPage() {
  if (!state.list.nextCursor) return;
  state.list.previous.push(state.list.cursor);
  state.list.cursor = state.list.nextCursor;
  loadSessions().then(() => $('#sessions-title').focus());
}

function previousPage() {
  if (state.list.previous.length === 0) return;
  state.list.cursor = state.list.previous.pop() ?? null;
  loadSessions();
}

function firstPage() {
  state.list.cursor = null;
  state.list.previous = [];
  loadSessions();
}

async function exportCsv() {
  const button = $('#export-csv');
  const filters = readFilters();
  const params = apiRange(filters.from, filters.to);
  button.disabled = true;
  setText($('#sessions-error'), '');
  setText($('#sessions-status'), 'Preparing the CSV export…');
  try {
    const { response } = await api.exportCsv(params);
    const blob = await response.blob();
    const disposition = response.headers.get('content-disposition') ?? '';
    const named = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    const fallback = `tollgate-ledger${filters.from ? `-${filters.from}` : ''}${filters.to ? `-to-${filters.to}` : ''}.csv`;
    const filename = named ? decodeURIComponent(named[1]) : fallback;
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    setText($('#sessions-status'), `Exported ${filename}.`);
  } catch (error) {
    setText($('#sessions-status'), '');
    if (error.status !== 401 && error.status !== 403) setText($('#sessions-error'), `Export failed: ${error.display}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Session detail

function kv(list, pairs) {
  clear(list);
  for (const [label, value, className] of pairs) {
    list.append(el('dt', { text: label }), el('dd', { class: className }, value));
  }
}

async function loadSession(id, { keepStatus = false } = {}) {
  const detail = state.detail;
  const seq = ++detail.seq;
  if (detail.id !== id) {
    detail.id = id;
    detail.adjustment = null;
    $('#adjust-form').reset();
    setText($('#adj-error'), '');
    setText($('#adj-status'), '');
  } else if (!keepStatus) {
    setText($('#adj-error'), '');
  }
  setText($('#session-title'), `Session ${id}`);
  setText($('#session-error'), '');
  const body = $('#session-body');
  body.setAttribute('aria-busy', 'true');
  if (!keepStatus) body.hidden = true;
  try {
    const { data } = await api.session(id);
    if (seq !== detail.seq) return;
    body.hidden = false; // visible first, so the timeline can measure its width
    renderSession(data);
  } catch (error) {
    if (seq !== detail.seq) return;
    if (error.status !== 401 && error.status !== 403) {
      setText(
        $('#session-error'),
        error.status === 404 ? `No session ${id}: ${error.message}` : `Could not load the session: ${error.display}`,
      );
    }
  } finally {
    if (seq === detail.seq) body.removeAttribute('aria-busy');
  }
}

function renderSession(data) {
  const s = data?.session ?? {};
  kv($('#session-summary'), [
    ['Session id', el('span', { class: 'id', text: show(s.id) })],
    ['User', [show(s.userEmail), el('span', { class: 'sub id', text: show(s.userId) })]],
    ['Clone', [show(s.cloneName), el('span', { class: 'sub id', text: show(s.cloneId) })]],
    ['Creator', el('span', { class: 'id', text: show(s.creatorId) })],
    ['Type', show(s.type)],
    ['Status', show(s.status)],
    ['Start (UTC)', formatTime(s.startTime)],
    ['End (UTC)', formatTime(s.endTime)],
    ['Active time', `${formatDuration(s.activeMs)} (${show(s.activeMs)} ms)`],
    ['Billed minutes', show(s.durationMinutes)],
    ['Rate per minute', show(s.ratePerMinute)],
    ['Total charged', show(s.totalCost)],
    ['Messages', show(s.messageCount)],
    ['End reason', show(s.endReason)],
    ['Settled at (UTC)', formatTime(s.settledAt)],
    ['User rating', show(s.userRating)],
  ]);
  renderCheck(data?.check);
  state.detail.timeline = [s, data?.intervals ?? [], data?.events ?? []];
  renderTimeline(...state.detail.timeline);

  fillTable(
    $('#intervals-table tbody'),
    data?.intervals ?? [],
    ['Start', 'End', 'Active'],
    (i) => [formatTime(i.start), formatTime(i.end), [formatDuration(i.activeMs), 'num']],
    'No active intervals recorded.',
  );
  fillTable(
    $('#events-table tbody'),
    data?.events ?? [],
    ['Version', 'Kind', 'At (UTC)', 'Active so far', 'Reason'],
    (e) => [[show(e.version), 'num'], show(e.kind), formatTime(e.at), [formatDuration(e.activeMs), 'num'], show(e.reason)],
    'No events recorded for this session.',
  );
  fillTable(
    $('#messages-table tbody'),
    data?.messages ?? [],
    ['At (UTC)', 'Sender', 'Content', 'Tokens', 'Cost'],
    (m) => [formatTime(m.createdAt), show(m.senderType), [show(m.content), 'content'], [show(m.tokensUsed), 'num'], [show(m.costIncrement), 'num']],
    'No messages.',
  );
  fillTable(
    $('#ledger-table tbody'),
    data?.ledger ?? [],
    ['At (UTC)', 'Kind', 'Account', 'Amount', 'Adjustment'],
    (l) => [
      formatTime(l.createdAt),
      show(l.kind),
      [[show(l.accountKind), l.accountId ? el('span', { class: 'sub id', text: l.accountId }) : null]],
      [show(l.amount), `num ${signClass(l.amount)}`],
      [l.adjustmentId ? el('span', { class: 'id', text: l.adjustmentId }) : '—'],
    ],
    'No ledger entries (the session is not settled).',
    (l) => ({ kind: l.kind ?? '', adjustmentId: l.adjustmentId ?? '' }),
  );
  fillTable(
    $('#adjustments-table tbody'),
    data?.adjustments ?? [],
    ['At (UTC)', 'Amount', 'Reason', 'Author', 'Id'],
    (a) => [
      formatTime(a.createdAt),
      [show(a.amount), `num ${signClass(a.amount)}`],
      [show(a.reason), 'content'],
      [el('span', { class: 'id', text: show(a.authorId) })],
      [el('span', { class: 'id', text: show(a.id) })],
    ],
    'No adjustments.',
  );
  // Adjustments apply to settled sessions only.
  const settled = Boolean(s.settledAt);
  $('#adj-submit').disabled = !settled;
  if (!settled) setText($('#adj-error'), 'This session is not settled yet: it cannot be adjusted.');
}

/**
 * Fills a tbody. `cells(row)` returns, per column, a value or `[value, className]`; `value` may be a node,
 * a string or an array of those.
 */
function fillTable(tbody, rows, labels, cells, emptyText, dataset) {
  clear(tbody);
  if (rows.length === 0) {
    tbody.append(el('tr', {}, el('td', { colspan: labels.length, class: 'empty', text: emptyText })));
    return;
  }
  for (const row of rows) {
    const tr = el('tr', { dataset: dataset ? dataset(row) : undefined });
    cells(row).forEach((spec, index) => {
      const [value, className] = Array.isArray(spec) ? spec : [spec, undefined];
      tr.append(cell(labels[index] ?? '', value, className));
    });
    tbody.append(tr);
  }
}

function renderCheck(check) {
  const card = $('#check-card');
  const verdict = $('#check-verdict');
  if (!check) {
    card.dataset.state = 'unknown';
    verdict.className = 'verdict bad';
    setText(verdict, '✗ No recomputation available for this session.');
    clear($('#check-values'));
    setText($('#check-note'), '');
    return;
  }
  const good = check.consistent === true && check.balanced === true;
  card.dataset.state = good ? 'ok' : 'bad';
  verdict.className = `verdict ${good ? 'ok' : 'bad'}`;
  if (good) {
    setText(verdict, '✓ Consistent and balanced');
  } else {
    const problems = [];
    if (check.consistent !== true) problems.push(`charge differs from the recomputation by ${show(check.difference)}`);
    if (check.balanced !== true) problems.push(`ledger does not sum to zero (sum ${show(check.ledgerSum)})`);
    setText(verdict, `✗ Not consistent: ${problems.join('; ')}`);
  }
  kv($('#check-values'), [
    ['Active time from intervals', `${formatDuration(check.activeMsFromIntervals)} (${show(check.activeMsFromIntervals)} ms)`],
    ['Time cost', show(check.timeCost)],
    ['AI cost', show(check.aiCost)],
    ['Recomputed total', show(check.recomputedTotal)],
    ['Charged', show(check.charged)],
    ['Difference', show(check.difference), check.consistent === true ? '' : 'bad'],
    ['Ledger sum', show(check.ledgerSum), check.balanced === true ? '' : 'bad'],
    ['Consistent', check.consistent === true ? 'yes ✓' : 'no ✗', check.consistent === true ? '' : 'bad'],
    ['Balanced', check.balanced === true ? 'yes ✓' : 'no ✗', check.balanced === true ? '' : 'bad'],
  ]);
  setText($('#check-note'), check.note ? `Note: ${check.note}` : '');
}

/** One horizontal bar from the session start to its end: active intervals green, the rest paused grey. */
function renderTimeline(session, intervals, events) {
  const host = $('#timeline');
  clear(host);
  const times = [session.startTime, session.endTime, ...intervals.flatMap((i) => [i.start, i.end]), ...events.map((e) => e.at)]
    .map((t) => (t ? Date.parse(t) : Number.NaN))
    .filter((t) => Number.isFinite(t));
  if (times.length === 0) {
    host.append(el('p', { class: 'muted', text: 'No times recorded for this session.' }));
    return;
  }
  const start = Number.isFinite(Date.parse(session.startTime)) ? Date.parse(session.startTime) : Math.min(...times);
  const end = Math.max(...times, start + 1000);
  // drawn at the width it is shown at (1 unit = 1 px), so its text is never stretched or squeezed
  const width = Math.max(280, Math.round(host.clientWidth || 1000));
  const left = 10;
  const right = 10;
  const barY = 18;
  const barH = 34;
  const span = end - start;
  const x = (t) => left + ((t - start) / span) * (width - left - right);

  const totalActive = intervals.reduce((sum, i) => sum + (Number(i.activeMs) || 0), 0);
  const chart = svg('svg', {
    class: 'chart timeline',
    viewBox: `0 0 ${width} 96`,
    role: 'img',
    'aria-label': `Timeline from ${formatTime(new Date(start).toISOString())} to ${formatTime(new Date(end).toISOString())}: ${intervals.length} active interval${intervals.length === 1 ? '' : 's'}, ${formatDuration(totalActive)} active; the rest paused.`,
  });
  chart.append(
    svg('rect', { class: 'bar-paused', x: left, y: barY, width: width - left - right, height: barH, rx: 3 }, svg('title', {}, 'paused / not billed')),
  );
  for (const interval of intervals) {
    const a = Date.parse(interval.start);
    const b = interval.end ? Date.parse(interval.end) : end;
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    chart.append(
      svg(
        'rect',
        { class: 'bar-active', x: x(a), y: barY, width: Math.max(1.5, x(b) - x(a)), height: barH, 'data-interval': '' },
        svg('title', {}, `active ${formatTime(interval.start)} – ${formatTime(interval.end)} (${formatDuration(interval.activeMs)})`),
      ),
    );
  }
  for (const event of events) {
    const t = Date.parse(event.at);
    if (!Number.isFinite(t)) continue;
    const ex = x(t);
    chart.append(
      svg(
        'g',
        { class: 'event' },
        svg('line', { class: 'axis', x1: ex, x2: ex, y1: barY - 6, y2: barY + barH + 6 }),
        svg('title', {}, `v${event.version} ${event.kind} at ${formatTime(event.at)}${event.reason ? ` (${event.reason})` : ''}`),
      ),
    );
  }
  chart.append(
    svg('line', { class: 'axis', x1: left, x2: width - right, y1: barY + barH + 8, y2: barY + barH + 8 }),
    svg('text', { x: left, y: barY + barH + 26, 'text-anchor': 'start' }, formatTime(new Date(start).toISOString()).slice(11)),
    svg('text', { x: width - right, y: barY + barH + 26, 'text-anchor': 'end' }, formatTime(new Date(end).toISOString()).slice(11)),
    svg('text', { x: width / 2, y: barY + barH + 26, 'text-anchor': 'middle' }, `${formatDuration(end - start)} total, ${formatDuration(totalActive)} active`),
  );
  host.append(chart);
}

// --- Adjustment form -------------------------------------------------------------------------------------

const AMOUNT = /^[+-]?\d{1,10}(\.\d{1,4})?$/;

/** "2.5" → "2.5000", "+3" → "3.0000", "-0.25" → "-0.2500": string work only. */
function normalizeAmount(text) {
  const trimmed = text.trim();
  const negative = trimmed.startsWith('-');
  const unsigned = trimmed.replace(/^[+-]/, '');
  const [whole, fraction = ''] = unsigned.split('.');
  const integer = whole.replace(/^0+(?=\d)/, '');
  return `${negative ? '-' : ''}${integer}.${fraction.padEnd(4, '0')}`;
}

async function submitAdjustment(event) {
  event.preventDefault();
  const detail = state.detail;
  if (detail.inFlight) return; // a second click while the first is on its way does nothing
  const amountInput = $('#adj-amount');
  const reasonInput = $('#adj-reason');
  const errorNode = $('#adj-error');
  const statusNode = $('#adj-status');
  setText(errorNode, '');
  setText(statusNode, '');
  amountInput.removeAttribute('aria-invalid');
  reasonInput.removeAttribute('aria-invalid');

  const rawAmount = amountInput.value.trim();
  const reason = reasonInput.value.trim();
  if (!AMOUNT.test(rawAmount) || isZeroMoney(rawAmount)) {
    amountInput.setAttribute('aria-invalid', 'true');
    setText(errorNode, 'Enter a non-zero amount with at most 4 decimals, e.g. 2.5000 (refund) or -1.0000 (charge).');
    amountInput.focus();
    return;
  }
  if (!reason) {
    reasonInput.setAttribute('aria-invalid', 'true');
    setText(errorNode, 'Give a reason for the adjustment.');
    reasonInput.focus();
    return;
  }
  const sessionId = detail.id;
  const amount = normalizeAmount(rawAmount);
  // One key per submission of these values; a retry of the same values reuses it, so the API applies it once.
  const signature = JSON.stringify([sessionId, amount, reason]);
  if (!detail.adjustment || detail.adjustment.signature !== signature) {
    detail.adjustment = { key: newIdempotencyKey(), signature };
  }
  const idempotencyKey = detail.adjustment.key;
  const button = $('#adj-submit');
  detail.inFlight = true;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  setText(statusNode, 'Recording the adjustment…');
  try {
    const { status, data } = await api.adjust({ idempotencyKey, sessionId, amount, reason });
    if (detail.id !== sessionId) return;
    detail.adjustment = null;
    $('#adjust-form').reset();
    const recorded = data?.adjustment ?? {};
    const what = String(recorded.amount ?? amount).startsWith('-') ? 'Charge' : 'Refund';
    const message =
      status === 201
        ? `${what} of ${show(recorded.amount ?? amount)} recorded (adjustment ${show(recorded.id)}).`
        : `This adjustment had already been recorded (adjustment ${show(recorded.id)}); nothing was applied twice.`;
    await loadSession(sessionId, { keepStatus: true });
    setText(statusNode, message);
  } catch (error) {
    setText(statusNode, '');
    if (error.status === 401 || error.status === 403) return;
    const retry =
      error.status === 0 || error.status >= 500
        ? ' It may or may not have been recorded: submitting the same amount and reason again is safe (it reuses the same idempotency key).'
        : '';
    setText(errorNode, `${error.display}${retry}`);
  } finally {
    detail.inFlight = false;
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reconciliation

function enterReconciliation() {
  const recon = state.recon;
  if (!recon.from || !recon.to) {
    recon.from = $('#r-from').value || daysAgoUtc(29);
    recon.to = $('#r-to').value || todayUtc();
  }
  $('#r-from').value = recon.from;
  $('#r-to').value = recon.to;
  loadReconciliation();
}

function submitReconciliation(event) {
  event.preventDefault();
  const from = $('#r-from').value;
  const to = $('#r-to').value;
  if (!from || !to) {
    setText($('#recon-error'), 'Choose both dates.');
    return;
  }
  if (from > to) {
    setText($('#recon-error'), 'The start date is after the end date.');
    return;
  }
  state.recon.from = from;
  state.recon.to = to;
  loadReconciliation();
}

async function loadReconciliation() {
  const recon = state.recon;
  const seq = ++recon.seq;
  const body = $('#recon-body');
  setText($('#recon-error'), '');
  body.setAttribute('aria-busy', 'true');
  try {
    const { data } = await api.reconciliation(apiRange(recon.from, recon.to));
    if (seq !== recon.seq) return;
    body.hidden = false; // visible first, so the chart can measure its width
    renderReconciliation(data ?? {});
  } catch (error) {
    if (seq !== recon.seq) return;
    body.hidden = true;
    if (error.status !== 401 && error.status !== 403) setText($('#recon-error'), `Could not reconcile: ${error.display}`);
  } finally {
    if (seq === recon.seq) body.removeAttribute('aria-busy');
  }
}

function sessionLinks(ids) {
  return el(
    'ul',
    { class: 'problem-list' },
    ids.map((id) => el('li', {}, el('a', { href: `#/sessions/${encodeURIComponent(id)}`, class: 'id', text: id }))),
  );
}

function renderReconciliation(data) {
  const days = Array.isArray(data.days) ? data.days : [];
  const unbalanced = Array.isArray(data.unbalancedSessions) ? data.unbalancedSessions : [];
  const mismatches = Array.isArray(data.balanceMismatches) ? data.balanceMismatches : [];
  const unsettled = Array.isArray(data.endedUnsettled) ? data.endedUnsettled : [];
  const unbalancedDays = days.filter((d) => d.balanced === false);
  // The API's `ok` already allows an ended session a grace period before its missing settlement counts.
  const ok = data.ok === true && unbalanced.length === 0 && mismatches.length === 0 && unbalancedDays.length === 0;

  const verdict = $('#recon-verdict');
  verdict.className = `verdict banner ${ok ? 'ok' : 'bad'}`;
  verdict.dataset.state = ok ? 'ok' : 'bad';
  if (ok) {
    const waiting = unsettled.length
      ? ` ${unsettled.length} ended session${unsettled.length === 1 ? ' is' : 's are'} still waiting for settlement (listed below).`
      : '';
    setText(verdict, `✓ Everything balances from ${state.recon.from} to ${state.recon.to}.${waiting}`);
  } else {
    const parts = [];
    if (unbalanced.length) parts.push(`${unbalanced.length} unbalanced session${unbalanced.length === 1 ? '' : 's'}`);
    if (mismatches.length) parts.push(`${mismatches.length} balance mismatch${mismatches.length === 1 ? '' : 'es'}`);
    if (unsettled.length) parts.push(`${unsettled.length} ended but unsettled`);
    if (unbalancedDays.length) parts.push(`${unbalancedDays.length} unbalanced day${unbalancedDays.length === 1 ? '' : 's'}`);
    setText(verdict, `✗ Does not balance: ${parts.join(', ') || 'the API reports a problem'}.`);
  }

  const problems = $('#recon-problems');
  problems.hidden = unbalanced.length === 0 && mismatches.length === 0 && unsettled.length === 0;
  const unbalancedHost = $('#recon-unbalanced');
  clear(unbalancedHost);
  if (unbalanced.length) {
    unbalancedHost.append(el('h4', { text: `Unbalanced sessions (${unbalanced.length})` }), sessionLinks(unbalanced));
  }
  const mismatchHost = $('#recon-mismatches');
  clear(mismatchHost);
  if (mismatches.length) {
    const tbody = el('tbody');
    fillTable(
      tbody,
      mismatches,
      ['User', 'Total spent', 'Ledger spent', 'Difference'],
      (m) => [[el('span', { class: 'id', text: show(m.userId) })], [show(m.totalSpent), 'num'], [show(m.ledgerSpent), 'num'], [show(m.difference), 'num negative']],
      '',
    );
    mismatchHost.append(
      el('h4', { text: `Users whose balance does not match the ledger (${mismatches.length})` }),
      el(
        'div',
        { class: 'table-wrap' },
        el(
          'table',
          { class: 'data stack', id: 'mismatch-table' },
          el('thead', {}, el('tr', {}, ['User', 'Total spent', 'Ledger spent', 'Difference'].map((h, i) => el('th', { scope: 'col', class: i ? 'num' : undefined, text: h })))),
          tbody,
        ),
      ),
    );
  }
  const unsettledHost = $('#recon-unsettled');
  clear(unsettledHost);
  if (unsettled.length) {
    unsettledHost.append(el('h4', { text: `Ended but not settled (${unsettled.length})` }), sessionLinks(unsettled));
  }

  const totals = data.totals && typeof data.totals === 'object' ? data.totals : {};
  const pairs = Object.entries(totals).map(([key, value]) => [
    humanize(key),
    typeof value === 'boolean' ? (value ? 'yes ✓' : 'no ✗') : typeof value === 'object' && value !== null ? JSON.stringify(value) : show(value),
    value === false ? 'bad' : '',
  ]);
  pairs.push(['Open sessions', Array.isArray(data.openSessions) ? String(data.openSessions.length) : show(data.openSessions)]);
  kv($('#recon-totals'), pairs);

  state.recon.days = days;
  renderRevenueChart(days);
  fillTable(
    $('#days-table tbody'),
    days,
    ['Date', 'Sessions', 'Session totals', 'User debits', 'Creator earnings', 'Platform fees', 'Adjustments', 'Unbalanced', 'Balanced'],
    (d) => [
      show(d.date),
      [show(d.sessions), 'num'],
      [show(d.sessionTotals), 'num'],
      [show(d.userDebits), 'num'],
      [show(d.creatorEarnings), 'num'],
      [show(d.platformFees), 'num'],
      [show(d.adjustments), 'num'],
      [show(d.unbalancedSessions), 'num'],
      [el('span', { class: `badge ${d.balanced === false ? 'bad' : 'ok'}`, text: d.balanced === false ? '✗ no' : '✓ yes' })],
    ],
    'No settled sessions in this range.',
  );
}

/**
 * Grouped bars per day: revenue (session totals), creator earnings, platform fees. Values become numbers
 * only for bar heights; every label shows the API's own strings.
 */
function renderRevenueChart(days) {
  const host = $('#recon-chart');
  clear(host);
  const series = [
    { key: 'sessionTotals', label: 'Revenue (session totals)', className: 'revenue' },
    { key: 'creatorEarnings', label: 'Creator earnings', className: 'earnings' },
    { key: 'platformFees', label: 'Platform fees', className: 'fees' },
  ];
  host.append(
    el(
      'p',
      { class: 'legend' },
      series.map((s) => [el('span', { class: `swatch ${s.className}`, 'aria-hidden': 'true' }), el('span', { text: s.label })]),
    ),
  );
  if (days.length === 0) {
    host.append(el('p', { class: 'muted', text: 'No days to chart.' }));
    return;
  }
  const height = 260;
  const top = 16;
  const bottom = 40;
  const left = 70;
  const right = 12;
  // 1 unit = 1 px at the width it is shown at; many days scroll sideways rather than shrink
  const width = Math.max(Math.round(host.clientWidth || 640), left + right + days.length * 40);
  const plotH = height - top - bottom;
  const plotW = width - left - right;

  let max = { value: 0, text: '0.0000' };
  let min = { value: 0, text: '0.0000' };
  for (const day of days) {
    for (const s of series) {
      const value = Number(day[s.key]);
      if (!Number.isFinite(value)) continue;
      if (value > max.value) max = { value, text: String(day[s.key]) };
      if (value < min.value) min = { value, text: String(day[s.key]) };
    }
  }
  const range = max.value - min.value || 1;
  const y = (value) => top + ((max.value - value) / range) * plotH;
  const zeroY = y(0);

  const chart = svg('svg', {
    class: 'chart revenue-chart',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `Daily revenue, creator earnings and platform fees for ${days.length} day${days.length === 1 ? '' : 's'}, highest value ${max.text}. The table below lists every value.`,
  });
  chart.append(
    svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(max.value), y2: y(max.value) }),
    svg('text', { x: left - 6, y: y(max.value) + 4, 'text-anchor': 'end' }, max.text),
    svg('line', { class: 'axis', x1: left, x2: width - right, y1: zeroY, y2: zeroY }),
    svg('text', { x: left - 6, y: zeroY + 4, 'text-anchor': 'end' }, '0'),
  );
  if (min.value < 0) {
    chart.append(
      svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(min.value), y2: y(min.value) }),
      svg('text', { x: left - 6, y: y(min.value) + 4, 'text-anchor': 'end' }, min.text),
    );
  }
  const group = plotW / days.length;
  const barW = Math.min(22, (group * 0.8) / series.length);
  const labelEvery = Math.ceil(days.length / Math.max(1, Math.floor(plotW / 70)));
  days.forEach((day, index) => {
    const gx = left + index * group + (group - barW * series.length) / 2;
    series.forEach((s, k) => {
      const value = Number(day[s.key]);
      if (!Number.isFinite(value)) return;
      const yv = y(value);
      chart.append(
        svg(
          'rect',
          {
            class: s.className,
            x: gx + k * barW,
            y: Math.min(yv, zeroY),
            width: Math.max(1, barW - 2),
            height: Math.max(value === 0 ? 0 : 1, Math.abs(zeroY - yv)),
            'data-date': String(day.date),
            'data-series': s.key,
          },
          svg('title', {}, `${day.date} · ${s.label}: ${day[s.key]}`),
        ),
      );
    });
    if (index % labelEvery === 0) {
      chart.append(svg('text', { x: left + index * group + group / 2, y: height - bottom + 18, 'text-anchor': 'middle' }, String(day.date).slice(5)));
    }
  });
  chart.style.minWidth = `${width}px`;
  host.append(el('div', { class: 'table-wrap' }, chart));
}

// ---------------------------------------------------------------------------------------------------------
// Analytics

function enterAnalytics() {
  const analytics = state.analytics;
  if (!analytics.from || !analytics.to) {
    analytics.from = $('#a-from').value || daysAgoUtc(29);
    analytics.to = $('#a-to').value || todayUtc();
  }
  $('#a-from').value = analytics.from;
  $('#a-to').value = analytics.to;
  loadAnalytics();
}

function submitAnalytics(event) {
  event.preventDefault();
  const from = $('#a-from').value;
  const to = $('#a-to').value;
  if (!from || !to || from > to) {
    setText($('#analytics-error'), 'Choose a start date on or before the end date.');
    return;
  }
  state.analytics.from = from;
  state.analytics.to = to;
  loadAnalytics();
}

async function loadAnalytics() {
  const analytics = state.analytics;
  const seq = ++analytics.seq;
  setText($('#analytics-error'), '');
  const params = apiRange(analytics.from, analytics.to);
  try {
    const [creators, users] = await Promise.all([api.creators(params), api.users(params)]);
    if (seq !== analytics.seq) return;
    renderRows($('#creators-table'), creators.data?.rows ?? [], 'No creator activity in this range.');
    renderRows($('#users-table'), users.data?.rows ?? [], 'No user activity in this range.');
  } catch (error) {
    if (seq !== analytics.seq) return;
    if (error.status !== 401 && error.status !== 403) setText($('#analytics-error'), `Could not load analytics: ${error.display}`);
  }
}

const NUMERIC = /^-?\d+(\.\d+)?$/;

function renderRows(table, rows, emptyText) {
  const columns = rows.length ? Object.keys(rows[0]) : [];
  const numeric = new Set(columns.filter((c) => rows.every((r) => r[c] === null || typeof r[c] === 'number' || NUMERIC.test(String(r[c])))));
  const thead = $('thead', table);
  clear(thead);
  thead.append(el('tr', {}, columns.map((c) => el('th', { scope: 'col', class: numeric.has(c) ? 'num' : undefined, text: humanize(c) }))));
  const tbody = $('tbody', table);
  fillTable(
    tbody,
    rows,
    columns.map(humanize),
    (row) =>
      columns.map((c) => {
        const value = row[c];
        const text = value !== null && typeof value === 'object' ? JSON.stringify(value) : show(value);
        const className = numeric.has(c) ? 'num' : c === 'date' ? 'nowrap' : undefined;
        return [/Id$/.test(c) ? el('span', { class: 'id', text }) : text, className];
      }),
    emptyText,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Wiring

/** The SVGs are drawn at the width they are shown at: draw them again when that changes. */
let redrawTimer;
let drawnWidth = 0;
function redrawCharts() {
  clearTimeout(redrawTimer);
  redrawTimer = setTimeout(() => {
    const width = document.documentElement.clientWidth;
    if (width === drawnWidth) return;
    drawnWidth = width;
    if (!$('#view-session').hidden && state.detail.timeline) renderTimeline(...state.detail.timeline);
    if (!$('#view-reconciliation').hidden && state.recon.days) renderRevenueChart(state.recon.days);
  }, 100);
}

function start() {
  drawnWidth = document.documentElement.clientWidth;
  $('#signin-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', signOut);
  $('#filters').addEventListener('submit', applyFilters);
  $('#filters-reset').addEventListener('click', resetFilters);
  $('#export-csv').addEventListener('click', exportCsv);
  $('#page-next').addEventListener('click', nextPage);
  $('#page-prev').addEventListener('click', previousPage);
  $('#page-first').addEventListener('click', firstPage);
  $('#adjust-form').addEventListener('submit', submitAdjustment);
  $('#recon-form').addEventListener('submit', submitReconciliation);
  $('#analytics-form').addEventListener('submit', submitAnalytics);
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', redrawCharts);
  for (const heading of document.querySelectorAll('main h2')) heading.setAttribute('tabindex', '-1');
  // Signing out in another tab of this origin does not touch this tab's sessionStorage; nothing to sync.
  state.list.filters = readFilters();
  document.documentElement.dataset.ready = 'true';
  route();
}

start();
