/**
 * The gateway's wire contract (Socket.IO v4, default namespace): client → server events with their zod payload
 * schemas and ack answers, server → client events, and the wire shapes of a session and a message.
 * `new Server<ClientToServerEvents, ServerToClientEvents>()` and the typed client both use these types.
 * Money is a decimal string with four places ("1.2500"); times are ISO strings. Documented in docs/protocol.md.
 */
import { z } from 'zod';
import type { ErrorCode, WireError } from '../errors/app-error.ts';
import { storableText } from './storable-text.ts';

export type Money = string;
export type IsoTime = string;
export type SessionType = 'chat' | 'voice' | 'video';
export type SessionStatus = 'active' | 'paused' | 'ended';

export interface WireSession {
  id: string;
  userId: string;
  cloneId: string;
  type: SessionType;
  status: SessionStatus;
  startTime: IsoTime;
  endTime: IsoTime | null;
  activeSeconds: number;
  ratePerMinute: Money;
  cost: Money;
  messageCount: number;
  /**
   * Why the session is paused (`user`, `idle`, `disconnected`: no gateway saw the user's sockets) or ended (the end
   * reason); absent while active and for sessions read from the archive.
   */
  reason?: string;
  /** Voice/video sessions not ended: who is in the room (the session is metered only while both are, not held). */
  room?: WireRoom;
}

/** A voice/video session's room as its user is shown it. */
export interface WireRoom {
  /** The user's participant is in the room. */
  user: boolean;
  /** The clone's voice agent is in the room. */
  agent: boolean;
  /** The user holds the session (`session:pause`): paused even while both are there. */
  held: boolean;
  /** The user has not joined yet: the session ends `join_timeout` at this instant unless they do. */
  joinBy: IsoTime | null;
  /** The user waits for the clone's agent (none joined yet, or it left): the session ends `agent_timeout` then. */
  agentBy: IsoTime | null;
}

/** A passage of the clone's knowledge base an AI reply rests on. */
export interface Citation {
  documentId: string;
  title: string;
  chunkIndex: number;
}

export interface WireMessage {
  id: string;
  sessionId: string;
  senderType: 'user' | 'ai';
  content: string;
  tokensUsed: number;
  costIncrement: Money;
  createdAt: IsoTime;
  /** AI replies: the passages of the clone's documents the reply rests on. */
  citations?: Citation[];
}

export type EndReason =
  | 'user'
  | 'credits_exhausted'
  | 'idle_timeout'
  | 'join_timeout'
  /** A voice/video session whose user waited longer than AGENT_JOIN_TIMEOUT_MS for the clone's agent. */
  | 'agent_timeout'
  | 'room_finished'
  | (string & {});

/** Where a voice/video client joins its session's LiveKit room: server URL, room name, a join token. */
export interface LiveKitJoin {
  url: string;
  room: string;
  /** Short-lived (LIVEKIT_TOKEN_TTL); `session:token` issues a fresh one for a rejoin. */
  token: string;
}

/** Limits the payload schemas are built with (from the config). */
export interface ContractLimits {
  maxMessageChars: number;
}

/**
 * An id as the server issues it: a uuid in lowercase. Live state is keyed by the id's text and Postgres compares
 * uuids case-insensitively, so another spelling of a real id must not pass as a different one.
 */
export const canonicalUuid = z.string().uuid().regex(/^[0-9a-f-]+$/, 'a lowercase uuid');

const uuid = canonicalUuid;
const sessionRef = z.object({ sessionId: uuid }).strict();

export function clientPayloadSchemas(limits: ContractLimits) {
  return {
    'session:start': z.object({ cloneId: uuid, type: z.enum(['chat', 'voice', 'video']) }).strict(),
    'session:pause': sessionRef,
    'session:resume': sessionRef,
    'session:end': sessionRef,
    'session:get': sessionRef,
    'session:token': sessionRef,
    'message:send': z
      .object({
        sessionId: uuid,
        clientMessageId: storableText().min(1).max(64),
        content: storableText().min(1).max(limits.maxMessageChars),
      })
      .strict(),
    'session:history': z.object({ sessionId: uuid, afterMessageId: uuid.optional() }).strict(),
    'session:rate': z
      .object({
        sessionId: uuid,
        rating: z.number().int().min(1).max(5),
        feedback: storableText().max(4000).optional(),
      })
      .strict(),
  } as const;
}

export type ClientPayloadSchemas = ReturnType<typeof clientPayloadSchemas>;
export type ClientEventName = keyof ClientPayloadSchemas;
export type ClientPayload<E extends ClientEventName> = z.infer<ClientPayloadSchemas[E]>;

export interface ErrorAck {
  ok: false;
  error: WireError;
}
export type Ack<T extends object> = ({ ok: true } & T) | ErrorAck;

/** What each client event answers with when it succeeds. */
export interface ClientResults {
  /** Voice and video sessions also get their room (they start paused, until the user is in it). */
  'session:start': { session: WireSession; livekit?: LiveKitJoin };
  'session:pause': { session: WireSession };
  'session:resume': { session: WireSession };
  'session:end': { session: WireSession };
  'session:get': { session: WireSession };
  'session:token': { livekit: LiveKitJoin };
  'message:send': { message: WireMessage };
  /** Every message of the session after `afterMessageId` (all of them without it, or when it is unknown). */
  'session:history': { messages: WireMessage[] };
  'session:rate': Record<never, never>;
}

export type ClientToServerEvents = {
  [E in ClientEventName]: (payload: ClientPayload<E>, ack: (answer: Ack<ClientResults[E]>) => void) => void;
};

export interface MeterTick {
  sessionId: string;
  activeSeconds: number;
  cost: Money;
  creditsRemaining: Money;
  ratePerMinute: Money;
}

export interface ServerToClientEvents {
  'session:updated': (session: WireSession) => void;
  'meter:tick': (tick: MeterTick) => void;
  'credits:low': (warning: { sessionId: string; creditsRemaining: Money; secondsLeft: number }) => void;
  'message:delta': (delta: { sessionId: string; messageId: string; delta: string }) => void;
  'message:completed': (completed: { sessionId: string; message: WireMessage }) => void;
  /** The clone could not answer a message (the model failed); the user's message is stored and not charged more. */
  'message:failed': (failed: { sessionId: string; messageId: string; error: { code: ErrorCode; message: string } }) => void;
  'session:ended': (ended: { sessionId: string; reason: EndReason; session: WireSession }) => void;
  /**
   * Sent just before the gateway disconnects a socket it had accepted: its access token expired (`token_expired`)
   * or its user no longer exists (`unauthorized`). The client reconnects with a fresh token.
   */
  'auth:expired': (notice: { reason: AuthExpiredReason }) => void;
}

/** Why an accepted socket is being disconnected (see `auth:expired`). */
export type AuthExpiredReason = 'token_expired' | 'unauthorized';

/** Data the gateway keeps on each authenticated socket (restored with it by connection state recovery). */
export interface SocketData {
  userId: string;
  /** When the socket's access token expires (ms since the epoch); the gateway disconnects the socket then. */
  tokenExpiresAt: number;
}
