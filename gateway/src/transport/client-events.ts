/**
 * Binds the client → server events of one socket to the session service (validation, rate limits and error acks:
 * acked-events.ts).
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import {
  type ClientEventName,
  type ClientPayloadSchemas,
  type ClientResults,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SocketData,
} from '#shared/contract/socket-events.ts';
import type { SessionService } from '../sessions/session-service.ts';
import type { ThrottledWarnings } from '#shared/observability/throttled-warnings.ts';
import { ackedEvents } from './acked-events.ts';

/** Between gateway processes (through the adapter's stream). */
export interface InterGatewayEvents {
  /** A session of the user became active through the sending gateway: every gateway holding their sockets meters it. */
  'user:active': (userId: string) => void;
}

export type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterGatewayEvents, SocketData>;

export interface ClientEventsOptions {
  service: SessionService;
  schemas: ClientPayloadSchemas;
  /** Sustained events per second and burst, per socket. */
  eventsPerSecond: number;
  eventBurst: number;
  logger: Logger;
  /** Counts handled events by name and result code. */
  eventsHandled: Counter<'event' | 'result'>;
  /** Counts `internal` answers by event and cause. */
  internalAnswers: Counter<'event' | 'cause'>;
  /** Refusals for a dependency not answering, logged gateway-wide at most once per interval. */
  warnings: ThrottledWarnings;
  /** Throws `overloaded` while the gateway takes no new sessions (AdmissionControl.admit). */
  admitStart(): void;
  /** Told after each successful event, e.g. so the meter ticker watches the user. */
  onActivity(userId: string): void;
}

type Handler<E extends ClientEventName> = (userId: string, payload: import('zod').infer<ClientPayloadSchemas[E]>) => Promise<ClientResults[E]>;

export function bindClientEvents(socket: GatewaySocket, options: ClientEventsOptions): void {
  const { service, schemas } = options;
  const userId = socket.data.userId;
  const bind = ackedEvents(socket, { ...options, onSuccess: () => options.onActivity(userId) });
  const on = <E extends ClientEventName>(event: E, handler: Handler<E>) =>
    bind(event, schemas[event], (payload) => handler(userId, payload as never));

  on('session:start', (userId, payload) => {
    options.admitStart();
    return service.start(userId, payload);
  });
  on('session:token', (userId, { sessionId }) => service.roomToken(userId, sessionId));
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
