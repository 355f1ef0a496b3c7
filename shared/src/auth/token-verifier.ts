/**
 * Verifies the access tokens widgets connect to the gateway with, and billing staff call the billing API with:
 * Supabase-style HS256 JWTs (`sub` = user_profiles.id), algorithm pinned, `exp` required, `aud` checked.
 * Anything else is `unauthorized`.
 */
import { jwtVerify } from 'jose';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';

export interface TokenVerifierOptions {
  /** HS256 secret (config JWT_SECRET). */
  secret: string;
  /** Required audience (config JWT_AUDIENCE). */
  audience: string;
}

const subject = z.string().uuid();

export class TokenVerifier {
  private readonly key: Uint8Array;

  constructor(private readonly options: TokenVerifierOptions) {
    this.key = new TextEncoder().encode(options.secret);
  }

  /** The user id the token speaks for; throws AppError('unauthorized') for any bad token. */
  async verify(token: unknown): Promise<string> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
      throw new AppError('unauthorized', 'missing token');
    }
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        audience: this.options.audience,
        requiredClaims: ['exp', 'sub'],
      });
      return subject.parse(payload.sub);
    } catch {
      throw new AppError('unauthorized', 'invalid token');
    }
  }
}
