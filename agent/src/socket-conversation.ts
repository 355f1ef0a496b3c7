/**
 * `SocketConversation`: the voice pipeline's CloneConversation over the agent's Socket.IO connection to the
 * gateway. An utterance is sent as `agent:utterance` (stored, metered and answered exactly like a chat message);
 * its answer names the reply's message id, whose `message:delta`s are yielded until its `message:completed`.
 * Aborting sends `agent:interrupt`: the gateway stops the reply and bills what was produced.
 */
import type { Socket } from 'socket.io-client';
import type { AgentToServerEvents, ServerToAgentEvents } from '#shared/contract/agent-events.ts';
import { AppError } from '#shared/errors/app-error.ts';
import type { CloneConversation } from './clone-conversation.ts';

export type AgentSocket = Socket<ServerToAgentEvents, AgentToServerEvents>;

/** How long an utterance waits for the gateway's answer. */
const ACK_TIMEOUT_MS = 10_000;
/** Voice activity is told at most this often (the idle rule counts in tens of seconds). */
const ACTIVITY_EVERY_MS = 2000;

type Item = { kind: 'delta'; text: string } | { kind: 'end' } | { kind: 'error'; error: Error };

export class SocketConversation implements CloneConversation {
  #toldActivityAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly socket: AgentSocket,
    private readonly sessionId: string,
  ) {}

  voiceActivity(): void {
    const now = Date.now();
    if (now - this.#toldActivityAt < ACTIVITY_EVERY_MS) return;
    this.#toldActivityAt = now;
    this.socket.emit('agent:voice-activity', { sessionId: this.sessionId }, () => undefined);
  }

  async *reply(utterance: { clientMessageId: string; content: string }, signal: AbortSignal): AsyncIterable<string> {
    const { socket, sessionId } = this;
    // events may overtake the answer naming the reply: kept by message id until it is known
    const byMessage = new Map<string, Item[]>();
    let wake: (() => void) | undefined;
    const push = (messageId: string, item: Item) => {
      const items = byMessage.get(messageId) ?? [];
      items.push(item);
      byMessage.set(messageId, items);
      wake?.();
    };
    let ended = false;
    const onDelta: ServerToAgentEvents['message:delta'] = (d) => {
      if (d.sessionId === sessionId) push(d.messageId, { kind: 'delta', text: d.delta });
    };
    const onCompleted: ServerToAgentEvents['message:completed'] = (c) => {
      if (c.sessionId === sessionId) push(c.message.id, { kind: 'end' });
    };
    const onFailed: ServerToAgentEvents['message:failed'] = (f) => {
      if (f.sessionId === sessionId) push(f.messageId, { kind: 'error', error: new AppError(f.error.code, f.error.message) });
    };
    const stop = () => {
      ended = true;
      wake?.();
    };
    const onEnded: ServerToAgentEvents['session:ended'] = (e) => {
      if (e.sessionId === sessionId) stop();
    };
    const onAbort = () => {
      socket.emit('agent:interrupt', { sessionId }, () => undefined);
      stop();
    };
    socket.on('message:delta', onDelta);
    socket.on('message:completed', onCompleted);
    socket.on('message:failed', onFailed);
    socket.on('session:ended', onEnded);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const answer = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('agent:utterance', { sessionId, ...utterance });
      if (!answer.ok) throw new AppError(answer.error.code, answer.error.message);
      if (answer.replyId === null) return; // a repeat: its reply was given the first time
      const replyId = answer.replyId;
      for (;;) {
        const item = byMessage.get(replyId)?.shift();
        if (item?.kind === 'end') return;
        if (item?.kind === 'error') throw item.error;
        if (item) {
          yield item.text;
          continue;
        }
        if (ended || signal.aborted) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      socket.off('message:delta', onDelta);
      socket.off('message:completed', onCompleted);
      socket.off('message:failed', onFailed);
      socket.off('session:ended', onEnded);
      signal.removeEventListener('abort', onAbort);
    }
  }
}
