/**
 * The operational endpoints both processes serve: `GET /healthz` (200 when every dependency answers,
 * 503 naming the ones that do not), `GET /readyz` where the process has a readiness (200 while it takes new work,
 * 503 with why not: a load balancer's signal to send new users elsewhere; liveness stays /healthz) and `GET /metrics` (Prometheus text from prom-client; with a metrics token, only
 * for `Authorization: Bearer <token>`, else 401).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { AppError } from '../errors/app-error.ts';

export interface OpsRoutesOptions {
  registry: Registry;
  /** Named dependency checks; each rejects when its dependency does not answer. */
  checks: Record<string, () => Promise<unknown>>;
  /** Longest a check may take before it counts as failed. */
  checkTimeoutMs?: number;
  /** METRICS_TOKEN: when set, /metrics answers only requests bearing it. Default: anyone. */
  metricsToken?: string | undefined;
  /** Whether the process takes new work now (the gateway's admission control); without it no /readyz. */
  readiness?: () => { ready: boolean } & Record<string, unknown>;
}

const BEARER = /^Bearer +([^ ]+) *$/i;
const digest = (text: string) => createHash('sha256').update(text).digest();

export function registerOpsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const timeoutMs = options.checkTimeoutMs ?? 2000;
  app.get('/healthz', async (_request, reply) => {
    const results = await Promise.all(
      Object.entries(options.checks).map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs))),
          ]);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, error instanceof Error ? error.message : 'failed'] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const ok = results.every(([, status]) => status === 'ok');
    return reply.code(ok ? 200 : 503).send({ ok, checks: Object.fromEntries(results) });
  });
  const { readiness } = options;
  if (readiness) {
    app.get('/readyz', async (_request, reply) => {
      const state = readiness();
      return reply.code(state.ready ? 200 : 503).send(state);
    });
  }
  const expected = options.metricsToken === undefined ? undefined : digest(options.metricsToken);
  /** Compared as digests: equal lengths for timingSafeEqual, and no timing that tells how much of the token matched. */
  const mayScrape = (request: FastifyRequest) => {
    if (expected === undefined) return true;
    const given = BEARER.exec(request.headers.authorization ?? '')?.[1];
    return given !== undefined && timingSafeEqual(digest(given), expected);
  };
  app.get('/metrics', async (request, reply) => {
    if (!mayScrape(request)) throw new AppError('unauthorized', 'the metrics need their bearer token');
    const text = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).send(text);
  });
}
