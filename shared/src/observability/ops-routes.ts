/**
 * The operational endpoints both processes serve: `GET /healthz` (200 when every dependency answers,
 * 503 naming the ones that do not) and `GET /metrics` (Prometheus text from prom-client).
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface OpsRoutesOptions {
  registry: Registry;
  /** Named dependency checks; each rejects when its dependency does not answer. */
  checks: Record<string, () => Promise<unknown>>;
  /** Longest a check may take before it counts as failed. */
  checkTimeoutMs?: number;
}

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
  app.get('/metrics', async (_request, reply) => {
    const text = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).send(text);
  });
}
