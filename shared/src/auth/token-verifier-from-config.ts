/**
 * The access-token verifier every process builds from its config (the gateway's handshake, the billing API): HS256
 * with JWT_SECRET, and the signing keys at `config.jwksUrl` when SUPABASE_JWKS_URL or SUPABASE_URL is set.
 */
import type { Config } from '../config/config.ts';
import { TokenVerifier } from './token-verifier.ts';

export function tokenVerifierFromConfig(config: Pick<Config, 'JWT_SECRET' | 'JWT_AUDIENCE' | 'jwksUrl'>): TokenVerifier {
  return new TokenVerifier({
    secret: config.JWT_SECRET,
    audience: config.JWT_AUDIENCE,
    // the key set's cache, cooldown and timeout keep SigningKeys' defaults (signing-keys.ts says why)
    signingKeys: config.jwksUrl === undefined ? undefined : { url: config.jwksUrl },
  });
}
