import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { parse } from 'yaml';
import { configSchema } from '#shared/config/config.ts';

// docker-compose.yml and the Procfile, checked structurally (this machine has the docker client but no compose
// plugin or engine, so `docker compose config` cannot run here): the full stack is there with health checks,
// every process of the Procfile runs in it with the same entry file, every Tollgate variable it sets is one the
// config knows, dependencies point at services that exist, and LiveKit signs its webhooks with the key the
// gateway verifies them with and sends them to the gateway's webhook route.

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const root = new URL('../../', import.meta.url);
const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const procfile = Object.fromEntries(
  readFileSync(new URL('Procfile', root), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const [name, ...rest] = line.split(':');
      return [name!.trim(), rest.join(':').trim()];
    }),
);

test('the stack: Postgres with pgvector, Redis with AOF, LiveKit, gateway, billing worker, agent, with health checks', () => {
  assert.match(services.postgres?.image ?? '', /pgvector/);
  assert.ok(services.redis?.command?.includes('--appendonly') && services.redis.command.includes('yes'));
  assert.match(services.livekit?.image ?? '', /^livekit\/livekit-server:v\d+\.\d+\.\d+$/);
  for (const name of ['postgres', 'redis', 'livekit', 'gateway', 'billing']) {
    assert.ok(services[name]?.healthcheck?.test?.length, `${name} has a health check`);
  }
  for (const name of ['gateway', 'billing', 'agent']) assert.is(services[name]?.build, '.');
  assert.ok(existsSync(new URL('Dockerfile', root)));
});

test('every Procfile process runs in the stack with the same entry file', () => {
  assert.equal(Object.keys(procfile).sort(), ['agent', 'billing', 'gateway']);
  for (const [name, line] of Object.entries(procfile)) {
    const entry = /(\S+\.ts)$/.exec(line)?.[1];
    assert.ok(entry && existsSync(new URL(entry, root)), `${name}: ${line}`);
    assert.ok(services[name]?.command?.includes(entry!), `${name} runs ${entry} in compose`);
  }
});

test('every variable given to a Tollgate process is one the config knows; dependencies exist', () => {
  const known = new Set(Object.keys(configSchema.shape));
  for (const name of ['migrate', 'gateway', 'billing', 'agent']) {
    const service = services[name]!;
    for (const variable of Object.keys(service.environment ?? {})) assert.ok(known.has(variable), `${name}: ${variable}`);
    for (const dependency of Object.keys(service.depends_on ?? {})) assert.ok(services[dependency], `${name} → ${dependency}`);
  }
  assert.ok(services.agent!.depends_on?.livekit && services.agent!.depends_on.gateway);
});

test('LiveKit sends webhooks to the gateway route, signed with the key the gateway checks', () => {
  const livekit = services.livekit!;
  const config = parse(livekit.environment!.LIVEKIT_CONFIG!) as { webhook: { api_key: string; urls: string[] } };
  assert.equal(config.webhook.urls, ['http://gateway:3000/livekit/webhook']);
  assert.is(config.webhook.api_key, services.gateway!.environment!.LIVEKIT_API_KEY);
  assert.ok(livekit.environment!.LIVEKIT_KEYS!.startsWith(`${config.webhook.api_key}: `));
  assert.is(services.gateway!.environment!.LIVEKIT_API_URL, 'http://livekit:7880');
  assert.is(services.agent!.environment!.AGENT_GATEWAY_URL, 'http://gateway:3000');
});

test.run();
