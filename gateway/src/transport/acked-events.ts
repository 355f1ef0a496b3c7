/**
 * The one place a socket event's payload is validated and rate limited and where any error becomes an ack
 * `{ ok: false, error }`, for every namespace (the clients' and the voice agents'). A socket that keeps sending
 * while it is limited (more than FLOOD_FACTOR × its burst refused within a second) is disconnected: answering a
 * flood event by event would let one socket keep the process busy.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { z } from 'zod';
import { AppError, errorCause, toWireError } from '#shared/errors/app-error.ts';
import type { ThrottledWarnings } from '#shared/observability/throttled-warnings.ts';
import { TokenBucket } from './token-bucket.ts';

/** Refused events per second, as a multiple of the burst, past which a socket is disconnected. */
export const FLOOD_FACTOR = 5;
/** How long a flooding socket's connection may take to deliver its last answers before it is destroyed. */
const FLOOD_CLOSE_GRACE_MS = 3000;

/** The answer to an event over the budget (built once: a flood must cost as little as possible). */
const RATE_LIMITED = Object.freeze({ ok: false, error: Object.freeze({ code: 'rate_limited', message: 'too many events; slow down' }) });

export interface AckedEventsOptions {
  /** Sustained events per second and burst, per socket. */
  eventsPerSecond: number;
  eventBurst: number;
  logger: Logger;
  /** Counts handled events by name and result code. */
  eventsHandled: Counter<'event' | 'result'>;
  /** Counts `internal` answers by event and cause. */
  internalAnswers: Counter<'event' | 'cause'>;
  /** Where refusals for a dependency not answering are logged (one gateway-wide throttle, not a line per request). */
  warnings: ThrottledWarnings;
  /** Told after each successful event. */
  onSuccess?(): void;
}

/** Returns `on(event, schema, handler)`: binds an event whose answer is the handler's result, or its error. */
export function ackedEvents(socket: Socket, options: AckedEventsOptions) {
  const { logger, eventsHandled } = options;
  const bucket = new TokenBucket(options.eventBurst, options.eventsPerSecond, Date.now());
  const flood = { windowStart: 0, refused: 0, limit: options.eventBurst * FLOOD_FACTOR };
  return <S extends z.ZodType, R extends object>(event: string, schema: S, handler: (payload: z.infer<S>) => Promise<R>) => {
    // Socket.IO passes whatever the client sent: the payload and the ack are checked here, never trusted.
    (socket as unknown as { on(e: string, l: (...args: unknown[]) => void): void }).on(event, (...args: unknown[]) => {
      // what a socket disconnected for flooding had already sent is dropped unanswered
      if (!socket.connected) return;
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (answer: unknown) => void) : undefined;
      const now = Date.now();
      if (!bucket.take(now)) {
        if (now - flood.windowStart >= 1000) {
          flood.windowStart = now;
          flood.refused = 0;
        }
        eventsHandled.inc({ event, result: 'rate_limited' });
        if (++flood.refused > flood.limit) {
          logger.warn({ socket: socket.id, event }, 'socket flooding past its rate limit: disconnected');
          // Read nothing more of what it already sent (a polite close would still parse all of it), let the answers
          // so far go out with the close, and drop the connection soon whatever the client does.
          // The handshake request's TCP connection is this socket's own only when the client opened with a websocket;
          // after long polling it may be a keep-alive connection (another user's, behind a proxy): just disconnect.
          const ownConnection = socket.handshake.query.transport === 'websocket' ? socket.request.socket : undefined;
          ownConnection?.pause();
          socket.disconnect(true);
          if (ownConnection) setTimeout(() => ownConnection.destroy(), FLOOD_CLOSE_GRACE_MS).unref();
          return;
        }
        ack?.(RATE_LIMITED);
        return;
      }
      void (async () => {
        try {
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
          if (wire.code === 'internal') {
            options.internalAnswers.inc({ event, cause: errorCause(error) });
            logger.error({ err: error, event, socket: socket.id }, 'event failed');
          } else if (wire.code === 'unavailable') {
            options.warnings.warn(`unavailable:${event}`, { err: error, event, socket: socket.id }, 'event refused: a dependency is not answering');
          }
          ack?.({ ok: false, error: wire });
        }
      })();
    });
  };
}
