// The settled sessions list: filters, keyset pages, the CSV export.

import { api } from './api.js';
import { $, clear, el, setText } from './dom.js';
import { apiRange, formatDuration, formatTime, show } from './format.js';
import { state } from './router.js';

export function readFilters() {
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
export function cell(label, content, className) {
  return el('td', { 'data-label': label, class: className }, el('div', { class: 'cell' }, content));
}

export async function loadSessions() {
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

export function applyFilters(event) {
  event.preventDefault();
  state.list.filters = readFilters();
  state.list.cursor = null;
  state.list.previous = [];
  loadSessions();
}

export function resetFilters() {
  $('#filters').reset();
  state.list.filters = readFilters();
  state.list.cursor = null;
  state.list.previous = [];
  loadSessions();
}

export function nextPage() {
  if (!state.list.nextCursor) return;
  state.list.previous.push(state.list.cursor);
  state.list.cursor = state.list.nextCursor;
  loadSessions().then(() => $('#sessions-title').focus());
}

export function previousPage() {
  if (state.list.previous.length === 0) return;
  state.list.cursor = state.list.previous.pop() ?? null;
  loadSessions();
}

export function firstPage() {
  state.list.cursor = null;
  state.list.previous = [];
  loadSessions();
}

export async function exportCsv() {
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
