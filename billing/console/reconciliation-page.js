// The reconciliation: per-day sums, unbalanced and unsettled sessions, balance mismatches, lost facts, balances the
// ledger does not explain, money in and out (purchases, refunds, grants), the revenue chart.

import { api } from './api.js';
import { $, clear, el, setText, svg } from './dom.js';
import { apiRange, daysAgoUtc, humanize, show, todayUtc } from './format.js';
import { state } from './router.js';
import { fillTable, kv } from './session-page.js';

export function enterReconciliation() {
  const recon = state.recon;
  if (!recon.from || !recon.to) {
    recon.from = $('#r-from').value || daysAgoUtc(29);
    recon.to = $('#r-to').value || todayUtc();
  }
  $('#r-from').value = recon.from;
  $('#r-to').value = recon.to;
  loadReconciliation();
}

export function submitReconciliation(event) {
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
    const range = apiRange(recon.from, recon.to);
    const [{ data }, movements] = await Promise.all([api.reconciliation(range), api.movements(range)]);
    if (seq !== recon.seq) return;
    body.hidden = false; // visible first, so the chart can measure its width
    renderReconciliation(data ?? {});
    renderMovements(Array.isArray(movements.data?.movements) ? movements.data.movements : []);
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
  // lost facts: billing jobs failed for good, settled sessions whose stored messages fall short of their count
  const failedJobs = Array.isArray(data.failedJobs) ? data.failedJobs : [];
  const countMismatches = Array.isArray(data.messageCountMismatches) ? data.messageCountMismatches : [];
  const lost = failedJobs.length + countMismatches.length;
  // balances the ledger does not explain (credits written outside it)
  const creditMismatches = Array.isArray(data.creditMismatches) ? data.creditMismatches : [];
  const unbalancedDays = days.filter((d) => d.balanced === false);
  // The API's `ok` already allows an ended session a grace period before its missing settlement counts.
  const ok = data.ok === true && unbalanced.length === 0 && mismatches.length === 0 && unbalancedDays.length === 0 && lost === 0 && creditMismatches.length === 0;

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
    if (lost) parts.push(`${lost} lost fact${lost === 1 ? '' : 's'}`);
    if (creditMismatches.length) parts.push(`${creditMismatches.length} balance${creditMismatches.length === 1 ? '' : 's'} the ledger does not explain`);
    if (unbalancedDays.length) parts.push(`${unbalancedDays.length} unbalanced day${unbalancedDays.length === 1 ? '' : 's'}`);
    setText(verdict, `✗ Does not balance: ${parts.join(', ') || 'the API reports a problem'}.`);
  }

  const problems = $('#recon-problems');
  problems.hidden = unbalanced.length === 0 && mismatches.length === 0 && unsettled.length === 0 && lost === 0 && creditMismatches.length === 0;
  const creditHost = $('#recon-credit-mismatches');
  clear(creditHost);
  if (creditMismatches.length) {
    const tbody = el('tbody');
    const headings = ['User', 'Credits', 'Ledger credits', 'Difference'];
    fillTable(
      tbody,
      creditMismatches,
      headings,
      (m) => [[el('span', { class: 'id', text: show(m.userId) })], [show(m.creditsRemaining), 'num'], [show(m.ledgerCredits), 'num'], [show(m.difference), 'num negative']],
      '',
    );
    creditHost.append(
      el('h4', { text: `Balances the ledger does not explain (${creditMismatches.length})` }),
      el(
        'div',
        { class: 'table-wrap' },
        el(
          'table',
          { class: 'data stack', id: 'credit-mismatch-table' },
          el('thead', {}, el('tr', {}, headings.map((h, i) => el('th', { scope: 'col', class: i ? 'num' : undefined, text: h })))),
          tbody,
        ),
      ),
    );
  }
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

  const lostHost = $('#recon-lost');
  clear(lostHost);
  if (failedJobs.length) {
    lostHost.append(
      el('h4', { text: `Billing jobs failed for good (${failedJobs.length})` }),
      el(
        'ul',
        { class: 'problem-list', id: 'failed-jobs' },
        failedJobs.map((job) =>
          el(
            'li',
            {},
            el('span', { class: 'id', text: show(job.id) }),
            ` ${show(job.name)}: ${show(job.failedReason)} `,
            ...(Array.isArray(job.sessionIds) ? job.sessionIds : []).map((id) => el('a', { href: `#/sessions/${encodeURIComponent(id)}`, class: 'id', text: id })),
          ),
        ),
      ),
    );
  }
  if (countMismatches.length) {
    lostHost.append(
      el('h4', { text: `Settled sessions missing acknowledged messages (${countMismatches.length})` }),
      el(
        'ul',
        { class: 'problem-list', id: 'message-count-mismatches' },
        countMismatches.map((m) =>
          el(
            'li',
            {},
            el('a', { href: `#/sessions/${encodeURIComponent(m.sessionId)}`, class: 'id', text: show(m.sessionId) }),
            ` ${show(m.storedMessages)} of ${show(m.messageCount)} messages stored`,
          ),
        ),
      ),
    );
  }

  const totals = data.totals && typeof data.totals === 'object' ? data.totals : {};
  const pairs = Object.entries(totals).map(([key, value]) => [
    humanize(key),
    typeof value === 'boolean' ? (value ? 'yes ✓' : 'no ✗') : typeof value === 'object' && value !== null ? JSON.stringify(value) : show(value),
    value === false ? 'bad' : '',
  ]);
  pairs.push(['Open sessions', Array.isArray(data.openSessions) ? String(data.openSessions.length) : show(data.openSessions)]);
  kv($('#recon-totals'), pairs);
  const payments = data.payments && typeof data.payments === 'object' ? data.payments : {};
  kv(
    $('#recon-payments'),
    Object.entries(payments).map(([key, value]) => [humanize(key), show(value), key === 'platformLoss' && value !== '0.0000' ? 'negative' : '']),
  );

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
export function renderRevenueChart(days) {
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

/** Money that entered or left other than through a session: purchases, refunds, disputes, grants, payouts, openings. */
function renderMovements(movements) {
  fillTable(
    $('#movements-table tbody'),
    movements,
    ['When', 'Kind', 'Person', 'Credits', 'Cash', 'Entries'],
    (m) => [
      show(m.createdAt),
      humanize(m.kind),
      [el('span', { class: 'id', text: show(m.userId) })],
      [show(m.credits), 'num'],
      [m.currency ? `${show(m.amountMinor)} ${m.currency}` : '—', 'num'],
      (m.entries ?? []).map((e) => `${e.accountKind}: ${e.amount}`).join(', '),
    ],
    'No money moved outside sessions in this range.',
    (m) => ({ kind: m.kind }),
  );
}
