// The console's state and its routing by location hash: which view shows, its heading focused.

import { enterAnalytics } from './analytics-page.js';
import { getToken, tokenClaims } from './api.js';
import { $, setText } from './dom.js';
import { enterPayouts } from './payouts-page.js';
import { enterReconciliation } from './reconciliation-page.js';
import { loadSession } from './session-page.js';
import { loadSessions } from './sessions-page.js';

export const state = {
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
  payouts: { seq: 0, running: false },
  detail: { id: null, seq: 0, adjustment: null, inFlight: false },
};

const views = ['signin', 'sessions', 'session', 'reconciliation', 'analytics', 'payouts'];

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

export function route() {
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
  } else if (hash === '#/payouts') {
    name = 'payouts';
    showView(name);
    enterPayouts();
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

/** Forgets the route shown last (after signing out, the next view is a first view: its heading is not focused). */
export function forgetRoute() {
  lastRoute = '';
}
