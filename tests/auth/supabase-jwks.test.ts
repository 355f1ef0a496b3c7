/**
 * Access tokens signed with Supabase's signing keys (ES256, RS256, EdDSA), verified against a real key set served over
 * HTTP on loopback, beside HS256 tokens with JWT_SECRET: accepted when a key of the set signed them with its own
 * algorithm; refused for `alg: none`, algorithms outside the list, a kid pointing at a key of another algorithm, an
 * HMAC made with a public key (the confusion attack), a missing kid in a set of several keys, a key removed from the
 * set. Rotation is picked up without a restart; unknown kids do not make a fetch storm; an endpoint that is down or
 * slow is `unavailable` within the timeout. Then the gateway's handshake and the billing API, built from config.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { loadConfig } from '#shared/config/config.ts';
import { signAgentToken } from '#shared/auth/agent-token.ts';
import { keyForHeader, pinnedAlgorithm } from '#shared/auth/signing-keys.ts';
import { TokenVerifier, type TokenVerifierOptions } from '#shared/auth/token-verifier.ts';
import { tokenVerifierFromConfig } from '#shared/auth/token-verifier-from-config.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { signUserToken } from '../../scripts/lib/sign-user-token.ts';
import { billingAppOf, createUser, startSystem, waitFor, type TestSystem } from '../support/system.ts';

const SECRET = 'jwks-test-secret-0123456789-0123456789';
const AUDIENCE = 'authenticated';
const JWKS_PATH = '/auth/v1/.well-known/jwks.json';

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The public JWK as the set publishes it. */
  jwk: JWK;
}

async function signingKey(alg: 'ES256' | 'RS256' | 'EdDSA' | 'ES384', jwkFields: Partial<JWK> = { alg }): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', ...jwkFields } };
}

/**
 * A JWKS endpoint on 127.0.0.1: serves `keys` at JWKS_PATH (404 elsewhere) and counts the fetches; `mode` makes it
 * answer 503 or never answer.
 */
interface KeySetServer {
  /** The server's origin: what SUPABASE_URL would be. */
  origin: string;
  jwksUrl: string;
  keys: JWK[];
  fetches: number;
  mode: 'serve' | 'fail' | 'hang';
  close(): Promise<void>;
}

async function startKeySetServer(keys: SigningKey[]): Promise<KeySetServer> {
  const server: Server = createServer((request, response) => {
    if (request.url !== JWKS_PATH) return void response.writeHead(404).end();
    state.fetches += 1;
    if (state.mode === 'hang') return;
    if (state.mode === 'fail') return void response.writeHead(503).end('down');
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const state: KeySetServer = {
    origin,
    jwksUrl: `${origin}${JWKS_PATH}`,
    keys: keys.map((key) => key.jwk),
    fetches: 0,
    mode: 'serve',
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return state;
}

/** A user's access token as Supabase signs it with a signing key: header `alg` and `kid` as given. */
function tokenSignedBy(key: SigningKey, options: { userId?: string; header?: { alg: string; kid?: string } } = {}): Promise<string> {
  return new SignJWT({ role: 'authenticated' })
    .setProtectedHeader(options.header ?? { alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setSubject(options.userId ?? randomUUID())
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key.privateKey);
}

/** An HS256 token whose HMAC key is `secret` (any bytes: a public key's PEM or JWK, for the confusion attack). */
function hs256Token(secret: string | Uint8Array, header: Record<string, string> = {}): Promise<string> {
  return new SignJWT({ role: 'authenticated' })
    .setProtectedHeader({ ...header, alg: 'HS256' })
    .setSubject(randomUUID())
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret);
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function verifierOf(server: KeySetServer, signingKeys: Partial<NonNullable<TokenVerifierOptions['signingKeys']>> = {}): TokenVerifier {
  return new TokenVerifier({ secret: SECRET, audience: AUDIENCE, signingKeys: { url: server.jwksUrl, ...signingKeys } });
}

/** The AppError code a verification ends with, or `accepted`. */
async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'accepted';
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return error.code;
  }
}

let es256: SigningKey;
let rs256: SigningKey;
let eddsa: SigningKey;
const servers: KeySetServer[] = [];
const serve = async (keys: SigningKey[]) => {
  const server = await startKeySetServer(keys);
  servers.push(server);
  return server;
};

test.before(async () => {
  [es256, rs256, eddsa] = await Promise.all([signingKey('ES256'), signingKey('RS256'), signingKey('EdDSA')]);
});
test.after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

test('a key is pinned to the alg it declares, else the one its type implies; a kid-less header fits only a set of one key', () => {
  assert.is(pinnedAlgorithm({ kty: 'EC', crv: 'P-256' }), 'ES256');
  assert.is(pinnedAlgorithm({ kty: 'RSA' }), 'RS256');
  assert.is(pinnedAlgorithm({ kty: 'OKP', crv: 'Ed25519' }), 'EdDSA');
  assert.is(pinnedAlgorithm({ kty: 'RSA', alg: 'PS256' }), 'PS256');
  assert.is(pinnedAlgorithm({ kty: 'EC', crv: 'P-384' }), undefined);
  assert.is(pinnedAlgorithm({ kty: 'RSA', alg: 'RS256', use: 'enc' }), undefined);
  const set = { keys: [es256.jwk, rs256.jwk] };
  assert.is(keyForHeader(set, { alg: 'ES256', kid: es256.kid }), es256.jwk);
  assert.is(keyForHeader(set, { alg: 'ES256', kid: rs256.kid }), undefined);
  assert.is(keyForHeader(set, { alg: 'ES256' }), undefined);
  assert.is(keyForHeader({ keys: [es256.jwk] }, { alg: 'ES256' }), es256.jwk);
  // an RSA key that declares no alg is RS256's only: not PS256's
  const { alg: _, ...bareRsa } = rs256.jwk;
  assert.is(keyForHeader({ keys: [bareRsa] }, { alg: 'PS256', kid: rs256.kid }), undefined);
  assert.is(keyForHeader({ keys: [bareRsa] }, { alg: 'RS256', kid: rs256.kid }), bareRsa);
});

test('SUPABASE_URL: an ES256 token is verified against <SUPABASE_URL>/auth/v1/.well-known/jwks.json', async () => {
  const server = await serve([es256, rs256]);
  const config = loadConfig({ JWT_SECRET: SECRET, SUPABASE_URL: `${server.origin}/` });
  assert.is(config.jwksUrl, server.jwksUrl);
  const userId = randomUUID();
  const verified = await tokenVerifierFromConfig(config).verifyUser(await tokenSignedBy(es256, { userId }));
  assert.is(verified.userId, userId);
  assert.ok(verified.expiresAt > Date.now() + 3_000_000, 'expiresAt is the token exp');
  assert.is(server.fetches, 1);
});

test('SUPABASE_JWKS_URL wins over SUPABASE_URL; neither set: no key set, ES256 refused without a fetch', async () => {
  const server = await serve([es256]);
  assert.is(loadConfig({ SUPABASE_URL: 'https://elsewhere.example', SUPABASE_JWKS_URL: server.jwksUrl }).jwksUrl, server.jwksUrl);
  const plain = loadConfig({ JWT_SECRET: SECRET });
  assert.is(plain.jwksUrl, undefined);
  assert.is(await outcome(tokenVerifierFromConfig(plain), await tokenSignedBy(es256)), 'unauthorized');
  assert.is(await outcome(tokenVerifierFromConfig(plain), await signUserToken({ secret: SECRET, userId: randomUUID() })), 'accepted');
  assert.is(server.fetches, 0);
  for (const [name, value] of [['SUPABASE_URL', 'not a url'], ['SUPABASE_JWKS_URL', 'file:///etc/jwks.json']] as const) {
    assert.throws(() => loadConfig({ [name]: value }), new RegExp(name));
  }
});

test('RS256 and EdDSA tokens of the set are accepted; ES256 too, with a key that declares no alg', async () => {
  const { alg: _, ...bareEc } = es256.jwk;
  const server = await serve([rs256, eddsa]);
  server.keys.push(bareEc);
  const verifier = verifierOf(server);
  assert.is(await outcome(verifier, await tokenSignedBy(rs256)), 'accepted');
  assert.is(await outcome(verifier, await tokenSignedBy(eddsa)), 'accepted');
  assert.is(await outcome(verifier, await tokenSignedBy(es256)), 'accepted');
  assert.is(server.fetches, 1, 'the set is fetched once and cached');
});

test('HS256 tokens with JWT_SECRET still work beside the key set, and never touch it; agent tokens are HS256 only', async () => {
  const server = await serve([es256]);
  const verifier = verifierOf(server);
  const userId = randomUUID();
  assert.is(await verifier.verify(await signUserToken({ secret: SECRET, userId })), userId);
  assert.is(await outcome(verifier, await signUserToken({ secret: 'another-secret-0123456789-0123456789', userId })), 'unauthorized');
  assert.is(await verifier.verifyAgent(await signAgentToken({ secret: SECRET, audience: AUDIENCE, agentId: 'voice-1' })), 'voice-1');
  assert.is(server.fetches, 0, 'HS256 never fetches the key set');
  // a signing key's token carrying an agent's claims is neither an agent nor a user
  const agentLike = await new SignJWT({ role: 'tollgate_agent' })
    .setProtectedHeader({ alg: 'ES256', kid: es256.kid })
    .setSubject('agent:voice-1')
    .setAudience(AUDIENCE)
    .setExpirationTime('1h')
    .sign(es256.privateKey);
  const asAgent = await verifier.verifyAgent(agentLike).then(
    () => 'accepted',
    (error: unknown) => (error instanceof AppError ? error.code : String(error)),
  );
  assert.is(asAgent, 'unauthorized');
  assert.is(await outcome(verifier, agentLike), 'unauthorized');
});

test('the claims are checked on signing-key tokens too: expired, another audience', async () => {
  const server = await serve([es256]);
  const verifier = verifierOf(server);
  const claims = (audience: string, exp: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: es256.kid }).setSubject(randomUUID()).setAudience(audience).setExpirationTime(exp).sign(es256.privateKey);
  assert.is(await outcome(verifier, await claims(AUDIENCE, '-10s')), 'unauthorized');
  assert.is(await outcome(verifier, await claims('another', '1h')), 'unauthorized');
  assert.is(await outcome(verifier, await claims(AUDIENCE, '1h')), 'accepted');
});

test('a token whose header says ES256 but whose kid names the RSA key is refused (even signed by a real ES256 key)', async () => {
  const server = await serve([es256, rs256]);
  const verifier = verifierOf(server);
  const token = await tokenSignedBy(es256, { header: { alg: 'ES256', kid: rs256.kid } });
  assert.is(await outcome(verifier, token), 'unauthorized');
  // and an RS256 header naming the EC key, signed by the RSA key
  assert.is(await outcome(verifier, await tokenSignedBy(rs256, { header: { alg: 'RS256', kid: es256.kid } })), 'unauthorized');
});

test('an HS256 token MACed with the RSA public key (PEM or JWK) as the secret is refused: the confusion attack', async () => {
  const server = await serve([rs256]);
  const verifier = verifierOf(server);
  const pem = await exportSPKI(rs256.publicKey);
  for (const secret of [pem, pem.trim(), JSON.stringify(rs256.jwk), rs256.jwk.n!]) {
    assert.is(await outcome(verifier, await hs256Token(secret, { kid: rs256.kid })), 'unauthorized');
  }
  assert.is(server.fetches, 0, 'an HS256 token never reaches the key set');
});

test('alg none, and algorithms outside ES256/RS256/EdDSA (ES384 of a published key, HS512), are refused without a fetch', async () => {
  const es384 = await signingKey('ES384');
  const server = await serve([es256, es384]);
  const verifier = verifierOf(server);
  const now = Math.floor(Date.now() / 1000);
  const none = `${base64url({ alg: 'none', typ: 'JWT', kid: es256.kid })}.${base64url({ sub: randomUUID(), aud: AUDIENCE, exp: now + 3600 })}.`;
  assert.is(await outcome(verifier, none), 'unauthorized');
  assert.is(await outcome(verifier, await tokenSignedBy(es384)), 'unauthorized');
  const hs512 = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject(randomUUID()).setAudience(AUDIENCE).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  assert.is(await outcome(verifier, hs512), 'unauthorized');
  assert.is(await outcome(verifier, 'not.a.jwt'), 'unauthorized');
  assert.is(server.fetches, 0);
});

test('a token without a kid is refused when the set has several keys, accepted when it has one', async () => {
  const kidless = await tokenSignedBy(es256, { header: { alg: 'ES256' } });
  assert.is(await outcome(verifierOf(await serve([es256, rs256])), kidless), 'unauthorized');
  assert.is(await outcome(verifierOf(await serve([es256])), kidless), 'accepted');
});

test('rotation: a key the set starts serving is accepted without a restart, after a fetch the cooldown allows', async () => {
  const cooldownMs = 1000;
  const server = await serve([es256]);
  const verifier = verifierOf(server, { cooldownMs });
  assert.is(await outcome(verifier, await tokenSignedBy(es256)), 'accepted');
  assert.is(server.fetches, 1);
  const next = await signingKey('ES256');
  server.keys = [next.jwk, es256.jwk];
  const rotated = await tokenSignedBy(next);
  // right after a fetch the unknown kid is refused without asking again…
  assert.is(await outcome(verifier, rotated), 'unauthorized');
  assert.is(server.fetches, 1);
  // …and once the cooldown has passed, it makes the verifier fetch the set and find the new key
  await waitFor(async () => (await outcome(verifier, rotated)) === 'accepted', 5000, 'the rotated key to be accepted');
  assert.is(server.fetches, 2);
  assert.is(await outcome(verifier, await tokenSignedBy(es256)), 'accepted', 'the previous key still works while published');
});

test('a key removed from the set is refused once the set has been fetched again', async () => {
  const cacheMaxAgeMs = 300;
  const next = await signingKey('ES256');
  const server = await serve([es256, next]);
  const verifier = verifierOf(server, { cacheMaxAgeMs });
  const old = await tokenSignedBy(es256);
  assert.is(await outcome(verifier, old), 'accepted');
  server.keys = [next.jwk];
  await waitFor(async () => (await outcome(verifier, old)) === 'unauthorized', 5000, 'the removed key to be refused');
  assert.ok(server.fetches >= 2, `fetched ${server.fetches} times`);
  assert.is(await outcome(verifier, await tokenSignedBy(next)), 'accepted');
});

test('unknown kids make no fetch storm: 60 made-up kids, at once and one by one, cost at most two fetches', async () => {
  const server = await serve([es256]);
  const verifier = verifierOf(server);
  const forged = await Promise.all(Array.from({ length: 30 }, () => tokenSignedBy(es256, { header: { alg: 'ES256', kid: randomUUID() } })));
  const burst = await Promise.all(forged.map((token) => outcome(verifier, token)));
  assert.equal(new Set(burst), new Set(['unauthorized']));
  for (const token of forged) assert.is(await outcome(verifier, token), 'unauthorized');
  assert.ok(server.fetches <= 2, `fetched ${server.fetches} times`);
  assert.is(await outcome(verifier, await tokenSignedBy(es256)), 'accepted');
  assert.ok(server.fetches <= 2, `fetched ${server.fetches} times`);
});

test('a key set endpoint that is down or hangs is `unavailable` within the timeout, and is not asked again at once', async () => {
  const timeoutMs = 400;
  const token = await tokenSignedBy(es256);
  const timed = async (verifier: TokenVerifier) => {
    const started = Date.now();
    try {
      await verifier.verify(token);
      return { code: 'accepted', ms: Date.now() - started, retryAfterMs: undefined };
    } catch (error) {
      assert.instance(error, AppError);
      return { code: (error as AppError).code, ms: Date.now() - started, retryAfterMs: (error as AppError).details?.retryAfterMs };
    }
  };

  // nothing listening
  const gone = await serve([es256]);
  await gone.close();
  const refused = await timed(verifierOf(gone, { timeoutMs }));
  assert.is(refused.code, 'unavailable');
  assert.type(refused.retryAfterMs, 'number');
  assert.ok(refused.ms < timeoutMs + 500, `answered after ${refused.ms} ms`);

  // accepts the connection, never answers
  const hanging = await serve([es256]);
  hanging.mode = 'hang';
  const slow = await timed(verifierOf(hanging, { timeoutMs }));
  assert.is(slow.code, 'unavailable');
  assert.ok(slow.ms >= timeoutMs - 50 && slow.ms < timeoutMs + 1000, `answered after ${slow.ms} ms`);

  // answers 503: one fetch, then `unavailable` at once for retryAfterFailureMs; back when the endpoint is
  const failing = await serve([es256]);
  failing.mode = 'fail';
  const verifier = verifierOf(failing, { timeoutMs, retryAfterFailureMs: 300 });
  for (let i = 0; i < 10; i++) assert.is((await timed(verifier)).code, 'unavailable');
  assert.is(failing.fetches, 1);
  failing.mode = 'serve';
  await waitFor(async () => (await timed(verifier)).code === 'accepted', 5000, 'the endpoint to be used again');
  assert.is(failing.fetches, 2);
});

test('gateway and billing API: built from config with SUPABASE_JWKS_URL, they take a signing-key token', async () => {
  const server = await serve([es256]);
  let system: TestSystem | undefined;
  try {
    system = await startSystem({ env: { SUPABASE_JWKS_URL: server.jwksUrl } });
    const userId = await createUser(system);
    const client = await system.connect(userId, { token: await tokenSignedBy(es256, { userId }) });
    assert.ok(client.connected);
    client.disconnect();
    const stranger = await signingKey('ES256');
    const refusal = await system.connect(userId, { token: await tokenSignedBy(stranger, { userId }) }).then(
      () => 'connected',
      (error: Error) => error.message,
    );
    assert.is(refusal, 'unauthorized');
    // the HS256 tokens the system signs still connect
    (await system.connect(userId)).disconnect();

    const adminId = randomUUID();
    await system.database.db
      .insertInto('user_profiles')
      .values({ id: adminId, email: `${adminId}@test.local`, full_name: 'Admin', role: 'admin', credits_remaining: '0' })
      .execute();
    const billing = billingAppOf(system);
    const asAdmin = async () =>
      billing.inject({ method: 'GET', url: '/api/ledger/sessions', headers: { authorization: `Bearer ${await tokenSignedBy(es256, { userId: adminId })}` } });
    assert.is((await asAdmin()).statusCode, 200);
    await billing.close();

    // a gateway and a billing app that never fetched the set meet it down: `unavailable` with a retry hint, not `unauthorized`
    server.mode = 'fail';
    const extra = await system.addGateway();
    const down = await extra.connect(userId, { token: await tokenSignedBy(es256, { userId }) }).then(
      () => undefined,
      (error: Error & { data?: { code?: string; retryAfterMs?: number } }) => error,
    );
    assert.is(down?.message, 'unavailable');
    assert.type(down?.data?.retryAfterMs, 'number');
    const coldBilling = billingAppOf(system);
    const answer = await coldBilling.inject({ method: 'GET', url: '/api/ledger/sessions', headers: { authorization: `Bearer ${await tokenSignedBy(es256, { userId: adminId })}` } });
    assert.is(answer.statusCode, 503);
    assert.is(answer.json().error.code, 'unavailable');
    await coldBilling.close();
  } finally {
    await system?.close();
  }
});

test.run();
