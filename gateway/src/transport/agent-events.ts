/**
 * The `/agent` namespace: voice agents connect with an agent token, answer dispatches by claiming sessions, and
 * send the user's utterances. An agent may act only on a session whose claim it holds; it then receives that
 * session's transcript and state in the room `voice:<sessionId>` (shared/src/contract/agent-events.ts).
 */
import type { Namespace } from 'socket.io';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import {
  agentPayloadSchemas,
  type AgentDispatch,
  type AgentSocketData,
  type AgentToServerEvents,
  type ServerToAgentEvents,
} from '#shared/contract/agent-events.ts';
import { AppError } from '#shared/errors/app-error.ts';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { AgentClaims } from '../livekit/agent-claims.ts';
import type { VoiceRooms } from '../livekit/voice-rooms.ts';
import type { SessionService } from '../sessions/session-service.ts';
import type { SessionStore } from '#shared/live-state/session-store.ts';
import type { ThrottledWarnings } from '#shared/observability/throttled-warnings.ts';
import { ackedEvents } from './acked-events.ts';

export type AgentNamespace = Namespace<AgentToServerEvents, ServerToAgentEvents, Record<string, never>, AgentSocketData>;

/** The Socket.IO room of a session's agent. */
export const agentRoom = (sessionId: string) => `voice:${sessionId}`;

export interface AgentEventsOptions {
  service: SessionService;
  store: SessionStore;
  rooms: VoiceRooms;
  claims: AgentClaims;
  verifier: TokenVerifier;
  maxMessageChars: number;
  logger: Logger;
  eventsHandled: Counter<'event' | 'result'>;
  internalAnswers: Counter<'event' | 'cause'>;
  warnings: ThrottledWarnings;
}

export function bindAgentNamespace(nsp: AgentNamespace, options: AgentEventsOptions): void {
  const { service, store, rooms, claims, logger } = options;
  const schemas = agentPayloadSchemas({ maxMessageChars: options.maxMessageChars });

  nsp.use(async (socket, next) => {
    try {
      socket.data.agentId = await options.verifier.verifyAgent(socket.handshake.auth?.token);
      next();
    } catch {
      next(new Error('unauthorized'));
    }
  });

  /** The session's live state and owner, if it is a voice/video session that is not over. */
  const openRoomSession = async (sessionId: string) => {
    const userId = await rooms.ownerOf(sessionId);
    const live = userId ? await store.peek(userId, sessionId) : null;
    if (!userId || !live || live.type === 'chat' || live.status === 'ended') return undefined;
    return { userId, live };
  };

  nsp.on('connection', (socket) => {
    const { agentId } = socket.data;
    // agents speak for many users at once: their limit is per utterance (the users' own message rate), not per socket
    const on = ackedEvents(socket, { eventsPerSecond: 1000, eventBurst: 2000, logger, eventsHandled: options.eventsHandled, internalAnswers: options.internalAnswers, warnings: options.warnings });
    const holding = async (sessionId: string) => {
      const owner = await rooms.ownerOf(sessionId);
      if (!owner || (await claims.holder(sessionId)) !== agentId) {
        throw new AppError('forbidden', 'this agent does not serve that session', { sessionId });
      }
      return owner;
    };

    on('agent:claim', schemas['agent:claim'], async ({ sessionId }) => {
      const open = await openRoomSession(sessionId);
      if (!open || !(await claims.claim(sessionId, agentId))) return { claimed: false as const };
      await socket.join(agentRoom(sessionId));
      const { userId, live } = open;
      const dispatch: AgentDispatch = { sessionId, userId, cloneId: live.cloneId, type: live.type as AgentDispatch['type'] };
      return { claimed: true as const, livekit: await rooms.agentJoin(sessionId), dispatch, claimTtlMs: claims.ttlMs };
    });
    on('agent:release', schemas['agent:release'], async ({ sessionId }) => {
      await claims.release(sessionId, agentId);
      await socket.leave(agentRoom(sessionId));
      return {};
    });
    on('agent:utterance', schemas['agent:utterance'], async (payload) => {
      const userId = await holding(payload.sessionId);
      return service.sendMessageWithReply(userId, payload, 'agent');
    });
    on('agent:interrupt', schemas['agent:interrupt'], async ({ sessionId }) => {
      await holding(sessionId);
      await service.interrupt(sessionId);
      return {};
    });
    on('agent:voice-activity', schemas['agent:voice-activity'], async ({ sessionId }) => {
      const userId = await holding(sessionId);
      await service.voiceActivity(userId, sessionId);
      return {};
    });
  });
}
