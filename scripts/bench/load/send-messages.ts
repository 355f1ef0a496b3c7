/**
 * `sendMessages`: every session of a pool sends `messagesPerSession` messages one after another (each waits for its
 * ack), a bounded number of sessions at once; then waits until each acknowledged message's reply completed.
 */
import type { SendMessagesParams, SendMessagesResult } from '../load-protocol.ts';
import { ask, unwrap } from './ask.ts';
import { forEachLimited, tally, type ClientPool } from './client-pool.ts';
import { reportProgress } from './progress-channel.ts';

const ACK_TIMEOUT_MS = 60_000;

export async function sendMessages(pool: ClientPool, params: SendMessagesParams): Promise<SendMessagesResult> {
  const errors: Record<string, number> = {};
  const ownSessions = new Set(pool.sessions.map((s) => s.sessionId));
  let sent = 0;
  let failed = 0;
  let replies = 0;
  const onCompleted = (completed: { sessionId: string; message: { senderType: string } }) => {
    if (completed.message.senderType === 'ai' && ownSessions.has(completed.sessionId)) replies += 1;
  };
  for (const client of pool.clients) client.socket.on('message:completed', onCompleted);
  const started = performance.now();
  let lastReport = started;
  const total = pool.sessions.length * params.messagesPerSession;
  await forEachLimited(pool.sessions.length, params.concurrency, async (i) => {
    const session = pool.sessions[i]!;
    const socket = pool.clients[session.client]!.socket;
    for (let k = 0; k < params.messagesPerSession; k++) {
      try {
        unwrap(
          await ask(
            socket,
            'message:send',
            { sessionId: session.sessionId, clientMessageId: `settle-${k}`, content: `settlement bench message ${k}` },
            ACK_TIMEOUT_MS,
          ),
        );
        sent += 1;
      } catch (error) {
        failed += 1;
        tally(errors, error);
      }
      const now = performance.now();
      if (now - lastReport >= 1000) {
        lastReport = now;
        reportProgress(`${pool.name}: ${sent}/${total} messages sent, ${replies} replies`);
      }
    }
  });
  const deadline = performance.now() + params.replyWaitMs;
  while (replies < sent && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const client of pool.clients) client.socket.off('message:completed', onCompleted);
  return { sent, failed, replies, durationMs: performance.now() - started, errors };
}
