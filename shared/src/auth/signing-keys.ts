/**
 * The asymmetric keys access tokens may be signed with (Supabase's signing keys): the JSON Web Key Set published at
 * a URL, fetched and cached by jose's `createRemoteJWKSet` (fetched again when its age passes `cacheMaxAgeMs`, and
 * when a token names a `kid` it lacks, at most once per `cooldownMs`), each key held to the one algorithm it declares.
 * `resolveKey` is the key resolver `jwtVerify` takes: a token no key fits is refused; a key set that cannot be fetched
 * is `unavailable`.
 */
import {
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWK,
  type JWSHeaderParameters,
  type RemoteJWKSet,
} from 'jose';
import { AppError, UNAVAILABLE_RETRY_MS } from '../errors/app-error.ts';

/**
 * What the signing keys may sign with: Supabase's ECC P-256 and RSA keys, and Ed25519. Never HS256: a key set's key is
 * public, and an HMAC "signed" with it proves nothing (JWT_SECRET alone verifies HS256).
 */
export const SIGNING_KEY_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;

export interface SigningKeysOptions {
  /** The key set's URL (config SUPABASE_JWKS_URL, or SUPABASE_URL's `/auth/v1/.well-known/jwks.json`). */
  url: string;
  /**
   * How long a fetched key set is used before it is fetched again; default 10 minutes — also the longest a key removed
   * from the set (revoked) is still trusted here. Supabase serves the set with a 10-minute cache-control, so asking
   * more often would mostly read its edge cache again.
   */
  cacheMaxAgeMs?: number;
  /**
   * After a fetch, how long a token naming a `kid` the set lacks is refused without fetching again; default 30 s. A key
   * rotated in without being published ahead (Supabase publishes a standby key before it signs) is found by the first
   * such token after it; made-up kids cost the endpoint at most one fetch per this.
   */
  cooldownMs?: number;
  /**
   * Longest a fetch, answer and body, may take; default 3 s. A handshake or an API request waits on it, and the set is
   * a small document (usually from an edge cache): an endpoint slower than this is treated as down.
   */
  timeoutMs?: number;
  /**
   * After a failed fetch, how long requests that need the set fetched are answered `unavailable` at once instead of
   * fetching; default 5 s. jose's cooldown follows only successful fetches: without this, while the endpoint is down,
   * every token would wait on it and ask it again.
   */
  retryAfterFailureMs?: number;
}

type Header = Pick<JWSHeaderParameters, 'alg' | 'kid'>;

/**
 * The one algorithm a JWK may be used with: the `alg` it declares, else the one its type implies (EC P-256: ES256,
 * RSA: RS256, OKP Ed25519: EdDSA); undefined for a key that is not for signatures or that implies none.
 */
export function pinnedAlgorithm(jwk: JWK): string | undefined {
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.alg !== undefined) return jwk.alg;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return undefined;
}

/**
 * The key of the set that may verify a token with this header: the one its `kid` names, pinned to the header's `alg`.
 * Without a `kid` only a set of one key qualifies — never "whichever key verifies".
 */
export function keyForHeader(set: JSONWebKeySet | undefined, header: Header): JWK | undefined {
  if (!set || typeof header.alg !== 'string') return undefined;
  const named = header.kid === undefined ? (set.keys.length === 1 ? set.keys : []) : set.keys.filter((jwk) => jwk.kid === header.kid);
  const fitting = named.filter((jwk) => pinnedAlgorithm(jwk) === header.alg);
  return fitting.length === 1 ? fitting[0] : undefined;
}

export class SigningKeys {
  private readonly remote: RemoteJWKSet;
  private readonly retryAfterFailureMs: number;
  private failedAt = Number.NEGATIVE_INFINITY;

  constructor(options: SigningKeysOptions) {
    this.retryAfterFailureMs = options.retryAfterFailureMs ?? 5000;
    this.remote = createRemoteJWKSet(new URL(options.url), {
      cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
      cooldownDuration: options.cooldownMs ?? 30_000,
      timeoutDuration: options.timeoutMs ?? 3000,
      [customFetch]: this.fetchKeySet,
    });
  }

  /** jwtVerify's key resolver: the public key the token's header names (see keyForHeader), or an AppError. */
  readonly resolveKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    // jose picks the key by kid, type, curve and a declared alg, fetching the set when it is stale or lacks the kid
    const key = await this.remote(header, token);
    // …and the pin goes further: a key declaring no alg is held to the one its type implies, a kid-less token to a
    // set of one key
    if (!keyForHeader(this.remote.jwks(), header)) throw new AppError('unauthorized', 'no signing key fits the token');
    return key;
  };

  /**
   * jose's fetch: any failure — refused, reset, timed out, not 200, not a key set — becomes `unavailable` (the token
   * may be perfectly good; the client should try again rather than be told its token is bad), and starts
   * retryAfterFailureMs of answering so without asking the endpoint.
   */
  private readonly fetchKeySet: FetchImplementation = async (url, init) => {
    if (Date.now() < this.failedAt + this.retryAfterFailureMs) throw unavailable('it failed a moment ago');
    try {
      const response = await fetch(url, init);
      if (response.status !== 200) {
        await response.body?.cancel();
        throw unavailable(`it answered ${response.status}`);
      }
      // read here, under the fetch's own timeout signal, so a body that stalls or is not a key set counts as a failure
      const body = await response.text();
      const set: unknown = JSON.parse(body);
      if (!Array.isArray((set as { keys?: unknown } | null)?.keys)) throw unavailable('it answered no key set');
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    } catch (error) {
      this.failedAt = Date.now();
      if (error instanceof AppError) throw error;
      if (error instanceof SyntaxError) throw unavailable('it answered no key set');
      throw unavailable(error instanceof Error && error.name === 'TimeoutError' ? 'it timed out' : 'it did not answer');
    }
  };
}

function unavailable(why: string): AppError {
  return new AppError('unavailable', `the access tokens' signing keys could not be fetched (${why}); try again`, {
    retryAfterMs: UNAVAILABLE_RETRY_MS,
  });
}
