// Signing in with an admin's access token (checked against the API) and signing out.

import { api, notAllowedMessage, query, request, setToken } from './api.js';
import { $, setText } from './dom.js';
import { forgetRoute, route, state } from './router.js';
import { readFilters } from './sessions-page.js';

export async function signIn(event) {
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
    forgetRoute();
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

export function signOut() {
  setToken(null);
  state.signinError = '';
  $('#filters').reset();
  state.list = { filters: readFilters(), cursor: null, previous: [], seq: state.list.seq + 1 };
  location.hash = '#/signin';
  route();
  $('#token').focus();
}
