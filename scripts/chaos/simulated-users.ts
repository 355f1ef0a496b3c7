/**
 * The chaos run's load: simulated users, each with its own socket to one of the gateways, acting at random
 * (seeded): start chat sessions, send messages — each sent one to three times with the same `clientMessageId`,
 * sometimes at once, and sent again after a timeout or a dropped connection — pause, resume, end, drop the
 * connection and come back (to either gateway), and run out of credits. It records what the system acknowledged,
 * so the invariants can check that every acknowledged message is stored exactly once, and how every request ended:
 * answered (late or not), cut off by a dropped connection, or never answered on a connection that stayed up.
 * Like the widget, a user told `overloaded` or `unavailable` waits the answer's `retryAfterMs` before trying again.
 */
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents, WireSession } from '#shared/contract/socket-events.ts';
import type { SeededRandom } from '../lib/seeded-random.ts';
import { signUserToken } from '../lib/sign-user-token.ts';

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface SimulatedUser {
  id: string;
}

/** What the users saw, for the invariants and the report. */
export interface LoadRecord {
  /** Every user message acknowledged ok: message id → where. */
  acked: Map<string, { sessionId: string; clientMessageId: string }>;
  /** Every AI reply a user saw completed (`message:completed`): it was stored in the live state. */
  completedReplies: Set<string>;
  /** Sessions whose start was acknowledged. */
  sessions: Set<string>;
  /** A repeat of an acknowledged clientMessageId answered with the same message: a duplicate the system absorbed. */
  duplicatesAbsorbed: number;
  /** A repeat answered with a different message id: the same message stored twice (must stay 0). */
  duplicatesCreated: number;
  sends: number;
  /** Requests that got no answer within SILENCE_MS on a connection that stayed up: silence, the failure. */
  timeouts: number;
  /** Requests whose connection dropped before their answer (the gateway died): the client knew at once. */
  cutOff: number;
  /** Answers that came after LATE_MS (but within SILENCE_MS). */
  late: number;
  /** Milliseconds from request to answer, by event (answered requests only). */
  answerMs: Map<string, number[]>;
  /** Error answers by code; `invalid_state` also by event, the session's status and why (`invalid_state message:send paused/idle`). */
  errors: Map<string, number>;
  /** Handshakes refused, by code (`overloaded`, `unavailable`, ...). */
  refusedConnects: Map<string, number>;
  /** `session:updated` paused `disconnected` while this client's socket had been connected for over 5 s. */
  pausedWhileConnected: number;
  reconnects: number;
}

export interface LoadOptions {
  users: SimulatedUser[];
  cloneIds: string[];
  /** Gateway URLs; a user (re)connects to one at random. */
  gateways: () => string[];
  jwtSecret: string;
  audience: string;
  random: SeededRandom;
  /** When the users stop acting and end their sessions. */
  until: number;
}

/** An answer later than this is late; none by SILENCE_MS is silence. */
const LATE_MS = 4000;
const SILENCE_MS = 15_000;
/** Longer than the chaos run's PRESENCE_TIMEOUT_MS plus a due poll: a pause this long after connecting is no arrival's. */
const PAUSE_ON_ARRIVAL_MS = 5000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function emptyRecord(): LoadRecord {
  return {
    acked: new Map(),
    completedReplies: new Set(),
    sessions: new Set(),
    duplicatesAbsorbed: 0,
    duplicatesCreated: 0,
    sends: 0,
    timeouts: 0,
    cutOff: 0,
    late: 0,
    answerMs: new Map(),
    errors: new Map(),
    refusedConnects: new Map(),
    pausedWhileConnected: 0,
    reconnects: 0,
  };
}

type Answer = { ok: true; [k: string]: unknown } | { ok: false; error: { code: string; retryAfterMs?: number; status?: string; reason?: string } };
/** Adds one to `key`'s count. */
export const bump = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);

/**
 * The `invalid_state` answers by cause, from the counts' `invalid_state <event> <status>/<reason>[ (label)]` keys:
 * - `retry after the session changed`: a send whose first outcome was unknown, sent again after its session was
 *   paused or ended: nothing was stored, as the answer says (a stored one is answered with itself);
 * - `finishing`: the user ending, at the run's end, a session that had already ended;
 * - `ended by a rule meanwhile`: the session ended by a rule (`credits_exhausted`, `idle_timeout`) while the user's
 *   request was on its way, before the user heard of it;
 * - `the user's own pause or end`: the user's other request (in flight at once) paused or ended it;
 * - `not the user's doing`: anything else — a state the user could not have known of (must stay 0).
 */
export function invalidStateCauses(errors: Map<string, number>): Map<string, number> {
  const causes = new Map<string, number>();
  for (const [key, n] of errors) {
    const parsed = /^invalid_state (\S+) (\w+)\/(\w*)(?: \((\w+)\))?$/.exec(key);
    if (!parsed) continue;
    const [, , status, reason, label] = parsed;
    const cause =
      label === 'retry' ? 'retry after the session changed'
      : label === 'finishing' ? 'finishing'
      : status === 'ended' && (reason === 'credits_exhausted' || reason === 'idle_timeout') ? 'ended by a rule meanwhile'
      : reason === 'user' ? "the user's own pause or end"
      : "not the user's doing";
    causes.set(cause, (causes.get(cause) ?? 0) + n);
  }
  return causes;
}

/** Runs every user until `until`, then has each end what it has open; resolves when all are done. */
export async function runLoad(options: LoadOptions, record: LoadRecord): Promise<void> {
  const token = (userId: string) => signUserToken({ secret: options.jwtSecret, audience: options.audience, userId, expiresIn: '2h' });
  await Promise.all(options.users.map((user) => runUser(user, options, record, token)));
}

async function runUser(user: SimulatedUser, options: LoadOptions, record: LoadRecord, token: (id: string) => Promise<string>): Promise<void> {
  const { random } = options;
  const open = new Map<string, WireSession['status']>();
  /** clientMessageId → the message id its first acknowledgement named. */
  const firstAck = new Map<string, string>();
  /** Sends whose outcome is unknown (no answer): sent again later with the same clientMessageId. */
  const unsure: Array<{ sessionId: string; clientMessageId: string }> = [];
  let socket: ClientSocket | undefined;
  let counter = 0;
  /** When the user may try again after an `overloaded` or `unavailable` answer or a failed connect (0: now). */
  let backOffUntil = 0;
  let failedConnects = 0;
  const backOff = (retryAfterMs: number | undefined) => {
    backOffUntil = Math.max(backOffUntil, Date.now() + (retryAfterMs ?? 1000));
  };

  const track = (session: WireSession) => {
    if (session.status === 'ended') open.delete(session.id);
    else open.set(session.id, session.status);
  };
  const connect = async (): Promise<ClientSocket | undefined> => {
    if (socket?.connected) return socket;
    socket?.disconnect();
    const url = random.pick(options.gateways());
    const s: ClientSocket = io(url, { auth: { token: await token(user.id) }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 3000 });
    let connectedAt = Infinity;
    s.on('connect', () => (connectedAt = Date.now()));
    s.on('session:updated', (session) => {
      // a pause on arrival covers the time the user was away (their old gateway died); one later means this socket
      // was up all along while no gateway's sighting of the user was fresh
      if (session.status === 'paused' && session.reason === 'disconnected' && s.connected && Date.now() - connectedAt > PAUSE_ON_ARRIVAL_MS) {
        record.pausedWhileConnected += 1;
      }
      track(session);
    });
    s.on('session:ended', ({ session }) => track(session));
    s.on('message:completed', ({ message }) => {
      if (message.senderType === 'ai') record.completedReplies.add(message.id);
    });
    // a gateway killed between the websocket opening and the namespace's answer leaves neither event: give up then
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 6000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      s.once('connect_error', (error: Error & { data?: { retryAfterMs?: number } }) => {
        clearTimeout(timer);
        bump(record.refusedConnects, error.message);
        if (error.data?.retryAfterMs !== undefined) backOff(error.data.retryAfterMs);
        resolve(false);
      });
    });
    if (!connected) {
      s.disconnect();
      // as socket.io-client reconnects: a failed connect waits longer each time (0.5, 1, 2, 4 s, ±50 %), unless the
      // gateway's refusal said how long
      failedConnects += 1;
      if (backOffUntil <= Date.now()) backOff(Math.min(4000, 250 * 2 ** failedConnects) * (0.5 + random.next()));
      return undefined;
    }
    failedConnects = 0;
    record.reconnects += 1;
    socket = s;
    // as a real client does after a reconnect: what became of its sessions while it was away
    for (const sessionId of [...open.keys()]) {
      const got = await request(s, 'session:get', { sessionId });
      if (got?.ok) track(got.session as WireSession);
    }
    return s;
  };
  /** One request on `s`: its answer, or undefined when it was cut off or never answered (both recorded). */
  /** `label` marks the request in the invalid_state counts (`retry`: sent again after an unknown outcome). */
  const request = async (s: ClientSocket, event: keyof ClientToServerEvents, payload: unknown, label = ''): Promise<Answer | undefined> => {
    const sentAt = Date.now();
    try {
      const answer = (await (s.timeout(SILENCE_MS) as unknown as { emitWithAck(e: string, p: unknown): Promise<Answer> }).emitWithAck(event, payload));
      const took = Date.now() - sentAt;
      if (took > LATE_MS) record.late += 1;
      const times = record.answerMs.get(event) ?? [];
      times.push(took);
      record.answerMs.set(event, times);
      if (!answer.ok) {
        const { code, status, reason, retryAfterMs } = answer.error;
        bump(record.errors, code);
        if (code === 'invalid_state') bump(record.errors, `invalid_state ${event} ${status ?? '?'}/${reason ?? ''}${label && ` (${label})`}`);
        if (code === 'overloaded' || code === 'unavailable') backOff(retryAfterMs);
      }
      return answer;
    } catch (error) {
      // socket.io rejects a pending acknowledgement at once when its connection drops; else the wait ran out
      if ((error as Error).message === 'socket has been disconnected') record.cutOff += 1;
      else record.timeouts += 1;
      return undefined;
    }
  };
  /**
   * Connects if needed, then sends `event`, unless `stillWanted` (asked after the connect) says otherwise: a user who
   * was away chose the session before learning what became of it (its `session:get` on the way back), and acts on
   * what they now see, as a real user does. Then the answer is `skipped`.
   */
  const ask = async (event: keyof ClientToServerEvents, payload: unknown, stillWanted?: () => boolean, label?: string): Promise<Answer | 'skipped' | undefined> => {
    if (backOffUntil > Date.now()) await sleep(backOffUntil - Date.now());
    const s = await connect();
    if (!s) return undefined;
    if (stillWanted && !stillWanted()) return 'skipped';
    return request(s, event, payload, label);
  };
  /** A session-specific action, sent only while the session is still in one of `statuses` as the user knows it. */
  const inStatus = (sessionId: string, ...statuses: WireSession['status'][]) => () => statuses.includes(open.get(sessionId) ?? 'ended');
  /** A retry of a send whose outcome is unknown goes whatever the user now knows: only the system knows if it was stored. */
  const send = async (sessionId: string, clientMessageId: string, retry: boolean) => {
    const answer = await ask('message:send', { sessionId, clientMessageId, content: `question ${clientMessageId} of ${user.id.slice(0, 8)}` },
      retry ? undefined : inStatus(sessionId, 'active'), retry ? 'retry' : '');
    if (answer === 'skipped') return;
    record.sends += 1;
    if (!answer) {
      unsure.push({ sessionId, clientMessageId });
      return;
    }
    if (!answer.ok) return;
    const messageId = (answer.message as { id: string }).id;
    const first = firstAck.get(clientMessageId);
    if (first === undefined) {
      firstAck.set(clientMessageId, messageId);
      record.acked.set(messageId, { sessionId, clientMessageId });
    } else if (first === messageId) {
      record.duplicatesAbsorbed += 1;
    } else {
      record.duplicatesCreated += 1;
      record.acked.set(messageId, { sessionId, clientMessageId });
    }
  };
  const anyOpen = (status?: WireSession['status']) => {
    const ids = [...open].filter(([, s]) => status === undefined || s === status).map(([id]) => id);
    return ids.length > 0 ? random.pick(ids) : undefined;
  };

  while (Date.now() < options.until) {
    await sleep(random.between(50, 600));
    if (backOffUntil > Date.now()) continue;
    const roll = random.next();
    if (unsure.length > 0 && roll < 0.3) {
      const retry = unsure.shift()!;
      await send(retry.sessionId, retry.clientMessageId, true);
    } else if (roll < 0.15 || open.size === 0) {
      if (open.size >= 2) continue;
      const answer = await ask('session:start', { cloneId: random.pick(options.cloneIds), type: 'chat' });
      if (answer !== 'skipped' && answer?.ok) {
        const session = answer.session as WireSession;
        record.sessions.add(session.id);
        track(session);
      }
    } else if (roll < 0.6) {
      const sessionId = anyOpen('active');
      if (!sessionId) continue;
      const clientMessageId = `m${++counter}`;
      const copies = random.between(1, 3);
      if (random.chance(0.3)) {
        await Promise.all(Array.from({ length: copies }, () => send(sessionId, clientMessageId, false))); // at once
      } else {
        for (let i = 0; i < copies; i++) await send(sessionId, clientMessageId, false);
      }
    } else if (roll < 0.68) {
      const sessionId = anyOpen('active');
      if (sessionId) {
        const answer = await ask('session:pause', { sessionId }, inStatus(sessionId, 'active'));
        if (answer !== 'skipped' && answer?.ok) track(answer.session as WireSession);
      }
    } else if (roll < 0.78) {
      const sessionId = anyOpen('paused');
      if (sessionId) {
        const answer = await ask('session:resume', { sessionId }, inStatus(sessionId, 'paused'));
        if (answer !== 'skipped' && answer?.ok) track(answer.session as WireSession);
      }
    } else if (roll < 0.84) {
      const sessionId = anyOpen();
      if (sessionId) {
        const answer = await ask('session:end', { sessionId }, inStatus(sessionId, 'active', 'paused'));
        if (answer !== 'skipped' && answer?.ok) track(answer.session as WireSession);
      }
    } else if (roll < 0.9) {
      socket?.disconnect(); // the user leaves; the next action comes back through either gateway
      await sleep(random.between(100, 1500));
    }
  }

  // the user finishes: whatever it is unsure of is sent again, then every session it knows of is ended
  for (const retry of unsure.splice(0)) await send(retry.sessionId, retry.clientMessageId, true);
  for (let attempt = 0; attempt < 20 && open.size > 0; attempt++) {
    for (const sessionId of [...open.keys()]) {
      const answer = await ask('session:end', { sessionId }, undefined, 'finishing');
      if (answer === 'skipped') continue;
      if (answer?.ok) track(answer.session as WireSession);
      else if (answer && !answer.ok && ['invalid_state', 'not_found', 'forbidden'].includes(answer.error.code)) open.delete(sessionId);
    }
    if (open.size > 0) await sleep(500);
  }
  socket?.disconnect();
}
