/**
 * The contract between the gateway and voice agents, on the gateway's `/agent` Socket.IO namespace. An agent
 * connects with an agent token (shared/src/auth/agent-token.ts). When a user is in a voice/video room without an
 * agent, every agent is offered the session (`agent:dispatch`); the first to `agent:claim` it joins the room and
 * holds the claim (renewing it) while it serves. The agent turns the user's speech into `agent:utterance`s, which
 * the gateway stores and answers exactly like chat messages; the reply streams back to the agent (and to the user's
 * sockets) as `message:delta` / `message:completed`. `agent:interrupt` cuts the reply short (billed as produced).
 */
import { z } from 'zod';
import { canonicalUuid, type Ack, type LiveKitJoin, type ServerToClientEvents, type WireMessage } from './socket-events.ts';
import { storableText } from './storable-text.ts';

export const AGENT_NAMESPACE = '/agent';

/** A voice/video session that needs an agent. */
export interface AgentDispatch {
  sessionId: string;
  /** The user's participant identity in the room. */
  userId: string;
  cloneId: string;
  type: 'voice' | 'video';
}

const uuid = canonicalUuid;
const sessionRef = z.object({ sessionId: uuid }).strict();

export function agentPayloadSchemas(limits: { maxMessageChars: number }) {
  return {
    'agent:claim': sessionRef,
    'agent:release': sessionRef,
    'agent:utterance': z
      .object({
        sessionId: uuid,
        clientMessageId: storableText().min(1).max(64),
        content: storableText().min(1).max(limits.maxMessageChars),
      })
      .strict(),
    'agent:interrupt': sessionRef,
    /** Someone spoke in the room (the user, heard by the speech-to-text, or the clone): a voice session is not idle. */
    'agent:voice-activity': sessionRef,
  } as const;
}

export type AgentPayloadSchemas = ReturnType<typeof agentPayloadSchemas>;
export type AgentEventName = keyof AgentPayloadSchemas;
export type AgentPayload<E extends AgentEventName> = z.infer<AgentPayloadSchemas[E]>;

export interface AgentResults {
  /** `claimed: false`: another agent serves it (or it is over). Claimed: the agent's room join and the session. */
  'agent:claim': { claimed: false } | { claimed: true; livekit: LiveKitJoin; dispatch: AgentDispatch; claimTtlMs: number };
  'agent:release': Record<never, never>;
  /** The stored user message, and the id the clone's reply streams under (null when the utterance was a repeat). */
  'agent:utterance': { message: WireMessage; replyId: string | null };
  'agent:interrupt': Record<never, never>;
  'agent:voice-activity': Record<never, never>;
}

export type AgentToServerEvents = {
  [E in AgentEventName]: (payload: AgentPayload<E>, ack: (answer: Ack<AgentResults[E]>) => void) => void;
};

export type ServerToAgentEvents = Pick<
  ServerToClientEvents,
  'message:delta' | 'message:completed' | 'message:failed' | 'session:updated' | 'session:ended'
> & {
  'agent:dispatch': (dispatch: AgentDispatch) => void;
};

export interface AgentSocketData {
  /** The agent's name from its token (`sub` = `agent:<name>`). */
  agentId: string;
}
