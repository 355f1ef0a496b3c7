/*
 * Tollgate chat widget: pick an expert clone, chat with it per minute, watch the meter, end and rate the session.
 * Plain browser JavaScript (no build step); the socket.io client comes from the gateway itself
 * (`<gateway>/socket.io/socket.io.esm.min.js`). Speaks docs/protocol.md.
 *
 * Embed (the widget renders after the script tag, inside a shadow root, so no CSS leaks either way):
 *
 *   <script src="https://gateway.example/widget.js"
 *           data-gateway="https://gateway.example"   (default: where widget.js came from)
 *           data-clone-id="…"                         (optional: chat with this clone only)
 *           data-token-url="/tollgate/token"          (GET answers { "token": "<access token>" }; without it the
 *                                                      widget asks for a token to paste)
 *           data-target="#chat"></script>            (optional: mount into this element instead)
 *
 * Or mount by hand: `TollgateWidget.mount(element, { gateway, cloneId, tokenUrl, token })`.
 * Every text that comes from the server is set with textContent.
 */
(() => {
  'use strict';

  const script = document.currentScript;
  /** How long a request waits for its ack. */
  const REQUEST_TIMEOUT_MS = 10_000;
  /** How many times a message is sent again (same clientMessageId) after a timeout. */
  const SEND_RETRIES = 3;

  const ERROR_TEXT = {
    unauthorized: 'The access token was refused. Check that it is valid and not expired.',
    token_expired: 'Your access token expired. Sign in again to carry on.',
    too_many_connections: 'This account has too many chats open. Close one and try again.',
    insufficient_credits: 'You do not have enough credits for this chat.',
    clone_unavailable: 'This expert is not available right now.',
    invalid_state: 'That is not possible in the session’s current state.',
    rate_limited: 'Too many actions at once; wait a moment and try again.',
    not_found: 'The session or expert was not found.',
    forbidden: 'This session belongs to someone else.',
    invalid_payload: 'The gateway did not accept that (too long, or empty?).',
    timeout: 'The gateway did not answer in time. Check your connection and try again.',
    internal: 'Something went wrong on the gateway. Try again.',
  };

  const END_TEXT = {
    user: 'You ended the session.',
    credits_exhausted: 'Your credits ran out, so the session ended.',
    idle_timeout: 'The session ended after being paused for too long.',
  };

  /** Creates an element; string children become text nodes (never HTML). */
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes ?? {})) {
      if (value === false || value === undefined || value === null) continue;
      if (name === 'class') element.className = value;
      else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
      else element.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      element.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return element;
  }

  function formatDuration(totalSeconds) {
    const seconds = Math.max(0, Math.floor(totalSeconds));
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const rest = String(seconds % 60).padStart(2, '0');
    return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
  }

  /** "about 45 s" / "about 3 min" */
  function roughDuration(totalSeconds) {
    const seconds = Math.max(0, Math.round(totalSeconds));
    return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
  }

  // Money is a decimal string with four places; arithmetic on it uses bigint units of 0.0001, never floats.
  const toUnits = (money) => BigInt(String(money).replace('.', ''));
  const fromUnits = (units) => `${units / 10000n}.${String(units % 10000n).padStart(4, '0')}`;

  function initials(name) {
    return String(name)
      .split(/\s+/)
      .filter((part) => /\p{L}/u.test(part))
      .slice(0, 2)
      .map((part) => part.match(/\p{L}/u)[0].toUpperCase())
      .join('');
  }

  function avatar(clone, size) {
    const fallback = h('span', { class: `tg-avatar tg-avatar-${size}`, 'aria-hidden': 'true' }, initials(clone.name) || '?');
    let url;
    try {
      url = clone.avatarUrl ? new URL(clone.avatarUrl) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return fallback;
    const image = h('img', { class: `tg-avatar tg-avatar-${size}`, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' });
    image.addEventListener('error', () => image.replaceWith(fallback), { once: true });
    image.src = url.href;
    return image;
  }

  function errorText(error) {
    if (error && ERROR_TEXT[error.code]) {
      // the gateway's own message says more for these
      return error.code === 'invalid_state' || error.code === 'invalid_payload' ? `${ERROR_TEXT[error.code]} (${error.message})` : ERROR_TEXT[error.code];
    }
    return (error && error.message) || 'Something went wrong.';
  }

  /** A random v4 UUID; crypto.randomUUID needs a secure context, which a host page on http is not. */
  function newId() {
    if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  class RequestError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  /**
   * Mounts a widget into `host` (inside an open shadow root).
   * options: gateway (URL), cloneId?, tokenUrl? (GET → { token }), token? (a fixed token; else a paste field).
   */
  function mount(host, options) {
    const gateway = String(options.gateway).replace(/\/+$/, '');
    const storageKey = `tollgate-widget:${gateway}:${options.cloneId ?? '*'}`;
    const shadow = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
    shadow.replaceChildren();

    const state = {
      socket: undefined,
      token: options.token,
      clones: [],
      clone: undefined,
      session: undefined,
      everConnected: false,
      /** message id → its list item */
      messages: new Map(),
      /** newest message seen: { id, createdAt } */
      last: undefined,
      summaryShown: false,
      rated: false,
      /** the last meter:tick of the session */
      lastTick: undefined,
      /** a session:start is in flight */
      starting: false,
      /** events that came for another session while starting: { sessionId, run } */
      early: [],
      announcedMinute: -1,
    };

    // ---- the view ---------------------------------------------------------------------------------------------
    const stylesheet = h('link', { rel: 'stylesheet', href: `${gateway}/web/widget.css` });
    const connection = h('p', { class: 'tg-connection', role: 'status' }, 'Not connected');
    const errorBox = h('p', { class: 'tg-error', role: 'alert', hidden: true });

    const tokenInput = h('input', {
      id: 'tg-token',
      type: 'password',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
      'aria-describedby': 'tg-token-hint',
    });
    const signin = h(
      'section',
      { class: 'tg-signin', 'aria-labelledby': 'tg-signin-title', hidden: true },
      h('h3', { id: 'tg-signin-title' }, 'Sign in'),
      h(
        'form',
        { onsubmit: (event) => (event.preventDefault(), signIn()) },
        h('label', { for: 'tg-token' }, 'Access token'),
        tokenInput,
        h('p', { id: 'tg-token-hint', class: 'tg-hint' }, 'Paste your Tollgate access token (a JWT whose subject is your user id).'),
        h('button', { type: 'submit', class: 'tg-primary' }, 'Connect'),
      ),
    );

    const cloneList = h('ul', { class: 'tg-clones' });
    const startButton = h('button', { type: 'submit', class: 'tg-primary' }, 'Start chat');
    const picker = h(
      'section',
      { class: 'tg-picker', 'aria-labelledby': 'tg-picker-title', hidden: true },
      h('h3', { id: 'tg-picker-title' }, 'Choose an expert'),
      h(
        'form',
        { onsubmit: (event) => (event.preventDefault(), startSession()) },
        h('fieldset', {}, h('legend', { class: 'tg-visually-hidden' }, 'Expert'), cloneList),
        startButton,
      ),
    );

    const chatAvatar = h('span', { class: 'tg-chat-avatar' });
    const chatName = h('h3', { id: 'tg-chat-title', class: 'tg-chat-name' });
    const statusBadge = h('span', { class: 'tg-badge' });
    const meterTime = h('dd', {}, '0:00');
    const meterCost = h('dd', {}, '—');
    const meterCredits = h('dd', {}, '—');
    const meterRate = h('dd', {}, '—');
    // The numbers change every tick; screen readers hear a summary each minute and on pause/resume instead.
    const meterAnnouncer = h('p', { class: 'tg-visually-hidden', 'aria-live': 'polite', 'aria-atomic': 'true' });
    const meter = h(
      'section',
      { class: 'tg-meter', 'aria-label': 'Meter' },
      h(
        'dl',
        {},
        h('div', {}, h('dt', {}, 'Time'), meterTime),
        h('div', {}, h('dt', {}, 'Cost'), meterCost),
        h('div', {}, h('dt', {}, 'Credits left'), meterCredits),
        h('div', {}, h('dt', {}, 'Rate / min'), meterRate),
      ),
      meterAnnouncer,
    );
    const lowBalance = h('p', { class: 'tg-low', role: 'alert', hidden: true });
    const log = h('ol', { class: 'tg-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', tabindex: '0' });
    const messageInput = h('textarea', { id: 'tg-message', rows: '2', required: true });
    const sendButton = h('button', { type: 'submit', class: 'tg-primary' }, 'Send');
    const composer = h(
      'form',
      { class: 'tg-composer', onsubmit: (event) => (event.preventDefault(), sendMessage()) },
      h('label', { for: 'tg-message', class: 'tg-visually-hidden' }, 'Message'),
      messageInput,
      sendButton,
    );
    messageInput.setAttribute('placeholder', 'Ask something… (Enter sends, Shift+Enter for a new line)');
    messageInput.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    const pauseButton = h('button', { type: 'button', onclick: () => transition('session:pause') }, 'Pause');
    const resumeButton = h('button', { type: 'button', hidden: true, onclick: () => transition('session:resume') }, 'Resume');
    const endButton = h('button', { type: 'button', class: 'tg-danger', onclick: () => transition('session:end') }, 'End chat');
    const controls = h('div', { class: 'tg-controls', role: 'group', 'aria-label': 'Session controls' }, pauseButton, resumeButton, endButton);

    const summaryTitle = h('h3', { id: 'tg-summary-title', tabindex: '-1' }, 'Session ended');
    const summaryReason = h('p', { class: 'tg-reason' });
    const summaryDuration = h('dd', {}, '—');
    const summaryMessages = h('dd', {}, '—');
    const summaryRate = h('dd', {}, '—');
    const summaryTotal = h('dd', { class: 'tg-total' }, '—');
    const stars = [1, 2, 3, 4, 5].map((value) =>
      h(
        'label',
        { class: 'tg-star' },
        h('input', { type: 'radio', name: 'tg-rating', value: String(value), required: true }),
        h('span', { 'aria-hidden': 'true' }, '★'),
        h('span', { class: 'tg-visually-hidden' }, value === 1 ? '1 star' : `${value} stars`),
      ),
    );
    const feedbackInput = h('textarea', { id: 'tg-feedback', rows: '2', maxlength: '4000' });
    const rateButton = h('button', { type: 'submit', class: 'tg-primary' }, 'Submit rating');
    const rateThanks = h('p', { class: 'tg-thanks', role: 'status' });
    const rateForm = h(
      'form',
      { class: 'tg-rate', onsubmit: (event) => (event.preventDefault(), rateSession()) },
      h('fieldset', { class: 'tg-stars' }, h('legend', {}, 'Rate this session'), stars),
      h('label', { for: 'tg-feedback' }, 'Feedback (optional)'),
      feedbackInput,
      rateButton,
    );
    const summary = h(
      'section',
      { class: 'tg-summary', 'aria-labelledby': 'tg-summary-title', hidden: true },
      summaryTitle,
      summaryReason,
      h(
        'dl',
        {},
        h('div', {}, h('dt', {}, 'Duration'), summaryDuration),
        h('div', {}, h('dt', {}, 'Messages'), summaryMessages),
        h('div', {}, h('dt', {}, 'Rate / min'), summaryRate),
        h('div', {}, h('dt', {}, 'Total charged'), summaryTotal),
      ),
      rateForm,
      rateThanks,
      h('button', { type: 'button', onclick: () => newChat() }, 'Start a new chat'),
    );

    const chat = h(
      'section',
      { class: 'tg-chat', 'aria-labelledby': 'tg-chat-title', hidden: true },
      h('div', { class: 'tg-chat-head' }, chatAvatar, chatName, statusBadge),
      meter,
      lowBalance,
      log,
      composer,
      controls,
      summary,
    );

    const root = h(
      'div',
      { class: 'tg', part: 'widget', hidden: true },
      h('header', { class: 'tg-header' }, h('h2', {}, 'Chat with an expert'), connection),
      errorBox,
      signin,
      picker,
      chat,
    );
    // shown once its stylesheet has loaded (or failed to), so it never flashes unstyled
    const reveal = () => root.removeAttribute('hidden');
    stylesheet.addEventListener('load', reveal, { once: true });
    stylesheet.addEventListener('error', reveal, { once: true });
    shadow.append(stylesheet, root);

    // ---- helpers ----------------------------------------------------------------------------------------------
    function show(view) {
      for (const section of [signin, picker, chat]) section.hidden = section !== view;
    }

    function setError(error) {
      errorBox.textContent = error ? errorText(error) : '';
      errorBox.hidden = !error;
    }

    function setConnection(text) {
      connection.textContent = text;
    }

    async function getToken() {
      if (options.tokenUrl) {
        const response = await fetch(options.tokenUrl, { credentials: 'include', headers: { accept: 'application/json' } });
        if (!response.ok) throw new Error(`the token URL answered ${response.status}`);
        const body = await response.json();
        if (!body || typeof body.token !== 'string') throw new Error('the token URL answered no token');
        return body.token;
      }
      if (!state.token) throw new Error('no access token');
      return state.token;
    }

    /** Sends a client event; resolves with the ack's data, rejects with a RequestError. */
    async function request(event, payload) {
      if (!state.socket) throw new RequestError('timeout', 'not connected');
      let answer;
      try {
        answer = await state.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck(event, payload);
      } catch {
        throw new RequestError('timeout', `no answer to ${event}`);
      }
      if (!answer || !answer.ok) {
        const error = (answer && answer.error) || { code: 'internal', message: 'internal error' };
        throw new RequestError(error.code, error.message);
      }
      return answer;
    }

    function rememberSession(sessionId) {
      try {
        if (sessionId) sessionStorage.setItem(storageKey, sessionId);
        else sessionStorage.removeItem(storageKey);
      } catch {
        // storage may be unavailable (privacy mode, sandboxed frames): the widget works without it
      }
    }

    function storedSession() {
      try {
        return sessionStorage.getItem(storageKey);
      } catch {
        return null;
      }
    }

    // ---- connecting -------------------------------------------------------------------------------------------
    async function signIn() {
      const value = tokenInput.value.trim();
      if (!value) return;
      state.token = value;
      await connect();
    }

    async function connect() {
      setError(null);
      setConnection('Connecting…');
      let io;
      try {
        ({ io } = await import(`${gateway}/socket.io/socket.io.esm.min.js`));
      } catch {
        setConnection('Not connected');
        setError({ message: 'Could not load the chat client from the gateway.' });
        return;
      }
      state.socket?.disconnect();
      const socket = io(gateway, {
        transports: ['websocket'],
        // asked at every (re)connect, so a token URL can hand out fresh tokens
        auth: (callback) => {
          getToken().then(
            (token) => callback({ token }),
            (error) => {
              setError({ message: `Could not get an access token: ${error.message}` });
              callback({});
            },
          );
        },
      });
      state.socket = socket;
      bindSocket(socket);
    }

    function bindSocket(socket) {
      socket.on('connect', () => {
        setConnection('Connected');
        setError(null);
        const reconnected = state.everConnected;
        state.everConnected = true;
        if (!reconnected) void afterFirstConnect();
        else if (!socket.recovered) void resync();
      });
      // The gateway cuts a socket whose token expired, saying so first: with a token URL the widget connects again
      // (which asks it for a fresh token); with a pasted token, the person signs in again.
      let tokenExpired = false;
      socket.on('auth:expired', () => {
        tokenExpired = true;
      });
      socket.on('disconnect', (reason) => {
        if (tokenExpired && reason === 'io server disconnect') {
          tokenExpired = false;
          if (options.tokenUrl) {
            setConnection('Reconnecting…');
            socket.connect();
            return;
          }
          setError({ code: 'token_expired', message: 'token expired' });
          state.everConnected = false;
          if (!options.token) {
            show(signin);
            tokenInput.focus();
          }
        }
        setConnection(socket.active ? 'Reconnecting…' : 'Disconnected');
      });
      socket.on('connect_error', (error) => {
        if (socket.active) {
          setConnection('Reconnecting…');
          return;
        }
        setConnection('Not connected');
        setError({ code: ERROR_TEXT[error.message] ? error.message : 'internal', message: error.message });
        state.everConnected = false;
        if (!options.tokenUrl && !options.token) {
          show(signin);
          tokenInput.focus();
        }
      });
      // Events of the current session; those of a session being started may come before its ack: kept until it.
      const onSession = (event, sessionIdOf, handler) => {
        socket.on(event, (payload) => {
          const sessionId = sessionIdOf(payload);
          if (sessionId === state.session?.id) handler(payload);
          else if (state.starting) state.early.push({ sessionId, run: () => handler(payload) });
        });
      };
      onSession('session:updated', (session) => session.id, applySession);
      onSession('meter:tick', (tick) => tick.sessionId, updateMeter);
      onSession('credits:low', (warning) => warning.sessionId, (warning) => {
        lowBalance.textContent = `Low balance: about ${roughDuration(warning.secondsLeft)} left (${warning.creditsRemaining} credits). The chat ends when your credits run out.`;
        lowBalance.hidden = false;
        meterCredits.textContent = warning.creditsRemaining;
      });
      onSession('message:delta', (delta) => delta.sessionId, ({ messageId, delta }) => {
        const item = messageItem(messageId, 'ai');
        if (item.dataset.state === 'complete') return;
        item.dataset.state = 'streaming';
        log.setAttribute('aria-busy', 'true');
        item.querySelector('.tg-text').append(document.createTextNode(delta));
        scrollLog();
      });
      onSession('message:completed', (completed) => completed.sessionId, ({ message }) => renderMessage(message));
      onSession('message:failed', (failed) => failed.sessionId, ({ messageId }) => {
        const item = messageItem(messageId, 'ai');
        item.dataset.state = 'failed';
        item.querySelector('.tg-note').textContent = 'The expert could not answer this message.';
        settleLog();
      });
      onSession('session:ended', (ended) => ended.sessionId, ({ reason, session }) => showSummary(session, reason));
    }

    async function afterFirstConnect() {
      try {
        await loadClones();
      } catch (error) {
        setError({ message: `Could not load the experts: ${error.message}` });
        return;
      }
      const sessionId = storedSession();
      if (sessionId && (await restore(sessionId))) return;
      showPicker();
    }

    async function loadClones() {
      const query = options.cloneId ? `?id=${encodeURIComponent(options.cloneId)}` : '';
      const response = await fetch(`${gateway}/api/clones${query}`, { headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`the gateway answered ${response.status}`);
      state.clones = (await response.json()).clones;
    }

    /** Picks up a session this page had open (a reload); false when there is none to continue. */
    async function restore(sessionId) {
      try {
        const { session } = await request('session:get', { sessionId });
        const clone = state.clones.find((c) => c.id === session.cloneId);
        if (session.status === 'ended' || !clone) {
          rememberSession(null);
          return false;
        }
        openChat(clone, session);
        const { messages } = await request('session:history', { sessionId });
        for (const message of messages) renderMessage(message);
        return true;
      } catch {
        rememberSession(null);
        return false;
      }
    }

    /** After a reconnect whose missed events were not replayed: the session's state and the messages missed. */
    async function resync() {
      const session = state.session;
      if (!session || state.summaryShown) return;
      try {
        const fresh = (await request('session:get', { sessionId: session.id })).session;
        const payload = state.last ? { sessionId: session.id, afterMessageId: state.last.id } : { sessionId: session.id };
        const { messages } = await request('session:history', payload);
        for (const message of messages) renderMessage(message);
        applySession(fresh);
      } catch (error) {
        setError(error);
      }
    }

    // ---- choosing a clone -------------------------------------------------------------------------------------
    function showPicker() {
      cloneList.replaceChildren();
      if (state.clones.length === 0) {
        cloneList.append(h('li', { class: 'tg-empty' }, options.cloneId ? 'This expert is not available.' : 'No experts are available right now.'));
        startButton.disabled = true;
      } else {
        startButton.disabled = false;
        state.clones.forEach((clone, index) => {
          const nameId = `tg-clone-name-${index}`;
          const detailsId = `tg-clone-details-${index}`;
          const radio = h('input', {
            type: 'radio',
            name: 'tg-clone',
            value: clone.id,
            'aria-labelledby': nameId,
            'aria-describedby': detailsId,
          });
          radio.checked = index === 0;
          cloneList.append(
            h(
              'li',
              {},
              h(
                'label',
                { class: 'tg-clone' },
                radio,
                avatar(clone, 'large'),
                h(
                  'span',
                  { class: 'tg-clone-text' },
                  h('span', { class: 'tg-clone-name', id: nameId }, clone.name),
                  h(
                    'span',
                    { id: detailsId },
                    h('span', { class: 'tg-clone-rate' }, `${clone.ratePerMinute} credits / min`),
                    clone.bio ? h('span', { class: 'tg-clone-bio' }, clone.bio) : null,
                    clone.expertiseAreas?.length ? h('span', { class: 'tg-clone-tags' }, clone.expertiseAreas.join(' · ')) : null,
                  ),
                ),
              ),
            ),
          );
        });
      }
      show(picker);
      (cloneList.querySelector('input:checked') ?? startButton).focus();
    }

    async function startSession() {
      const chosen = cloneList.querySelector('input:checked');
      const clone = chosen && state.clones.find((c) => c.id === chosen.value);
      if (!clone) return;
      setError(null);
      startButton.disabled = true;
      state.starting = true;
      state.early = [];
      try {
        const { session } = await request('session:start', { cloneId: clone.id, type: 'chat' });
        rememberSession(session.id);
        openChat(clone, session);
        for (const early of state.early) if (early.sessionId === session.id) early.run();
      } catch (error) {
        setError(error);
      } finally {
        state.starting = false;
        state.early = [];
        startButton.disabled = false;
      }
    }

    // ---- the chat ---------------------------------------------------------------------------------------------
    function openChat(clone, session) {
      state.clone = clone;
      state.session = session;
      state.messages.clear();
      state.last = undefined;
      state.summaryShown = false;
      state.rated = false;
      state.lastTick = undefined;
      state.announcedMinute = -1;
      log.replaceChildren();
      log.removeAttribute('aria-busy');
      lowBalance.hidden = true;
      summary.hidden = true;
      composer.hidden = false;
      controls.hidden = false;
      rateForm.hidden = false;
      rateForm.reset();
      rateButton.disabled = false;
      rateThanks.textContent = '';
      chatAvatar.replaceChildren(avatar(clone, 'small'));
      chatName.textContent = clone.name;
      meterTime.textContent = formatDuration(session.activeSeconds);
      meterCost.textContent = session.cost;
      meterCredits.textContent = '—';
      meterRate.textContent = session.ratePerMinute;
      applySession(session);
      show(chat);
      messageInput.focus();
    }

    function applySession(session) {
      state.session = session;
      const status = session.status;
      statusBadge.textContent = status === 'active' ? 'Active' : status === 'paused' ? 'Paused' : 'Ended';
      statusBadge.dataset.status = status;
      pauseButton.hidden = status !== 'active';
      resumeButton.hidden = status !== 'paused';
      endButton.disabled = status === 'ended';
      sendButton.disabled = status !== 'active';
      messageInput.disabled = status !== 'active';
      meterTime.textContent = formatDuration(session.activeSeconds);
      meterCost.textContent = session.cost;
      if (status === 'ended') showSummary(session, undefined);
    }

    function updateMeter(tick) {
      state.lastTick = tick;
      meterTime.textContent = formatDuration(tick.activeSeconds);
      meterCost.textContent = tick.cost;
      meterCredits.textContent = tick.creditsRemaining;
      meterRate.textContent = tick.ratePerMinute;
      const minute = Math.floor(tick.activeSeconds / 60);
      if (minute !== state.announcedMinute) {
        state.announcedMinute = minute;
        meterAnnouncer.textContent = `${minute} min in, cost ${tick.cost}, ${tick.creditsRemaining} credits left`;
      }
    }

    async function transition(event) {
      const session = state.session;
      if (!session) return;
      setError(null);
      for (const button of [pauseButton, resumeButton, endButton]) button.disabled = true;
      try {
        const answer = await request(event, { sessionId: session.id });
        if (event === 'session:end') showSummary(answer.session, 'user');
        else applySession(answer.session);
        if (event === 'session:pause') meterAnnouncer.textContent = 'Paused: the meter is stopped.';
        if (event === 'session:resume') {
          meterAnnouncer.textContent = 'Resumed: the meter is running.';
          messageInput.focus();
        } else if (event === 'session:pause') resumeButton.focus();
      } catch (error) {
        setError(error);
      } finally {
        pauseButton.disabled = false;
        resumeButton.disabled = false;
        endButton.disabled = state.session?.status === 'ended';
      }
    }

    /** The list item of a message, created at the end of the log when new. */
    function messageItem(id, senderType) {
      let item = state.messages.get(id);
      if (item) return item;
      const who = senderType === 'user' ? 'You' : state.clone?.name ?? 'Expert';
      item = h(
        'li',
        { class: `tg-message tg-${senderType}`, 'data-message-id': id },
        h('span', { class: 'tg-who' }, who),
        h('p', { class: 'tg-text' }),
        h('p', { class: 'tg-note' }),
      );
      state.messages.set(id, item);
      log.append(item);
      return item;
    }

    function renderMessage(message) {
      const item = messageItem(message.id, message.senderType);
      item.dataset.state = 'complete';
      item.querySelector('.tg-text').textContent = message.content;
      item.querySelector('.tg-note').textContent = '';
      item.querySelector('.tg-citations')?.remove();
      if (message.citations?.length) {
        item.append(
          h(
            'div',
            { class: 'tg-citations' },
            h('span', { class: 'tg-citations-title' }, 'Sources'),
            h(
              'ul',
              {},
              message.citations.map((citation) => h('li', {}, `${citation.title} — part ${Number(citation.chunkIndex) + 1}`)),
            ),
          ),
        );
      }
      if (!state.last || message.createdAt >= state.last.createdAt) state.last = { id: message.id, createdAt: message.createdAt };
      settleLog();
    }

    function settleLog() {
      if (![...state.messages.values()].some((item) => item.dataset.state === 'streaming')) log.removeAttribute('aria-busy');
      scrollLog();
    }

    function scrollLog() {
      log.scrollTop = log.scrollHeight;
    }

    async function sendMessage() {
      const session = state.session;
      const content = messageInput.value.trim();
      if (!session || !content || session.status !== 'active') return;
      setError(null);
      messageInput.value = '';
      const clientMessageId = newId();
      const pending = h(
        'li',
        { class: 'tg-message tg-user', 'data-state': 'sending' },
        h('span', { class: 'tg-who' }, 'You'),
        h('p', { class: 'tg-text' }, content),
        h('p', { class: 'tg-note' }, 'Sending…'),
      );
      log.append(pending);
      scrollLog();
      for (let attempt = 0; ; attempt++) {
        try {
          const { message } = await request('message:send', { sessionId: session.id, clientMessageId, content });
          // a reply (or a resync) may have rendered it already
          if (state.messages.has(message.id)) pending.remove();
          else {
            pending.dataset.messageId = message.id;
            state.messages.set(message.id, pending);
          }
          renderMessage(message);
          return;
        } catch (error) {
          // the same clientMessageId again: stored and charged once however many attempts arrive
          if (error.code === 'timeout' && attempt < SEND_RETRIES) continue;
          pending.dataset.state = 'failed';
          pending.querySelector('.tg-note').textContent = `Not sent: ${errorText(error)}`;
          return;
        }
      }
    }

    // ---- the end ----------------------------------------------------------------------------------------------
    function showSummary(session, reason) {
      state.session = session;
      const first = !state.summaryShown;
      state.summaryShown = true;
      statusBadge.textContent = 'Ended';
      statusBadge.dataset.status = 'ended';
      composer.hidden = true;
      controls.hidden = true;
      lowBalance.hidden = true;
      if (reason !== undefined || first) summaryReason.textContent = END_TEXT[reason] ?? 'The session has ended.';
      if (reason !== undefined) summary.dataset.reason = reason;
      fillSummary(session);
      summary.hidden = false;
      if (!first) return;
      rememberSession(null);
      summaryTitle.focus();
      // the ended session's cost is final; the gateway's record confirms it (from Postgres once settled)
      request('session:get', { sessionId: session.id }).then(
        ({ session: settled }) => {
          if (settled.id === state.session?.id) fillSummary(settled);
        },
        () => undefined,
      );
    }

    function fillSummary(session) {
      summaryDuration.textContent = formatDuration(session.activeSeconds);
      summaryMessages.textContent = String(session.messageCount);
      summaryRate.textContent = `${session.ratePerMinute} credits`;
      summaryTotal.textContent = `${session.cost} credits`;
      meterTime.textContent = formatDuration(session.activeSeconds);
      meterCost.textContent = session.cost;
      // what the last tick left, less what the session cost since
      const tick = state.lastTick;
      if (tick && tick.sessionId === session.id) {
        const left = toUnits(tick.creditsRemaining) + toUnits(tick.cost) - toUnits(session.cost);
        meterCredits.textContent = fromUnits(left > 0n ? left : 0n);
      }
    }

    async function rateSession() {
      const session = state.session;
      const chosen = rateForm.querySelector('input[name="tg-rating"]:checked');
      if (!session || !chosen || state.rated) return;
      const rating = Number(chosen.value);
      const feedback = feedbackInput.value.trim();
      rateButton.disabled = true;
      setError(null);
      // a session ended a moment ago may not be recorded yet (invalid_state): ask again shortly
      for (let attempt = 0; ; attempt++) {
        try {
          await request('session:rate', feedback ? { sessionId: session.id, rating, feedback } : { sessionId: session.id, rating });
          state.rated = true;
          rateForm.hidden = true;
          rateThanks.textContent = `Thank you! You rated this session ${rating} of 5 stars.`;
          return;
        } catch (error) {
          if (error.code === 'invalid_state' && attempt < 2) {
            await new Promise((resolve) => setTimeout(resolve, 1000));
            continue;
          }
          setError(error);
          rateButton.disabled = false;
          return;
        }
      }
    }

    function newChat() {
      state.session = undefined;
      state.summaryShown = false;
      showPicker();
    }

    // ---- start ------------------------------------------------------------------------------------------------
    if (options.tokenUrl || options.token) void connect();
    else {
      show(signin);
    }

    return {
      destroy() {
        state.socket?.disconnect();
        shadow.replaceChildren();
      },
    };
  }

  window.TollgateWidget = { mount };

  // Loaded by a script tag: mount next to it (or into data-target).
  if (script && script.dataset.mount !== 'manual') {
    const data = script.dataset;
    const gateway = data.gateway || new URL(script.src, location.href).origin;
    let host = data.target ? document.querySelector(data.target) : null;
    if (!host) {
      host = document.createElement('div');
      host.className = 'tollgate-widget';
      script.after(host);
    }
    mount(host, { gateway, cloneId: data.cloneId || undefined, tokenUrl: data.tokenUrl || undefined });
  }
})();
