// Creator payouts: what each creator earned, was paid, has pending and is owed; a payout run for a period.

import { api } from './api.js';
import { $, el, setText } from './dom.js';
import { show } from './format.js';
import { state } from './router.js';
import { fillTable } from './session-page.js';

/** The month before this one (UTC), as YYYY-MM: the usual period to pay. */
function lastMonth() {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

export function enterPayouts() {
  if (!$('#p-period').value) $('#p-period').value = lastMonth();
  loadBalances();
}

async function loadBalances() {
  const seq = ++state.payouts.seq;
  setText($('#payouts-error'), '');
  try {
    const { data } = await api.payoutBalances();
    if (seq !== state.payouts.seq) return;
    const balances = Array.isArray(data?.balances) ? data.balances : [];
    fillTable(
      $('#balances-table tbody'),
      balances,
      ['Creator', 'Earned', 'Paid', 'Pending', 'Owed'],
      (b) => [[el('span', { class: 'id', text: show(b.creatorId) })], [show(b.earned), 'num'], [show(b.paid), 'num'], [show(b.pending), 'num'], [show(b.owed), 'num']],
      'No creator has earned anything yet.',
    );
  } catch (error) {
    if (seq !== state.payouts.seq) return;
    if (error.status !== 401 && error.status !== 403) setText($('#payouts-error'), `Could not load the balances: ${error.display}`);
  }
}

export async function submitPayoutRun(event) {
  event.preventDefault();
  const period = $('#p-period').value;
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) {
    setText($('#payouts-error'), 'Choose a month.');
    return;
  }
  if (state.payouts.running) return;
  state.payouts.running = true;
  const button = $('#payout-run');
  button.disabled = true;
  setText($('#payouts-error'), '');
  setText($('#payouts-status'), `Paying creators for ${period}…`);
  try {
    const { data } = await api.runPayouts({ period });
    const payouts = Array.isArray(data?.payouts) ? data.payouts : [];
    const paid = payouts.filter((p) => p.status === 'paid').length;
    setText($('#payouts-status'), `${period}: ${payouts.length} payout${payouts.length === 1 ? '' : 's'}, ${paid} paid.`);
    fillTable(
      $('#run-table tbody'),
      payouts,
      ['Creator', 'Credits', 'Amount', 'Status', 'Transfer'],
      (p) => [
        [el('span', { class: 'id', text: show(p.creatorId) })],
        [show(p.credits), 'num'],
        [`${show(p.amountMinor)} ${show(p.currency)} (minor units)`, 'num'],
        [el('span', { class: `badge ${p.status === 'paid' ? 'ok' : 'bad'}`, text: p.failure ? `${p.status}: ${p.failure}` : show(p.status) })],
        [el('span', { class: 'id', text: show(p.transferId) })],
      ],
      'Nobody is owed at least the minimum, or no creator has a payout account.',
    );
    $('#run-result').hidden = false;
    await loadBalances();
  } catch (error) {
    setText($('#payouts-status'), '');
    if (error.status !== 401 && error.status !== 403) setText($('#payouts-error'), `The payout run failed: ${error.display}`);
  } finally {
    state.payouts.running = false;
    button.disabled = false;
  }
}
