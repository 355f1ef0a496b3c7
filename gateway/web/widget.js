/*
 * Tollgate chat widget: pick an expert clone, chat or talk with it per minute, watch the meter, end and rate the
 * session. A voice call joins the session's LiveKit room with LiveKit's browser SDK (served by the gateway at
 * `<gateway>/web/livekit-client.js`, loaded only for a call) and shows what the meter follows: the call is metered
 * only while the person and the clone's voice agent are both in the room and it is not on hold.
 * Plain browser JavaScript (no build step). It talks to the gateway through the same typed client Node callers use
 * (shared/src/client/tollgate-client.ts, which the gateway serves bundled at `<gateway>/web/tollgate-client.js`):
 * requests and their errors, idempotent resends, the catch-up after a reconnect, fresh tokens. Speaks
 * docs/protocol.md.
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
    overloaded: 'The service is very busy right now. Try again in a few seconds.',
    unavailable: 'The service is briefly unavailable. Try again in a few seconds.',
    internal: 'Something went wrong on the gateway. Try again.',
  };

  const END_TEXT = {
    user: 'You ended the session.',
    credits_exhausted: 'Your credits ran out, so the session ended.',
    idle_timeout: 'The session ended after being paused for too long.',
    join_timeout: 'You did not join the call in time, so the session ended. Nothing was charged.',
    agent_timeout: 'The expert could not join the call, so the session ended. Nothing was charged for the wait.',
    room_finished: 'The call ended.',
  };

  /** How a voice call's conversation is labelled on the badge, by status. */
  const CALL_BADGE = { active: 'Talking', paused: 'Paused', ended: 'Ended' };

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
      /** the TollgateClient while connected */
      client: undefined,
      token: options.token,
      clones: [],
      clone: undefined,
      session: undefined,
      /** message id → its list item */
      messages: new Map(),
      summaryShown: false,
      rated: false,
      /** the last meter:tick of the session */
      lastTick: undefined,
      /** a session:start is in flight */
      starting: false,
      /** events that came for another session while starting: { sessionId, run } */
      early: [],
      announcedMinute: -1,
      /** a voice session's call: { room (LiveKit Room while joined), muted, sessionId } */
      call: undefined,
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
    const callButton = h('button', { type: 'submit' }, 'Start voice call');
    const picker = h(
      'section',
      { class: 'tg-picker', 'aria-labelledby': 'tg-picker-title', hidden: true },
      h('h3', { id: 'tg-picker-title' }, 'Choose an expert'),
      h(
        'form',
        { onsubmit: (event) => (event.preventDefault(), startSession(event.submitter === callButton ? 'voice' : 'chat')) },
        h('fieldset', {}, h('legend', { class: 'tg-visually-hidden' }, 'Expert'), cloneList),
        h('div', { class: 'tg-start' }, startButton, callButton),
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
    // A voice call: what the meter follows (who is in the room, a hold, silence), and the browser's own connection.
    const callState = h('p', { class: 'tg-call-state', role: 'status', 'aria-live': 'polite' });
    const callLine = h('p', { class: 'tg-call-line' });
    const muteButton = h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => toggleMute() }, 'Mute microphone');
    const rejoinButton = h('button', { type: 'button', hidden: true, onclick: () => joinCall() }, 'Rejoin call');
    const audioButton = h('button', { type: 'button', hidden: true, onclick: () => state.call?.room?.startAudio() }, 'Play audio');
    // the expert's voice: LiveKit's audio elements live here, unseen
    const audioSink = h('div', { hidden: true });
    const callPanel = h(
      'section',
      { class: 'tg-call', 'aria-label': 'Call', hidden: true },
      callState,
      callLine,
      h('div', { class: 'tg-controls', role: 'group', 'aria-label': 'Call controls' }, muteButton, rejoinButton, audioButton),
      audioSink,
    );
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
      callPanel,
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

    /** The connected client (TollgateClient: its requests reject with a TollgateRequestError, `.code` set). */
    function client() {
      if (!state.client) throw Object.assign(new Error('not connected'), { code: 'timeout' });
      return state.client;
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
      let TollgateClient;
      try {
        ({ TollgateClient } = await import(`${gateway}/web/tollgate-client.js`));
      } catch {
        setConnection('Not connected');
        setError({ message: 'Could not load the chat client from the gateway.' });
        return;
      }
      state.client?.close();
      const created = new TollgateClient({ requestTimeoutMs: REQUEST_TIMEOUT_MS, sendRetries: SEND_RETRIES });
      state.client = created;
      bindClient(created);
      try {
        // the token is asked at every (re)connect, so a token URL can hand out fresh ones
        await created.connect(gateway, getToken);
      } catch (error) {
        if (state.client !== created) return;
        state.client = undefined;
        setConnection('Not connected');
        setError(error);
        askForToken();
        return;
      }
      setConnection('Connected');
      setError(null);
      void afterFirstConnect();
    }

    /** Without a token URL or a given token, the person pastes one. */
    function askForToken() {
      if (options.tokenUrl || options.token) return;
      show(signin);
      tokenInput.focus();
    }

    function bindClient(created) {
      const current = () => state.client === created;
      created.on('connection', (connection) => {
        if (!current() || connection === 'connecting') return;
        setConnection({ connected: 'Connected', reconnecting: 'Reconnecting…', disconnected: 'Disconnected' }[connection] ?? 'Connecting…');
        if (connection === 'connected') setError(null);
      });
      created.on('error', (error) => {
        if (current()) setError({ message: error && error.message ? `Could not get an access token or catch up: ${error.message}` : 'Something went wrong.' });
      });
      // The gateway cuts a socket whose token expired, saying so first: the client connects again, asking the token
      // URL for a fresh one; a pasted token cannot be renewed, so the person signs in again.
      created.on('auth:expired', () => {
        if (!current() || options.tokenUrl) return;
        created.close();
        state.client = undefined;
        setConnection('Disconnected');
        setError({ code: 'token_expired', message: 'token expired' });
        askForToken();
      });
      // After a reconnect whose missed events were not replayed, the client caught the session up: the messages
      // missed, then its state.
      created.on('resync', ({ session, messages }) => {
        if (!current() || session.id !== state.session?.id || state.summaryShown) return;
        for (const message of messages) renderMessage(message);
        applySession(session);
      });
      // Events of the current session; those of a session being started may come before its ack: kept until it.
      const onSession = (event, sessionIdOf, handler) => {
        created.on(event, (payload) => {
          if (!current()) return;
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
        const session = await client().get(sessionId);
        const clone = state.clones.find((c) => c.id === session.cloneId);
        if (session.status === 'ended' || !clone) {
          rememberSession(null);
          return false;
        }
        openChat(clone, session);
        for (const message of await client().history(sessionId)) renderMessage(message);
        if (session.type !== 'chat') void joinCall();
        return true;
      } catch {
        rememberSession(null);
        return false;
      }
    }

    // ---- choosing a clone -------------------------------------------------------------------------------------
    function showPicker() {
      cloneList.replaceChildren();
      if (state.clones.length === 0) {
        cloneList.append(h('li', { class: 'tg-empty' }, options.cloneId ? 'This expert is not available.' : 'No experts are available right now.'));
        startButton.disabled = true;
        callButton.disabled = true;
      } else {
        startButton.disabled = false;
        callButton.disabled = false;
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

    /** Starts a chat, or a voice call (then joins its room). */
    async function startSession(type) {
      const chosen = cloneList.querySelector('input:checked');
      const clone = chosen && state.clones.find((c) => c.id === chosen.value);
      if (!clone) return;
      setError(null);
      startButton.disabled = true;
      callButton.disabled = true;
      state.starting = true;
      state.early = [];
      try {
        const { session, livekit } = type === 'voice' ? await client().startCall(clone.id, 'voice') : { session: await client().startSession(clone.id, 'chat') };
        rememberSession(session.id);
        openChat(clone, session);
        for (const early of state.early) if (early.sessionId === session.id) early.run();
        if (livekit) void joinCall(livekit);
      } catch (error) {
        setError(error);
      } finally {
        state.starting = false;
        state.early = [];
        startButton.disabled = false;
        callButton.disabled = false;
      }
    }

    // ---- the chat ---------------------------------------------------------------------------------------------
    function openChat(clone, session) {
      state.clone = clone;
      state.session = session;
      state.messages.clear();
      state.summaryShown = false;
      state.rated = false;
      state.lastTick = undefined;
      state.announcedMinute = -1;
      log.replaceChildren();
      log.removeAttribute('aria-busy');
      lowBalance.hidden = true;
      summary.hidden = true;
      controls.hidden = false;
      rateForm.hidden = false;
      rateForm.reset();
      rateButton.disabled = false;
      rateThanks.textContent = '';
      const voice = session.type !== 'chat';
      leaveCall();
      state.call = voice ? { sessionId: session.id, room: undefined, joining: false, muted: false, ended: false } : undefined;
      callPanel.hidden = !voice;
      composer.hidden = voice;
      endButton.textContent = voice ? 'End call' : 'End chat';
      setCallLine(voice ? 'Connecting to the call…' : '');
      showMuted(false);
      muteButton.disabled = true;
      rejoinButton.hidden = true;
      audioButton.hidden = true;
      chatAvatar.replaceChildren(avatar(clone, 'small'));
      chatName.textContent = clone.name;
      meterTime.textContent = formatDuration(session.activeSeconds);
      meterCost.textContent = session.cost;
      meterCredits.textContent = '—';
      meterRate.textContent = session.ratePerMinute;
      applySession(session);
      show(chat);
      if (!voice) messageInput.focus();
    }

    function applySession(session) {
      state.session = session;
      const status = session.status;
      const voice = session.type !== 'chat';
      statusBadge.textContent = voice ? CALL_BADGE[status] : status === 'active' ? 'Active' : status === 'paused' ? 'Paused' : 'Ended';
      statusBadge.dataset.status = status;
      pauseButton.hidden = status !== 'active';
      // a call resumes by hand only from a hold: waiting for someone resumes when they come, silence when someone speaks
      resumeButton.hidden = status !== 'paused' || (voice && !session.room?.held);
      endButton.disabled = status === 'ended';
      if (voice && status !== 'ended') showCallState(session);
      sendButton.disabled = status !== 'active';
      messageInput.disabled = status !== 'active';
      meterTime.textContent = formatDuration(session.activeSeconds);
      meterCost.textContent = session.cost;
      if (status === 'ended') showSummary(session, undefined);
    }

    // ---- a voice call ------------------------------------------------------------------------------------------
    /** What the meter follows in a voice call, in words: who is in the room, a hold, silence. */
    function callStateText(session) {
      const name = state.clone?.name ?? 'The expert';
      const room = session.room ?? {};
      const until = (iso) => (iso ? ` If nobody comes by ${new Date(iso).toLocaleTimeString()}, the call ends and the wait is free.` : '');
      if (session.status === 'active') return `Talking with ${name}. The meter is running.`;
      if (room.held) return 'On hold: the meter is stopped. Resume to carry on.';
      if (!room.user) {
        return room.joinBy
          ? `Joining the call… The meter starts once you and ${name} are both in it.`
          : 'You are not in the call: the meter is stopped. Rejoin to carry on.';
      }
      if (!room.agent) {
        return session.reason === 'agent_left'
          ? `${name}’s voice dropped out: the meter is stopped until it is back.${until(room.agentBy)}`
          : `Waiting for ${name} to join the call. The meter starts when they do.${until(room.agentBy)}`;
      }
      if (session.reason === 'voice_idle') return 'Paused: nobody has spoken for a while. Say something to carry on.';
      return 'Paused: the meter is stopped.';
    }

    /** The call's state as words (and a data-state for styles), the mute that goes with a hold, the rejoin offer. */
    function showCallState(session) {
      const room = session.room ?? {};
      callState.textContent = callStateText(session);
      callState.dataset.state =
        session.status === 'active' ? 'talking' : room.held ? 'held' : !room.user ? (room.joinBy ? 'joining' : 'away') : !room.agent ? 'waiting' : session.reason || 'paused';
      offerRejoin();
      // on hold the expert hears nothing
      void setMicrophone();
    }

    function setCallLine(text) {
      callLine.textContent = text;
    }

    /** The call is this widget's current one and its session is not over. */
    const callLive = (call) => call !== undefined && state.call === call && !call.ended;

    /**
     * Rejoin is offered while no join is under way and this page is not in the room — or it thinks it is, but the
     * gateway says the person left it (removed, or a check found them gone): a rejoin then replaces the connection.
     */
    function offerRejoin() {
      const call = state.call;
      const room = state.session?.room;
      const away = room !== undefined && !room.user && !room.joinBy;
      rejoinButton.hidden = !callLive(call) || call.joining || (call.room !== undefined && !away);
    }

    /** LiveKit's browser SDK, loaded once (a failed load is tried again next time). */
    let liveKitModule;
    function loadLiveKit() {
      liveKitModule ??= import(`${gateway}/web/livekit-client.js`).catch((error) => {
        liveKitModule = undefined;
        throw error;
      });
      return liveKitModule;
    }

    /**
     * Joins the session's LiveKit room — the person's microphone out, the expert's voice in — with `livekit` (the
     * start's answer) or a fresh token. One join at a time; a join finishing after the session ended leaves again.
     */
    async function joinCall(livekit) {
      const call = state.call;
      if (!callLive(call) || call.joining) return;
      call.joining = true;
      offerRejoin();
      setCallLine('Connecting to the call…');
      let room;
      let failure = 'Could not get a room token';
      try {
        const join = livekit ?? (await client().roomToken(call.sessionId));
        failure = 'Could not load the call client from the gateway';
        const LiveKit = await loadLiveKit();
        if (!callLive(call)) return;
        // a rejoin replaces this page's old connection (one identity is in a room once)
        const old = call.room;
        call.room = undefined;
        if (old) await old.disconnect();
        LiveKit.setLogLevel('error');
        room = new LiveKit.Room({ adaptiveStream: true, dynacast: true });
        call.room = room;
        const current = () => callLive(call) && call.room === room;
        room.on(LiveKit.RoomEvent.TrackSubscribed, (track) => {
          if (current() && track.kind === LiveKit.Track.Kind.Audio) audioSink.append(track.attach());
        });
        room.on(LiveKit.RoomEvent.TrackUnsubscribed, (track) => {
          for (const element of track.detach()) element.remove();
        });
        room.on(LiveKit.RoomEvent.AudioPlaybackStatusChanged, () => {
          if (current()) audioButton.hidden = room.canPlaybackAudio;
        });
        room.on(LiveKit.RoomEvent.Reconnecting, () => current() && setCallLine('Call connection lost; reconnecting…'));
        room.on(LiveKit.RoomEvent.Reconnected, () => {
          if (!current()) return;
          setCallLine('Connected to the call.');
          void setMicrophone();
        });
        room.on(LiveKit.RoomEvent.Disconnected, () => {
          if (!current()) return;
          call.room = undefined;
          muteButton.disabled = true;
          audioSink.replaceChildren();
          callFailed(call, 'You are no longer connected to the call.');
        });
        failure = 'Could not join the call';
        await room.connect(join.url, join.token);
        if (!current()) return void room.disconnect();
        setCallLine('Connected to the call.');
        muteButton.disabled = false;
        audioButton.hidden = room.canPlaybackAudio;
        await setMicrophone();
      } catch (error) {
        if (room && call.room === room) call.room = undefined;
        if (room) void room.disconnect();
        callFailed(call, `${failure} (${errorText(error)}).`);
      } finally {
        call.joining = false;
        offerRejoin();
      }
    }

    function callFailed(call, text) {
      if (!callLive(call)) return;
      setCallLine(`${text} The meter runs only while you are in the call.`);
    }

    /** The microphone is live unless muted, on hold or over. */
    async function setMicrophone() {
      const call = state.call;
      const room = call?.room;
      if (!room || room.state !== 'connected') return;
      const live = callLive(call) && !call.muted && state.session?.status !== 'ended' && !state.session?.room?.held;
      try {
        await room.localParticipant.setMicrophoneEnabled(live);
      } catch (error) {
        setCallLine(`Your microphone is not available (${(error && error.message) || 'refused'}).`);
      }
    }

    function showMuted(muted) {
      muteButton.setAttribute('aria-pressed', String(muted));
      muteButton.textContent = muted ? 'Unmute microphone' : 'Mute microphone';
    }

    function toggleMute() {
      const call = state.call;
      if (!callLive(call)) return;
      call.muted = !call.muted;
      showMuted(call.muted);
      void setMicrophone();
    }

    /** Leaves the room for good (the end, another session, the widget removed); a join under way leaves too. */
    function leaveCall() {
      const call = state.call;
      if (!call) return;
      call.ended = true;
      const room = call.room;
      call.room = undefined;
      audioSink.replaceChildren();
      muteButton.disabled = true;
      if (room) void room.disconnect();
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
        const action = { 'session:pause': 'pause', 'session:resume': 'resume', 'session:end': 'end' }[event];
        const changed = await client()[action](session.id);
        if (event === 'session:end') showSummary(changed, 'user');
        else applySession(changed);
        if (event === 'session:pause') meterAnnouncer.textContent = 'Paused: the meter is stopped.';
        if (event === 'session:resume') {
          // a call resumed from a hold with nobody to talk to stays paused until someone comes
          meterAnnouncer.textContent = changed.status === 'active' ? 'Resumed: the meter is running.' : callStateText(changed);
          if (changed.type === 'chat') messageInput.focus();
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
      try {
        // after a timeout the client sends the same clientMessageId again: stored and charged once
        const message = await client().send(session.id, content, { clientMessageId });
        // a reply (or a resync) may have rendered it already
        if (state.messages.has(message.id)) pending.remove();
        else {
          pending.dataset.messageId = message.id;
          state.messages.set(message.id, pending);
        }
        renderMessage(message);
      } catch (error) {
        pending.dataset.state = 'failed';
        pending.querySelector('.tg-note').textContent = `Not sent: ${errorText(error)}`;
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
      if (state.call) {
        leaveCall();
        callPanel.hidden = true;
      }
      if (reason !== undefined || first) summaryReason.textContent = END_TEXT[reason] ?? 'The session has ended.';
      if (reason !== undefined) summary.dataset.reason = reason;
      fillSummary(session);
      summary.hidden = false;
      if (!first) return;
      rememberSession(null);
      summaryTitle.focus();
      // the ended session's cost is final; the gateway's record confirms it (from Postgres once settled)
      Promise.resolve()
        .then(() => client().get(session.id))
        .then(
          (settled) => {
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
          await client().rate(session.id, rating, feedback || undefined);
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
      state.call = undefined;
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
        leaveCall();
        state.client?.close();
        state.client = undefined;
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
