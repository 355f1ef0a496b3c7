/**
 * `ClientPool`: a named set of socket.io clients in the load process, client i authenticated as user i, with the
 * sessions they started and what the server told them (meter ticks while recording, session:ended always).
 * `connect` ramps them with a bounded number of handshakes in flight, spread over several source addresses.
 */
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '#shared/contract/socket-events.ts';
import type { ConnectParams, ConnectResult, EndedSession, StartedSession } from '../load-protocol.ts';
import { reportProgress } from './progress-channel.ts';
import { signToken } from './sign-token.ts';

export type BenchSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface PoolClient {
  index: number;
  userId: string;
  socket: BenchSocket;
}

/** Counts an error message (first line, ids stripped) in a tally. */
export function tally(errors: Record<string, number>, error: unknown): void {
  const text = (error instanceof Error ? error.message : typeof error === 'string' ? error : JSON.stringify(error))
    .split('\n', 1)[0]!
    .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>')
    .slice(0, 120);
  errors[text] = (errors[text] ?? 0) + 1;
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` running at once. */
export async function forEachLimited(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export class ClientPool {
  readonly clients: PoolClient[] = [];
  sessions: StartedSession[] = [];
  readonly ended: EndedSession[] = [];
  /** Tick arrivals (performance.now()) by session while `recordTicks` is set. */
  readonly ticks = new Map<string, number[]>();
  recordTicks = false;
  /** Sessions the server paused (session:updated with status paused) — the clients never ask for a pause here. */
  readonly paused = new Set<string>();
  /** Fan-out: how far each session is in its message → pause → resume cycle. */
  readonly actionSteps = new Map<string, number>();
  disconnects = 0;
  private closing = false;

  constructor(readonly name: string) {}

  async connect(params: ConnectParams): Promise<ConnectResult> {
    const errors: Record<string, number> = {};
    let connected = 0;
    let failed = 0;
    const started = performance.now();
    let lastReport = started;
    const total = params.userIds.length;
    await forEachLimited(total, params.concurrency, async (index) => {
      const userId = params.userIds[index]!;
      const token = signToken(params.secret, userId, params.audience);
      const socket: BenchSocket = io(params.url, {
        auth: { token },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        timeout: params.timeoutMs,
        // engine.io-client hands localAddress to ws (not in its types)
        ...({ localAddress: params.localAddresses[index % params.localAddresses.length] } as object),
      });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', () => resolve());
          socket.once('connect_error', (error) => reject(error));
        });
        connected += 1;
        this.attach({ index: this.clients.length, userId, socket });
      } catch (error) {
        failed += 1;
        tally(errors, error);
        socket.disconnect();
      }
      const now = performance.now();
      if (now - lastReport >= 500) {
        lastReport = now;
        const done = connected + failed;
        reportProgress(`${this.name}: ${connected}/${total} connected (${failed} failed), ${Math.round((done * 1000) / (now - started))}/s`);
      }
    });
    return { connected, failed, durationMs: performance.now() - started, errors };
  }

  private attach(client: PoolClient): void {
    this.clients.push(client);
    const { socket } = client;
    socket.on('disconnect', () => {
      if (!this.closing) this.disconnects += 1;
    });
    socket.on('meter:tick', (tick) => {
      if (!this.recordTicks) return;
      const at = performance.now();
      const list = this.ticks.get(tick.sessionId);
      if (list) list.push(at);
      else this.ticks.set(tick.sessionId, [at]);
    });
    socket.on('session:updated', (session) => {
      if (session.status === 'paused') this.paused.add(session.id);
    });
    socket.on('session:ended', (ended) => {
      this.ended.push({
        sessionId: ended.sessionId,
        reason: ended.reason,
        endTime: ended.session.endTime ? Date.parse(ended.session.endTime) : Number.NaN,
        receivedAt: Date.now(),
      });
    });
  }

  /** Disconnects every client; resolves once they are closed. */
  async close(): Promise<{ closed: number; durationMs: number }> {
    this.closing = true;
    const started = performance.now();
    for (const client of this.clients) client.socket.disconnect();
    const closed = this.clients.length;
    this.clients.length = 0;
    return { closed, durationMs: performance.now() - started };
  }
}
