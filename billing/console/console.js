// Tollgate billing console: plain ES modules, no build step, no dependencies (this file wires them to the page).
// Every piece of server text goes into the page through textContent / attributes, never innerHTML.
// Money is shown exactly as the API sends it (decimal strings); it is never parsed for arithmetic
// (the chart converts values to numbers only to size its bars).

import { submitAnalytics } from './analytics-page.js';
import { $ } from './dom.js';
import { submitPayoutRun } from './payouts-page.js';
import { renderRevenueChart, submitReconciliation } from './reconciliation-page.js';
import { route, state } from './router.js';
import { renderTimeline, submitAdjustment } from './session-page.js';
import { applyFilters, exportCsv, firstPage, nextPage, previousPage, readFilters, resetFilters } from './sessions-page.js';
import { signIn, signOut } from './sign-in.js';

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
  $('#payouts-form').addEventListener('submit', submitPayoutRun);
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', redrawCharts);
  for (const heading of document.querySelectorAll('main h2')) heading.setAttribute('tabindex', '-1');
  // Signing out in another tab of this origin does not touch this tab's sessionStorage; nothing to sync.
  state.list.filters = readFilters();
  document.documentElement.dataset.ready = 'true';
  route();
}

start();
