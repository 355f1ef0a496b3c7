// The daily user and creator analytics tables.

import { api } from './api.js';
import { $, clear, el, setText } from './dom.js';
import { apiRange, daysAgoUtc, humanize, show, todayUtc } from './format.js';
import { state } from './router.js';
import { fillTable } from './session-page.js';

export function enterAnalytics() {
  const analytics = state.analytics;
  if (!analytics.from || !analytics.to) {
    analytics.from = $('#a-from').value || daysAgoUtc(29);
    analytics.to = $('#a-to').value || todayUtc();
  }
  $('#a-from').value = analytics.from;
  $('#a-to').value = analytics.to;
  loadAnalytics();
}

export function submitAnalytics(event) {
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
