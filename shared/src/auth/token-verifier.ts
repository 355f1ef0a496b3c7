/**
 * Verifies the access tokens widgets connect to the gateway with, and billing staff call the billing API with:
 * Supabase-style JWTs (`sub` = user_profiles.id), `exp` required, `aud` checked — HS256 with JWT_SECRET and, when a
 * key set is configured, Supabase's signing keys (ES256, RS256, EdDSA; shared/src/auth/signing-keys.ts). The header's
 * `alg` decides which, and each is verified only that way: HS256 never with a key set's key, nor an asymmetric token
 * with the secret. Agent tokens are Tollgate's own: HS256 only. A bad token is `unauthorized`; a key set that cannot
 * be fetched `unavailable`.
 */
import { decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import { AGENT_ROLE } from './agent-token.ts';
import { SIGNING_KEY_ALGORITHMS, SigningKeys, type SigningKeysOptions } from './signing-keys.ts';

export interface TokenVerifierOptions {
  /** HS256 secret (config JWT_SECRET). */
  secret: string;
  /** Required audience (config JWT_AUDIENCE). */
  audience: string;
  /** The signing keys' key set (config SUPABASE_JWKS_URL / SUPABASE_URL); absent: HS256 tokens only. */
  signingKeys?: SigningKeysOptions | undefined;
}

// user ids are lowercase everywhere (Postgres prints them so; Redis keys and rooms are built from them)
const subject = z.string().uuid().transform((id) => id.toLowerCase());
const agentClaims = z.object({ role: z.literal(AGENT_ROLE), sub: z.string().regex(/^agent:[\w-]{1,64}$/) });

const isSigningKeyAlgorithm = (alg: unknown): boolean => (SIGNING_KEY_ALGORITHMS as readonly unknown[]).includes(alg);

export class TokenVerifier {
  private readonly secret: Uint8Array;
  private readonly signingKeys: SigningKeys | undefined;
  private readonly claims: JWTVerifyOptions;

  constructor(options: TokenVerifierOptions) {
    this.secret = new TextEncoder().encode(options.secret);
    this.signingKeys = options.signingKeys && new SigningKeys(options.signingKeys);
    this.claims = { audience: options.audience, requiredClaims: ['exp', 'sub'] };
  }

  /**
   * The user id the token speaks for; throws AppError('unauthorized') for any bad token, AppError('unavailable') when
   * the signing keys it needs cannot be fetched.
   */
  async verify(token: unknown): Promise<string> {
    return (await this.verifyUser(token)).userId;
  }

  /**
   * The user the token speaks for and when the token expires (ms since the epoch: long-lived sockets are cut then);
   * throws as `verify` does.
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
    const parsed = agentClaims.safeParse(await this.payload(token, { secretOnly: true }));
    if (!parsed.success) throw new AppError('unauthorized', 'not an agent token');
    return parsed.data.sub.slice('agent:'.length);
  }

  private async payload(token: unknown, { secretOnly = false } = {}): Promise<JWTPayload> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw new AppError('unauthorized', 'missing token');
    }
    try {
      const { alg } = decodeProtectedHeader(token);
      if (alg === 'HS256') return (await jwtVerify(token, this.secret, { ...this.claims, algorithms: ['HS256'] })).payload;
      if (this.signingKeys && !secretOnly && isSigningKeyAlgorithm(alg)) {
        return (await jwtVerify(token, this.signingKeys.resolveKey, { ...this.claims, algorithms: [...SIGNING_KEY_ALGORITHMS] })).payload;
      }
    } catch (error) {
      // the key set could not be fetched: that says nothing of the token, so the client is told to try again
      if (error instanceof AppError && error.code === 'unavailable') throw error;
      throw new AppError('unauthorized', 'invalid token');
    }
    // `none`, another algorithm, or a signing-key algorithm with no key set configured
    throw new AppError('unauthorized', 'invalid token');
  }
}
