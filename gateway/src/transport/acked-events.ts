/**
 * The one place a socket event's payload is validated and rate limited and where any error becomes an ack
 * `{ ok: false, error }`, for every namespace (the clients' and the voice agents').
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { z } from 'zod';
import { AppError, toWireError } from '#shared/errors/app-error.ts';
import { TokenBucket } from './token-bucket.ts';

export interface AckedEventsOptions {
  /** Sustained events per second and burst, per socket. */
  eventsPerSecond: number;
  eventBurst: number;
  logger: Logger;
  /** Counts handled events by name and result code. */
  eventsHandled: Counter<'event' | 'result'>;
  /** Told after each successful event. */
  onSuccess?(): void;
}

/** Returns `on(event, schema, handler)`: binds an event whose answer is the handler's result, or its error. */
export function ackedEvents(socket: Socket, options: AckedEventsOptions) {
  const { logger, eventsHandled } = options;
  const bucket = new TokenBucket(options.eventBurst, options.eventsPerSecond, Date.now());
  return <S extends z.ZodType, R extends object>(event: string, schema: S, handler: (payload: z.infer<S>) => Promise<R>) => {
    // Socket.IO passes whatever the client sent: the payload and the ack are checked here, never trusted.
    (socket as unknown as { on(e: string, l: (...args: unknown[]) => void): void }).on(event, (...args: unknown[]) => {
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (answer: unknown) => void) : undefined;
      void (async () => {
        try {
          if (!bucket.take(Date.now())) throw new AppError('rate_limited', 'too many events; slow down');
          const parsed = schema.safeParse(args[0]);
          if (!parsed.success) {
            const issue = parsed.error.issues[0];
            throw new AppError('invalid_payload', `${issue?.path.join('.') || 'payload'}: ${issue?.message ?? 'invalid'}`);
          }
          const result = await handler(parsed.data);
          eventsHandled.inc({ event, result: 'ok' });
          options.onSuccess?.();
          ack?.({ ok: true, ...result });
        } catch (error) {
          const wire = toWireError(error);
          eventsHandled.inc({ event, result: wire.code });
          if (wire.code === 'internal') logger.error({ err: error, event, socket: socket.id }, 'event failed');
          ack?.({ ok: false, error: wire });
        }
      })();
    });
  };
}
