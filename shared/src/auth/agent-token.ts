/**
 * Tokens of voice agents (the process that speaks for clones in LiveKit rooms): HS256 with the gateway's
 * JWT_SECRET, `sub` = `agent:<name>`, `role` = `tollgate_agent`. User tokens never carry that role, so a user
 * token cannot open the agent namespace, and an agent token is not a user (its `sub` is not a uuid).
 */
import { SignJWT } from 'jose';

export const AGENT_ROLE = 'tollgate_agent';

export interface AgentTokenOptions {
  secret: string;
  audience: string;
  /** The agent's name (letters, digits, `-`, `_`). */
  agentId: string;
  /** Lifetime in seconds; default one hour (the agent signs a new one per connection). */
  ttlSeconds?: number;
}

export function signAgentToken(options: AgentTokenOptions): Promise<string> {
  return new SignJWT({ role: AGENT_ROLE })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(`agent:${options.agentId}`)
    .setAudience(options.audience)
    .setIssuedAt()
    .setExpirationTime(`${options.ttlSeconds ?? 3600}s`)
    .sign(new TextEncoder().encode(options.secret));
}
