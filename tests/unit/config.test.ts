import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, loadConfig } from '#shared/config/config.ts';

test('defaults are sensible and typed', () => {
  const config = loadConfig({});
  assert.is(config.PORT, 3000);
  assert.is(config.BILLING_PORT, 3001);
  assert.is(config.DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/tollgate');
  assert.is(config.REDIS_URL, 'redis://127.0.0.1:6379');
  assert.is(config.JWT_AUDIENCE, 'authenticated');
  assert.is(config.MIN_START_SECONDS, 60);
  assert.is(config.aiPricePer1kTokens, 0n);
  assert.equal(config.platformFeeRate, { numerator: 20n, denominator: 100n });
  assert.is(config.allowedOrigins, true);
  assert.ok(Object.isFrozen(config));
});

test('values are parsed from strings', () => {
  const config = loadConfig({ PORT: '8080', AI_PRICE_PER_1K_TOKENS: '0.0150', ALLOWED_ORIGINS: 'https://a.example, https://b.example' });
  assert.is(config.PORT, 8080);
  assert.is(config.aiPricePer1kTokens, 150n);
  assert.equal(config.allowedOrigins, ['https://a.example', 'https://b.example']);
});

test('a bad value names the variable', () => {
  for (const [name, value] of [['PORT', 'eighty'], ['PLATFORM_FEE_RATE', '1.5'], ['DATABASE_URL', 'not a url'], ['JWT_SECRET', 'short'], ['AI_PRICE_PER_1K_TOKENS', '-1'], ['LOG_LEVEL', 'loud']] as const) {
    try {
      loadConfig({ [name]: value });
      assert.unreachable(`${name}=${value} was accepted`);
    } catch (error) {
      assert.instance(error, ConfigError);
      assert.match((error as Error).message, name);
    }
  }
});

test('production refuses the development JWT secret', () => {
  assert.throws(() => loadConfig({ NODE_ENV: 'production' }), /JWT_SECRET/);
  assert.throws(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) }), /LIVEKIT_API_SECRET/);
  assert.is(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), LIVEKIT_API_SECRET: 'y'.repeat(40) }).NODE_ENV, 'production');
});

test.run();
