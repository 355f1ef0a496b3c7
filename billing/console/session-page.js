// One session: its audit (events, active intervals, the recomputed charge), messages, ledger rows, and adjustments.

import { api } from './api.js';
import { $, clear, el, setText, svg } from './dom.js';
import { formatDuration, formatTime, isZeroMoney, newIdempotencyKey, show, signClass } from './format.js';
import { state } from './router.js';
import { cell } from './sessions-page.js';

export function kv(list, pairs) {
  clear(list);
  for (const [label, value, className] of pairs) {
    list.append(el('dt', { text: label }), el('dd', { class: className }, value));
  }
}

export async function loadSession(id, { keepStatus = false } = {}) {
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
export function fillTable(tbody, rows, labels, cells, emptyText, dataset) {
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
export function renderTimeline(session, intervals, events) {
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

export async function submitAdjustment(event) {
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
