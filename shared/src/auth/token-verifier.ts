/**
 * Verifies the access tokens widgets connect to the gateway with, and billing staff call the billing API with:
 * Supabase-style HS256 JWTs (`sub` = user_profiles.id), algorithm pinned, `exp` required, `aud` checked.
 * Anything else is `unauthorized`.
 */
import { jwtVerify } from 'jose';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import { AGENT_ROLE } from './agent-token.ts';

export interface TokenVerifierOptions {
  /** HS256 secret (config JWT_SECRET). */
  secret: string;
  /** Required audience (config JWT_AUDIENCE). */
  audience: string;
}

// user ids are lowercase everywhere (Postgres prints them so; Redis keys and rooms are built from them)
const subject = z.string().uuid().transform((id) => id.toLowerCase());
const agentClaims = z.object({ role: z.literal(AGENT_ROLE), sub: z.string().regex(/^agent:[\w-]{1,64}$/) });

export class TokenVerifier {
  private readonly key: Uint8Array;

  constructor(private readonly options: TokenVerifierOptions) {
    this.key = new TextEncoder().encode(options.secret);
  }

  /** The user id the token speaks for; throws AppError('unauthorized') for any bad token. */
  async verify(token: unknown): Promise<string> {
    return (await this.verifyUser(token)).userId;
  }

  /**
   * The user the token speaks for and when the token expires (ms since the epoch: long-lived sockets are cut then);
   * throws AppError('unauthorized') for any bad token.
   */
  async verifyUser(token: unknown): Promise<{ userId: string; expiresAt: number }> {
    const payload = await this.payload(token);
    const user = subject.safeParse(payload.sub);
    // an agent is never a user
    if (!user.success || payload.role === AGENT_ROLE) throw new AppError('unauthorized', 'invalid token');
    // jose checked that `exp` is a number in the future
    return { userId: user.data, expiresAt: Number(payload.exp) * 1000 };
  }

  /** The agent name an agent token speaks for (shared/src/auth/agent-token.ts); anything else is unauthorized. */
  async verifyAgent(token: unknown): Promise<string> {
    const parsed = agentClaims.safeParse(await this.payload(token));
    if (!parsed.success) throw new AppError('unauthorized', 'not an agent token');
    return parsed.data.sub.slice('agent:'.length);
  }

  private async payload(token: unknown): Promise<Record<string, unknown>> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw new AppError('unauthorized', 'missing token');
    }
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        audience: this.options.audience,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    } catch {
      throw new AppError('unauthorized', 'invalid token');
    }
  }
}
