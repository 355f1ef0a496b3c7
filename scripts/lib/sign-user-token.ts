/**
 * A user's access token as Supabase Auth issues it and the gateway and billing API verify it: HS256 with
 * JWT_SECRET, `sub` = the user's id, `aud` (default `authenticated`), `role` = `authenticated`, `iat` and `exp`.
 * In production the product's auth signs these; Tollgate signs them only for `npm start`'s demo tokens, the chaos
 * run, the bench and the tests — so this lives with the scripts, not in shared/.
 */
import { SignJWT } from 'jose';

export interface UserTokenOptions {
  secret: string;
  userId: string;
  /** Default `authenticated`. */
  audience?: string;
  /** A jose time span (`'1h'`) or `exp` in seconds since the epoch; default one hour. */
  expiresIn?: string | number;
}

export function signUserToken(options: UserTokenOptions): Promise<string> {
  return new SignJWT({ role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.userId)
    .setAudience(options.audience ?? 'authenticated')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(new TextEncoder().encode(options.secret));
}
