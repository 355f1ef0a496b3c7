/**
 * A typed client of the Tollgate gateway (docs/protocol.md) on socket.io-client, for Node and bundled browser code:
 *
 *   const client = new TollgateClient();
 *   client.on('message:delta', ({ delta }) => process.stdout.write(delta));
 *   await client.connect('https://gateway.example', () => fetchToken());
 *   const session = await client.startSession(cloneId);
 *   await client.send(session.id, 'Hello');
 *
 * Requests resolve with the ack's data and reject with `TollgateRequestError` (the gateway's code, or `timeout`).
 * `send` makes the message idempotent with a `clientMessageId` and repeats the same id after a timeout. After a
 * reconnect whose missed events were not replayed (connection state recovery failed), the client asks `session:get`
 * and `session:history` (after the last message it has) for each open session and reports them as `resync`.
 * A gateway at capacity (`overloaded`) or without its Redis or Postgres (`unavailable`) answers with a retry hint:
 * the client waits it out and tries again — a refused connection, and any request refused `overloaded` (refused
 * before any work); `unavailable` only for requests safe to repeat (a message, by its clientMessageId; reads) —
 * up to `busyRetries` times.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  Ack,
  ClientEventName,
  ClientPayload,
  ClientResults,
  ClientToServerEvents,
  LiveKitJoin,
  ServerToClientEvents,
  SessionType,
  WireMessage,
  WireSession,
} from '../contract/socket-events.ts';
import { TollgateRequestError } from './tollgate-request-error.ts';

/** Requests that change nothing when repeated: a message (its clientMessageId) and the reads. */
const REPEATABLE: ReadonlySet<ClientEventName> = new Set(['message:send', 'session:get', 'session:history', 'session:token'] as const);
/** The wait when a refusal carries no hint. */
const DEFAULT_RETRY_MS = 1000;

/** A refused handshake's retry hint (`overloaded`, `unavailable`: `connect_error` data), or undefined when final. */
function retryHint(error: Error): number | undefined {
  const data = (error as Error & { data?: { code?: string; retryAfterMs?: number } }).data;
  if (data?.code !== 'overloaded' && data?.code !== 'unavailable') return undefined;
  return data.retryAfterMs ?? DEFAULT_RETRY_MS;
}

/** An access token, or a function that returns a fresh one (asked at every connect and reconnect). */
export type TokenSource = string | (() => string | Promise<string>);

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface TollgateClientOptions {
  /** How long a request waits for its ack; default 10 000 ms. */
  requestTimeoutMs?: number;
  /** How many times `send` repeats a message (same `clientMessageId`) after a timeout; default 3. */
  sendRetries?: number;
  /** How many times a request refused `overloaded` or `unavailable` is tried again after its hint; default 3. */
  busyRetries?: number;
  /** How long `connect()` waits for the first connection; default 20 000 ms. */
  connectTimeoutMs?: number;
  /** More socket.io-client options; `transports` is always `['websocket']` and `auth` carries the token. Default `forceNew: true`. */
  socket?: Partial<ManagerOptions & SocketOptions>;
}

/** An open session's state after a reconnect, and the messages the client had not seen. */
export interface SessionResync {
  session: WireSession;
  messages: WireMessage[];
}

/** Events of the client itself, next to the gateway's. */
export interface ClientOnlyEvents {
  connection: (state: ConnectionState) => void;
  resync: (resync: SessionResync) => void;
  /** A background task (the resync after a reconnect) failed. */
  error: (error: unknown) => void;
}

export type TollgateEvents = ServerToClientEvents & ClientOnlyEvents;

export type TollgateSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const SERVER_EVENTS = [
  'session:updated',
  'meter:tick',
  'credits:low',
  'message:delta',
  'message:completed',
  'message:failed',
  'session:ended',
  'auth:expired',
] as const satisfies ReadonlyArray<keyof ServerToClientEvents>;

// Compile-time check that SERVER_EVENTS names every server event of the contract.
type UnlistedServerEvent = Exclude<keyof ServerToClientEvents, (typeof SERVER_EVENTS)[number]>;
const everyServerEventListed: [UnlistedServerEvent] extends [never] ? true : UnlistedServerEvent = true;
void everyServerEventListed;

type Listener = (...args: never[]) => void;

/** What a socket with the timeout flag offers, typed by the contract (socket.io's own types lose the answer). */
interface AckEmitter {
  emitWithAck<E extends ClientEventName>(event: E, payload: ClientPayload<E>): Promise<Ack<ClientResults[E]>>;
}

interface OpenSession {
  /** The newest message of the session this client has seen. */
  last?: { id: string; createdAt: string };
}

export class TollgateClient {
  private socket: TollgateSocket | undefined;
  private connectionState: ConnectionState = 'idle';
  private everConnected = false;
  private readonly listeners = new Map<keyof TollgateEvents, Set<Listener>>();
  /** Sessions not ended that this client has seen, with the last message it has of each. */
  private readonly open = new Map<string, OpenSession>();

  constructor(private readonly options: TollgateClientOptions = {}) {}

  get state(): ConnectionState {
    return this.connectionState;
  }

  /** The underlying socket (for what this class does not wrap); undefined before `connect()`. */
  get rawSocket(): TollgateSocket | undefined {
    return this.socket;
  }

  /**
   * Connects to the gateway at `url`; resolves once connected. Rejects with code `unauthorized` when the gateway
   * refuses the token, `too_many_connections` when the user holds MAX_CONNECTIONS_PER_USER already, `timeout` when
   * no connection is made within `connectTimeoutMs`.
   */
  async connect(url: string, token: TokenSource): Promise<void> {
    if (this.socket) throw new Error('TollgateClient is already connected; close() it first');
    const socket: TollgateSocket = io(url, {
      forceNew: true,
      ...this.options.socket,
      transports: ['websocket'],
      auth: (callback) => {
        void Promise.resolve()
          .then(() => (typeof token === 'function' ? token() : token))
          .then(
            (value) => callback({ token: value }),
            (error: unknown) => {
              this.emitLocal('error', error);
              callback({});
            },
          );
      },
    });
    this.socket = socket;
    this.everConnected = false;
    this.bind(socket);
    this.setState('connecting');

    const timeoutMs = this.options.connectTimeoutMs ?? 20_000;
    await new Promise<void>((resolve, reject) => {
      const finish = (error?: TollgateRequestError) => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
        if (!error) return resolve();
        this.close();
        reject(error);
      };
      const onConnect = () => finish();
      const onError = (error: Error) => {
        // socket.io-client keeps retrying transport errors, and this client a gateway's refusal with a retry hint
        // (bind); any other refusal by the server's middleware is final
        if (socket.active || retryHint(error) !== undefined) return;
        const code = error.message === 'unauthorized' || error.message === 'too_many_connections' ? error.message : 'internal';
        finish(new TollgateRequestError(code, `the gateway refused the connection: ${error.message}`, 'connect'));
      };
      const timer = setTimeout(
        () => finish(new TollgateRequestError('timeout', `no connection to ${url} within ${timeoutMs} ms`, 'connect')),
        timeoutMs,
      );
      socket.on('connect', onConnect);
      socket.on('connect_error', onError);
    });
  }

  /** Disconnects for good (no reconnect); listeners stay registered for a later `connect()`. */
  close(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    socket.removeAllListeners();
    socket.disconnect();
    this.open.clear();
    this.setState('disconnected');
  }

  /** Subscribes to a gateway event or one of the client's own; returns the unsubscribe function. */
  on<E extends keyof TollgateEvents>(event: E, listener: TollgateEvents[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof TollgateEvents>(event: E, listener: TollgateEvents[E]): void {
    this.listeners.get(event)?.delete(listener as Listener);
  }

  async startSession(cloneId: string, type: SessionType = 'chat'): Promise<WireSession> {
    return this.noteSession((await this.request('session:start', { cloneId, type })).session);
  }

  /**
   * Starts a voice or video session: the session (paused until the user and the clone's agent are both in its room)
   * and where to join the room — LiveKit's URL, the room and a short-lived token for any LiveKit client SDK.
   */
  async startCall(cloneId: string, type: 'voice' | 'video'): Promise<{ session: WireSession; livekit: LiveKitJoin }> {
    const answer = await this.request('session:start', { cloneId, type });
    if (!answer.livekit) throw new TollgateRequestError('invalid_state', 'the gateway gave no room to join', 'session:start');
    return { session: this.noteSession(answer.session), livekit: answer.livekit };
  }

  /** A fresh room token for a voice/video session that is not over (a rejoin after the first one expired). */
  async roomToken(sessionId: string): Promise<LiveKitJoin> {
    return (await this.request('session:token', { sessionId })).livekit;
  }

  async pause(sessionId: string): Promise<WireSession> {
    return this.noteSession((await this.request('session:pause', { sessionId })).session);
  }

  async resume(sessionId: string): Promise<WireSession> {
    return this.noteSession((await this.request('session:resume', { sessionId })).session);
  }

  async end(sessionId: string): Promise<WireSession> {
    return this.noteSession((await this.request('session:end', { sessionId })).session);
  }

  /** The session, live, or from Postgres once settled (then its cost is the settled total). */
  async get(sessionId: string): Promise<WireSession> {
    return this.noteSession((await this.request('session:get', { sessionId })).session);
  }

  /**
   * Sends a user message; resolves with it as stored. The clone's reply follows as `message:delta` events and
   * `message:completed`. A timed-out attempt is repeated with the same `clientMessageId`, so the message is stored
   * and charged once however many attempts reach the gateway.
   */
  async send(sessionId: string, content: string, options: { clientMessageId?: string } = {}): Promise<WireMessage> {
    const clientMessageId = options.clientMessageId ?? crypto.randomUUID();
    const retries = this.options.sendRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        const { message } = await this.request('message:send', { sessionId, clientMessageId, content });
        this.noteMessage(message);
        return message;
      } catch (error) {
        if (!(error instanceof TollgateRequestError) || error.code !== 'timeout' || attempt >= retries) throw error;
      }
    }
  }

  /** The session's messages after `afterMessageId` (all of them without it). */
  async history(sessionId: string, afterMessageId?: string): Promise<WireMessage[]> {
    const payload = afterMessageId === undefined ? { sessionId } : { sessionId, afterMessageId };
    const { messages } = await this.request('session:history', payload);
    for (const message of messages) this.noteMessage(message);
    return messages;
  }

  /** Rates an ended session, 1..5 stars, once. */
  async rate(sessionId: string, rating: number, feedback?: string): Promise<void> {
    await this.request('session:rate', feedback === undefined ? { sessionId, rating } : { sessionId, rating, feedback });
  }

  /**
   * Brings every open session up to date (`session:get`, then `session:history` after the last message seen) and
   * reports each as `resync`. Runs by itself after a reconnect that did not recover the missed events.
   */
  async resync(): Promise<SessionResync[]> {
    const results: SessionResync[] = [];
    for (const [sessionId, entry] of [...this.open]) {
      const session = await this.get(sessionId);
      const messages = await this.history(sessionId, entry.last?.id);
      const resync = { session, messages };
      results.push(resync);
      this.emitLocal('resync', resync);
    }
    return results;
  }

  private async request<E extends ClientEventName>(event: E, payload: ClientPayload<E>): Promise<ClientResults[E]> {
    const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
    const retries = this.options.busyRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      const socket = this.socket;
      if (!socket) throw new Error('TollgateClient is not connected; call connect() first');
      let answer: Ack<ClientResults[E]>;
      try {
        answer = await (socket.timeout(timeoutMs) as unknown as AckEmitter).emitWithAck(event, payload);
      } catch {
        throw new TollgateRequestError('timeout', `no answer to ${event} within ${timeoutMs} ms`, event);
      }
      if (answer.ok) return answer as ClientResults[E];
      const { code, message, retryAfterMs } = answer.error;
      const retryable = code === 'overloaded' || (code === 'unavailable' && REPEATABLE.has(event));
      if (!retryable || attempt >= retries) throw new TollgateRequestError(code, message, event, retryAfterMs);
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs ?? DEFAULT_RETRY_MS));
    }
  }

  private bind(socket: TollgateSocket): void {
    for (const event of SERVER_EVENTS) {
      socket.on(event, ((payload: never) => {
        this.track(event, payload);
        this.dispatch(event, payload);
      }) as never);
    }
    socket.on('connect', () => {
      const reconnected = this.everConnected;
      this.everConnected = true;
      this.setState('connected');
      if (reconnected && !socket.recovered) {
        this.resync().catch((error: unknown) => this.emitLocal('error', error));
      }
    });
    // socket.io-client reconnects by itself unless the server refused it or reconnection is off
    const retrying = () => socket.active && socket.io.reconnection();
    // the gateway cuts a socket whose token expired: connect again, asking the token source for a fresh one
    let renewToken = false;
    socket.on('auth:expired', () => {
      renewToken = true;
    });
    socket.on('disconnect', (reason) => {
      if (renewToken && reason === 'io server disconnect' && this.socket === socket) {
        renewToken = false;
        this.setState('reconnecting');
        socket.connect();
        return;
      }
      this.setState(retrying() ? 'reconnecting' : 'disconnected');
    });
    socket.on('connect_error', (error) => {
      // a gateway at capacity or without its dependencies refused the handshake: connect again after its hint
      // (socket.io-client gives up on a refusal by the server's middleware)
      const hint = retryHint(error);
      if (hint !== undefined && this.socket === socket && !socket.active) {
        if (this.everConnected) this.setState('reconnecting');
        setTimeout(() => {
          if (this.socket === socket && !socket.connected) socket.connect();
        }, hint);
        return;
      }
      if (this.everConnected) this.setState(retrying() ? 'reconnecting' : 'disconnected');
    });
  }

  private track(event: (typeof SERVER_EVENTS)[number], payload: unknown): void {
    if (event === 'session:updated') this.noteSession(payload as WireSession);
    else if (event === 'session:ended') this.noteSession((payload as { session: WireSession }).session);
    else if (event === 'message:completed') this.noteMessage((payload as { message: WireMessage }).message);
  }

  private noteSession(session: WireSession): WireSession {
    if (session.status === 'ended') this.open.delete(session.id);
    else if (!this.open.has(session.id)) this.open.set(session.id, {});
    return session;
  }

  private noteMessage(message: WireMessage): void {
    const entry = this.open.get(message.sessionId);
    // ISO times of one format order as strings
    if (entry && (!entry.last || message.createdAt >= entry.last.createdAt)) {
      entry.last = { id: message.id, createdAt: message.createdAt };
    }
  }

  private setState(state: ConnectionState): void {
    if (state === this.connectionState) return;
    this.connectionState = state;
    this.emitLocal('connection', state);
  }

  private emitLocal<E extends keyof ClientOnlyEvents>(event: E, ...args: Parameters<ClientOnlyEvents[E]>): void {
    this.dispatch(event, ...args);
  }

  private dispatch(event: keyof TollgateEvents, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      (listener as (...values: unknown[]) => void)(...args);
    }
  }
}
