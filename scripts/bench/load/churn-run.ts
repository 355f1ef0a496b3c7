/**
 * `churnRun`: users coming and going, open loop. User n arrives at `start + n / arrivalRate` whatever happened to
 * the ones before (latencies count from scheduled instants, so a late sender is measured, not hidden), and walks a
 * real visit: connect with its own token → `session:start` → `messagesPerUser` × `message:send`, one every `thinkMs`
 * (each answered by the clone) → `session:end` → disconnect. Arrivals beyond `maxActiveUsers` users still on their
 * visit are shed and counted, so an overloaded server is measured rather than buried.
 */
import { io, type Socket } from 'socket.io-client';
import { summarize } from '../latency-stats.ts';
import type { ChurnRunParams, ChurnRunResult } from '../load-protocol.ts';
import { reportProgress } from './progress-channel.ts';
import { signToken } from './sign-token.ts';

type Answer = { ok: true; session?: { id: string; endTime?: string | null } } | { ok: false; error: { code: string } };

const sleepUntil = (instant: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, instant - performance.now())));

export async function churnRun(params: ChurnRunParams): Promise<ChurnRunResult> {
  const latencies = { connect: [] as number[], start: [] as number[], ack: [] as number[], reply: [] as number[], end: [] as number[] };
  const errors: Record<string, number> = {};
  const fail = (phase: string, code: string) => {
    const key = `${phase}: ${code}`;
    errors[key] = (errors[key] ?? 0) + 1;
  };
  const ended: Array<{ sessionId: string; endedAt: number }> = [];
  let active = 0;
  let shed = 0;
  let completedVisits = 0;
  let acked = 0;
  let sent = 0;

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const arrivals = Math.floor((params.durationMs / 1000) * params.arrivalRate);
  const interval = 1000 / params.arrivalRate;

  const request = (socket: Socket, event: string, payload: unknown): Promise<Answer> =>
    socket
      .timeout(params.ackTimeoutMs)
      .emitWithAck(event, payload)
      .then(
        (answer: Answer) => answer,
        () => ({ ok: false, error: { code: 'timeout' } }) as Answer,
      );

  const visit = async (n: number, scheduled: number): Promise<void> => {
    const userId = params.userIds[n % params.userIds.length]!;
    const socket = io(params.url, {
      auth: { token: signToken(params.secret, userId, params.audience) },
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: params.ackTimeoutMs,
    });
    try {
      const connected = await new Promise<string | undefined>((resolve) => {
        socket.once('connect', () => resolve(undefined));
        socket.once('connect_error', (error) => resolve(error.message || 'connect_error'));
      });
      if (connected !== undefined) return fail('connect', connected);
      latencies.connect.push(performance.now() - scheduled);

      const replies = new Map<string, number>();
      socket.on('message:completed', (completed: { message: { senderType: string; id: string } }) => {
        if (completed.message.senderType !== 'ai') return;
        // replies come in the order of their messages: the oldest unanswered send is this one's
        const [clientMessageId, sentAt] = replies.entries().next().value ?? [];
        if (clientMessageId === undefined || sentAt === undefined) return;
        replies.delete(clientMessageId);
        latencies.reply.push(performance.now() - sentAt);
      });

      const startAt = performance.now();
      const started = await request(socket, 'session:start', { cloneId: params.cloneId, type: 'chat' });
      if (!started.ok || !started.session) return fail('start', started.ok ? 'no session' : started.error.code);
      latencies.start.push(performance.now() - startAt);
      const sessionId = started.session.id;

      const first = performance.now();
      for (let k = 0; k < params.messagesPerUser; k++) {
        await sleepUntil(first + k * params.thinkMs);
        const clientMessageId = `${n}-${k}`;
        const sentAt = performance.now();
        sent += 1;
        if (params.expectReplies) replies.set(clientMessageId, sentAt);
        const answer = await request(socket, 'message:send', { sessionId, clientMessageId, content: `question ${k} of visitor ${n}` });
        if (!answer.ok) {
          replies.delete(clientMessageId);
          return fail('message', answer.error.code);
        }
        acked += 1;
        const ackedAt = performance.now();
        latencies.ack.push(ackedAt - sentAt);
      }
      // the last reply before leaving, as a person reads it
      if (params.expectReplies) {
        const deadline = performance.now() + params.replyWaitMs;
        while (replies.size > 0 && performance.now() < deadline) await sleepUntil(performance.now() + 20);
      }
      const endAt = performance.now();
      const endedAnswer = await request(socket, 'session:end', { sessionId });
      if (!endedAnswer.ok) return fail('end', endedAnswer.error.code);
      latencies.end.push(performance.now() - endAt);
      ended.push({ sessionId, endedAt: Date.now() });
      completedVisits += 1;
    } finally {
      socket.disconnect();
    }
  };

  const visits: Promise<void>[] = [];
  let lastReport = start;
  for (let n = 0; n < arrivals; n++) {
    const scheduled = start + n * interval;
    await sleepUntil(scheduled);
    if (active >= params.maxActiveUsers) {
      shed += 1;
      continue;
    }
    active += 1;
    visits.push(
      visit(n, scheduled)
        .catch((error: unknown) => fail('visit', error instanceof Error ? error.message : String(error)))
        .finally(() => (active -= 1)),
    );
    const now = performance.now();
    if (now - lastReport >= 1000) {
      lastReport = now;
      reportProgress(`${params.label}: ${n + 1}/${arrivals} users arrived, ${active} visiting, ${acked} messages acked, ${shed} shed`);
    }
  }
  await Promise.all(visits);
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - start) / 1000;
  return {
    offeredArrivalRate: params.arrivalRate,
    offeredMessageRate: params.arrivalRate * params.messagesPerUser,
    // per second of arrivals: equal to the offered rate exactly when every admitted visit's every message was acked
    achievedMessageRate: acked / (params.durationMs / 1000),
    arrivals,
    completedVisits,
    failedVisits: arrivals - shed - completedVisits,
    shed,
    sent,
    acked,
    errors,
    connect: summarize(latencies.connect),
    start: summarize(latencies.start),
    ack: summarize(latencies.ack),
    reply: summarize(latencies.reply),
    end: summarize(latencies.end),
    ended,
    loadCpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}
