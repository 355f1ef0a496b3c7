/** `ask`: sends a client event and resolves with its ack, or rejects when none comes within `timeoutMs`. */
import type { ClientToServerEvents } from '#shared/contract/socket-events.ts';
import type { BenchSocket } from './client-pool.ts';

type AckOf<E extends keyof ClientToServerEvents> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];

export function ask<E extends keyof ClientToServerEvents>(
  socket: BenchSocket,
  event: E,
  payload: Parameters<ClientToServerEvents[E]>[0],
  timeoutMs: number,
): Promise<AckOf<E>> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckOf<E>> }).emitWithAck(event, payload);
}

/** The ack's data, or an error carrying its code. */
export function unwrap<T extends { ok: boolean }>(answer: T): Extract<T, { ok: true }> {
  if (!answer.ok) {
    const failure = answer as unknown as { error?: { code?: string; message?: string } };
    throw new Error(`${failure.error?.code ?? 'error'}: ${failure.error?.message ?? ''}`);
  }
  return answer as Extract<T, { ok: true }>;
}
