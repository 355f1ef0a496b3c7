/**
 * Binds the client → server events of one socket to the session service. This is the one place where a
 * socket event's payload is validated, rate limited and where any error becomes an ack `{ ok: false, error }`.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { AppError, toWireError } from '#shared/errors/app-error.ts';
import {
  type ClientEventName,
  type ClientPayloadSchemas,
  type ClientResults,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SocketData,
} from '#shared/contract/socket-events.ts';
import type { SessionService } from '../sessions/session-service.ts';
import { TokenBucket } from './token-bucket.ts';

export type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface ClientEventsOptions {
  service: SessionService;
  schemas: ClientPayloadSchemas;
  /** Sustained events per second and burst, per socket. */
  eventsPerSecond: number;
  eventBurst: number;
  logger: Logger;
  /** Counts handled events by name and result code. */
  eventsHandled: Counter<'event' | 'result'>;
  /** Told after each successful event, e.g. so the meter ticker watches the user. */
  onActivity(userId: string): void;
}

type Handler<E extends ClientEventName> = (userId: string, payload: import('zod').infer<ClientPayloadSchemas[E]>) => Promise<ClientResults[E]>;

export function bindClientEvents(socket: GatewaySocket, options: ClientEventsOptions): void {
  const { service, schemas, logger, eventsHandled } = options;
  const bucket = new TokenBucket(options.eventBurst, options.eventsPerSecond, Date.now());

  const on = <E extends ClientEventName>(event: E, handler: Handler<E>) => {
    // Socket.IO passes whatever the client sent: the payload and the ack are checked here, never trusted.
    (socket as unknown as { on(e: string, l: (...args: unknown[]) => void): void }).on(event, (...args: unknown[]) => {
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (answer: unknown) => void) : undefined;
      void (async () => {
        const userId = socket.data.userId;
        try {
          if (!bucket.take(Date.now())) throw new AppError('rate_limited', 'too many events; slow down');
          const parsed = schemas[event].safeParse(args[0]);
          if (!parsed.success) {
            const issue = parsed.error.issues[0];
            throw new AppError('invalid_payload', `${issue?.path.join('.') || 'payload'}: ${issue?.message ?? 'invalid'}`);
          }
          const result = await handler(userId, parsed.data as never);
          eventsHandled.inc({ event, result: 'ok' });
          options.onActivity(userId);
          ack?.({ ok: true, ...result });
        } catch (error) {
          const wire = toWireError(error);
          eventsHandled.inc({ event, result: wire.code });
          if (wire.code === 'internal') logger.error({ err: error, event, userId }, 'event failed');
          ack?.({ ok: false, error: wire });
        }
      })();
    });
  };

  on('session:start', async (userId, payload) => ({ session: await service.start(userId, payload) }));
  on('session:pause', async (userId, { sessionId }) => ({ session: await service.act(userId, sessionId, 'pause') }));
  on('session:resume', async (userId, { sessionId }) => ({ session: await service.act(userId, sessionId, 'resume') }));
  on('session:end', async (userId, { sessionId }) => ({ session: await service.act(userId, sessionId, 'end') }));
  on('session:get', async (userId, { sessionId }) => ({ session: await service.get(userId, sessionId) }));
  on('message:send', async (userId, payload) => ({ message: await service.sendMessage(userId, payload) }));
  on('session:history', async (userId, payload) => ({ messages: await service.history(userId, payload) }));
  on('session:rate', async (userId, payload) => {
    await service.rate(userId, payload);
    return {};
  });
}
