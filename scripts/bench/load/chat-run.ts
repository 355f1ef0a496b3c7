/**
 * `chatRun`: an open-loop message load — `message:send` at a fixed total rate, round-robin over the pool's
 * sessions, each send scheduled at `start + n / rate` whatever happened to earlier ones (no coordinated omission:
 * latency is measured from the scheduled instant). Sends beyond `maxOutstanding` unanswered ones are shed and
 * counted, so an overloaded server is measured rather than buried. Replies (`message:completed` of an AI
 * message) are matched to the session's oldest unanswered send.
 */
import { summarize } from '../latency-stats.ts';
import type { ChatRunParams, ChatRunResult } from '../load-protocol.ts';
import { tally, type ClientPool } from './client-pool.ts';
import { reportProgress } from './progress-channel.ts';

/** How often the sender wakes up to make the sends that are due. */
const SEND_TICK_MS = 2;

export async function chatRun(pool: ClientPool, params: ChatRunParams): Promise<ChatRunResult> {
  const sessions = pool.sessions;
  if (sessions.length === 0) throw new Error(`pool ${pool.name} has no sessions`);
  const ackLatencies: number[] = [];
  const replyLatencies: number[] = [];
  const errors: Record<string, number> = {};
  /** Scheduled instants of sends still waiting for their reply, by session. */
  const awaitingReply = new Map<string, number[]>();
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let shed = 0;
  let timedOut = 0;
  let outstanding = 0;
  let lastAckAt = 0;

  const onCompleted = (completed: { sessionId: string; message: { senderType: string } }) => {
    if (completed.message.senderType !== 'ai') return;
    const queue = awaitingReply.get(completed.sessionId);
    const scheduled = queue?.shift();
    if (scheduled !== undefined) replyLatencies.push(performance.now() - scheduled);
  };
  if (params.expectReplies) for (const client of pool.clients) client.socket.on('message:completed', onCompleted);

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const interval = 1000 / params.rate;
  const total = Math.floor((params.durationMs / 1000) * params.rate);
  let seq = 0;
  let lastReport = start;

  const send = (n: number) => {
    const scheduled = start + n * interval;
    if (outstanding >= params.maxOutstanding) {
      shed += 1;
      return;
    }
    const session = sessions[n % sessions.length]!;
    const socket = pool.clients[session.client]!.socket;
    outstanding += 1;
    sent += 1;
    if (params.expectReplies) {
      const queue = awaitingReply.get(session.sessionId);
      if (queue) queue.push(scheduled);
      else awaitingReply.set(session.sessionId, [scheduled]);
    }
    const forget = () => {
      const queue = awaitingReply.get(session.sessionId);
      const at = queue?.indexOf(scheduled) ?? -1;
      if (queue && at >= 0) queue.splice(at, 1);
    };
    socket.timeout(params.ackTimeoutMs).emit(
      'message:send',
      { sessionId: session.sessionId, clientMessageId: `${params.label}-${n}`, content: `bench ${params.label} message ${n}` },
      (error: Error | null, answer?: { ok: boolean; error?: { code: string } }) => {
        outstanding -= 1;
        const now = performance.now();
        if (error) {
          timedOut += 1;
          forget();
          return;
        }
        if (answer?.ok) {
          acked += 1;
          lastAckAt = now;
          ackLatencies.push(now - scheduled);
        } else {
          failed += 1;
          tally(errors, answer?.error?.code ?? 'no answer');
          forget();
        }
      },
    );
  };

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      // send n is scheduled at start + n / rate: every n up to elapsed × rate is due
      const due = Math.min(total, Math.floor(((now - start) * params.rate) / 1000) + 1);
      while (seq < due) send(seq++);
      if (now - lastReport >= 1000) {
        lastReport = now;
        reportProgress(
          `${params.label}: ${((now - start) / 1000).toFixed(0)}/${(params.durationMs / 1000).toFixed(0)} s, ${params.rate}/s offered, ${acked} acked, ${outstanding} outstanding, ${shed} shed`,
        );
      }
      if (seq >= total) {
        clearInterval(timer);
        resolve();
      }
    }, SEND_TICK_MS);
  });
  // every send ends with an ack or its timeout
  while (outstanding > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const end = Math.max(start + params.durationMs, lastAckAt);
  const cpu = process.cpuUsage(cpuBefore);
  const cpuWall = performance.now() - start;

  let repliesMissing = 0;
  if (params.expectReplies) {
    const deadline = performance.now() + params.replyWaitMs;
    const waiting = () => [...awaitingReply.values()].reduce((sum, q) => sum + q.length, 0);
    while (waiting() > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    repliesMissing = waiting();
    for (const client of pool.clients) client.socket.off('message:completed', onCompleted);
  }

  return {
    offeredRate: params.rate,
    achievedRate: (acked * 1000) / (end - start),
    sent,
    acked,
    failed,
    shed,
    timedOut,
    errors,
    ack: summarize(ackLatencies),
    reply: summarize(replyLatencies),
    repliesMissing,
    loadCpuCores: (cpu.user + cpu.system) / 1000 / cpuWall,
  };
}
