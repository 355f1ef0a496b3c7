/**
 * A real ingestion worker for the document tests: a fresh database with a clone, an upload folder, a Redis key prefix
 * of its own, and `IngestWorker` on them (polling every 100 ms); `close()` removes all of it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '#shared/config/config.ts';
import type { Embedder } from '#shared/embeddings/embedder.ts';
import { IngestWorker, type IngestWorkerOptions } from '#billing/ingest/ingest-worker.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { createClone } from './fixtures/knowledge-base.ts';

export interface IngestHarness {
  t: TestDatabase;
  redis: Redis;
  worker: IngestWorker;
  uploadDir: string;
  /** A clone to attach documents to. */
  cloneId: string;
  /** Writes a file into the upload folder; returns the name to store as its path. */
  upload(name: string, content: string | Uint8Array): string;
  close(): Promise<void>;
}

export interface IngestHarnessOptions {
  embedder: Embedder;
  /** Config over the defaults (UPLOAD_DIR is the harness's). */
  config?: Partial<Config>;
  retry: NonNullable<IngestWorkerOptions['retry']>;
  staleProcessingMs?: number;
}

export async function startIngestHarness(options: IngestHarnessOptions): Promise<IngestHarness> {
  const t = await createTestDatabase();
  const uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-uploads-'));
  const redis = new Redis(process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const prefix = `tgtest_${process.pid}_${randomBytes(4).toString('hex')}`;
  const cloneId = await createClone(t.db);
  const worker = new IngestWorker({
    config: { ...loadConfig({}), ...options.config, UPLOAD_DIR: uploadDir },
    db: t.db,
    embedder: options.embedder,
    connection: redis,
    prefix,
    pollIntervalMs: 100,
    retry: options.retry,
    ...(options.staleProcessingMs === undefined ? {} : { staleProcessingMs: options.staleProcessingMs }),
  });
  await worker.start();
  return {
    t,
    redis,
    worker,
    uploadDir,
    cloneId,
    upload(name, content) {
      writeFileSync(path.join(uploadDir, name), content);
      return name;
    },
    async close() {
      await worker.close();
      const left = await redis.keys(`${prefix}:*`);
      if (left.length) await redis.del(...left);
      await redis.quit();
      await t.drop();
      rmSync(uploadDir, { recursive: true, force: true });
    },
  };
}
