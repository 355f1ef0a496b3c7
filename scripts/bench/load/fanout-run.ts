/**
 * `fanoutRun`: users with one socket on each of two gateways act on the first ("acting") socket — a message, a
 * pause, a resume, in turn — at a fixed total rate, one action in flight per user. For each action it records when
 * the resulting event reached the acting socket (delivered by the same gateway process) and the other socket
 * (delivered by the other gateway, through the Socket.IO Redis Streams adapter): `session:updated` for a pause or
 * resume, the reply's `message:completed` for a message.
 */
import { summarize } from '../latency-stats.ts';
import type { FanoutRunParams, FanoutRunResult } from '../load-protocol.ts';
import { ask } from './ask.ts';
import { tally, type ClientPool } from './client-pool.ts';
import { reportProgress } from './progress-channel.ts';

type Kind = 'message' | 'pause' | 'resume';
const KINDS: Kind[] = ['message', 'pause', 'resume'];

interface Pending {
  kind: Kind;
  t0: number;
  same?: number;
  cross?: number;
  acked: boolean;
  timer: NodeJS.Timeout;
}

interface User {
  sessionId: string;
  step: number;
  pending: Pending | undefined;
}

export async function fanoutRun(acting: ClientPool, observer: ClientPool, params: FanoutRunParams): Promise<FanoutRunResult> {
  const observerByUser = new Map(observer.clients.map((c) => [c.userId, c]));
  const users: Array<User & { index: number }> = [];
  const errors: Record<string, number> = {};
  const updatedSame: number[] = [];
  const updatedCross: number[] = [];
  const completedSame: number[] = [];
  const completedCross: number[] = [];
  const crossMinusSame: number[] = [];
  let actions = 0;
  let lost = 0;
  let skipped = 0;

  const finish = (user: User) => {
    const p = user.pending;
    if (!p || p.same === undefined || p.cross === undefined || !p.acked) return;
    clearTimeout(p.timer);
    (p.kind === 'message' ? completedSame : updatedSame).push(p.same - p.t0);
    (p.kind === 'message' ? completedCross : updatedCross).push(p.cross - p.t0);
    crossMinusSame.push(p.cross - p.same);
    user.pending = undefined;
  };
  const arrived = (user: User, side: 'same' | 'cross', matches: (kind: Kind) => boolean) => {
    const p = user.pending;
    if (!p || p[side] !== undefined || !matches(p.kind)) return;
    p[side] = performance.now();
    finish(user);
  };

  const detach: Array<() => void> = [];
  for (const session of acting.sessions) {
    const client = acting.clients[session.client]!;
    const other = observerByUser.get(client.userId);
    if (!other) continue;
    // the message → pause → resume cycle carries on from an earlier run (a warm-up), so no action is refused
    const user: User & { index: number } = { sessionId: session.sessionId, step: acting.actionSteps.get(session.sessionId) ?? 0, pending: undefined, index: session.client };
    users.push(user);
    const expectStatus = (kind: Kind) => (kind === 'pause' ? 'paused' : kind === 'resume' ? 'active' : undefined);
    const sameUpdated = (s: { id: string; status: string }) => {
      if (s.id === user.sessionId) arrived(user, 'same', (kind) => expectStatus(kind) === s.status);
    };
    const crossUpdated = (s: { id: string; status: string }) => {
      if (s.id === user.sessionId) arrived(user, 'cross', (kind) => expectStatus(kind) === s.status);
    };
    const sameCompleted = (c: { sessionId: string; message: { senderType: string } }) => {
      if (c.sessionId === user.sessionId && c.message.senderType === 'ai') arrived(user, 'same', (kind) => kind === 'message');
    };
    const crossCompleted = (c: { sessionId: string; message: { senderType: string } }) => {
      if (c.sessionId === user.sessionId && c.message.senderType === 'ai') arrived(user, 'cross', (kind) => kind === 'message');
    };
    client.socket.on('session:updated', sameUpdated);
    other.socket.on('session:updated', crossUpdated);
    client.socket.on('message:completed', sameCompleted);
    other.socket.on('message:completed', crossCompleted);
    detach.push(() => {
      client.socket.off('session:updated', sameUpdated);
      other.socket.off('session:updated', crossUpdated);
      client.socket.off('message:completed', sameCompleted);
      other.socket.off('message:completed', crossCompleted);
    });
  }
  if (users.length === 0) throw new Error('no user has a socket on both gateways');

  const act = (user: User & { index: number }) => {
    const kind = KINDS[user.step % KINDS.length]!;
    user.step += 1;
    actions += 1;
    const pending: Pending = {
      kind,
      t0: performance.now(),
      acked: false,
      timer: setTimeout(() => {
        if (user.pending !== pending) return;
        lost += 1;
        user.pending = undefined;
      }, params.timeoutMs),
    };
    user.pending = pending;
    const socket = acting.clients[user.index]!.socket;
    const request =
      kind === 'message'
        ? ask(socket, 'message:send', { sessionId: user.sessionId, clientMessageId: `fanout-${user.step}`, content: `fan-out message ${user.step}` }, params.timeoutMs)
        : ask(socket, kind === 'pause' ? 'session:pause' : 'session:resume', { sessionId: user.sessionId }, params.timeoutMs);
    request.then(
      (answer) => {
        if (user.pending !== pending) return;
        if (answer.ok) {
          pending.acked = true;
          finish(user);
        } else {
          tally(errors, answer.error.code);
          clearTimeout(pending.timer);
          user.pending = undefined;
        }
      },
      (error: unknown) => tally(errors, error),
    );
  };

  const start = performance.now();
  const total = Math.floor((params.durationMs / 1000) * params.rate);
  let seq = 0;
  let cursor = 0;
  let lastReport = start;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * params.rate) / 1000) + 1);
      while (seq < due) {
        seq += 1;
        let picked: (User & { index: number }) | undefined;
        for (let tries = 0; tries < users.length && !picked; tries++) {
          const candidate = users[cursor]!;
          cursor = (cursor + 1) % users.length;
          if (!candidate.pending) picked = candidate;
        }
        if (picked) act(picked);
        else skipped += 1;
      }
      if (now - lastReport >= 1000) {
        lastReport = now;
        reportProgress(`fan-out: ${((now - start) / 1000).toFixed(0)}/${(params.durationMs / 1000).toFixed(0)} s, ${actions} actions, ${lost} lost`);
      }
      if (seq >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  const deadline = performance.now() + params.timeoutMs + 100;
  while (users.some((u) => u.pending) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const off of detach) off();
  for (const user of users) acting.actionSteps.set(user.sessionId, user.step);

  return {
    actions,
    lost,
    skipped,
    updatedSame: summarize(updatedSame),
    updatedCross: summarize(updatedCross),
    completedSame: summarize(completedSame),
    completedCross: summarize(completedCross),
    crossMinusSame: summarize(crossMinusSame),
    errors,
  };
}
