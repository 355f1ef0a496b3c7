/**
 * The pgvector branch of storage and retrieval, on PGlite (Postgres in WebAssembly) with the pgvector extension,
 * served over the wire protocol so the real pg driver and migrations run against it: migration 0001 makes
 * `document_chunks.embedding` a `vector` there, chunks are written as '[…]' literals and ranked with `<=>`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { sql, type Kysely } from 'kysely';
import { createDatabase } from '#shared/db/database.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';
import type { Database } from '#shared/db/schema.ts';
import { embeddingColumnType } from '#shared/documents/embedding-column.ts';
import { retrievePassages } from '#gateway/replies/retrieve-passages.ts';
import { LocalEmbedder } from '#shared/embeddings/local-embedder.ts';
import { createClone, ingestFile, SAMPLE_TEXTS } from '../support/fixtures/knowledge-base.ts';

const embedder = new LocalEmbedder({ dimensions: 256 });
let pglite: PGlite;
let server: PGLiteSocketServer;
let db: Kysely<Database>;
let uploadDir: string;

test.before(async () => {
  pglite = await PGlite.create({ extensions: { vector } });
  server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1', maxConnections: 1 });
  await server.start();
  // PGlite is one connection: one pooled client.
  db = createDatabase(`postgres://postgres@${server.getServerConn()}/postgres`, { max: 1 });
  await migrateToLatest(db);
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-uploads-'));
});

test.after(async () => {
  await db?.destroy();
  await server?.stop();
  await pglite?.close();
  if (uploadDir) rmSync(uploadDir, { recursive: true, force: true });
});

function ingest(cloneId: string, name: string, text: string): Promise<string> {
  return ingestFile(db, { cloneId, uploadDir, embedder, fileName: name, content: text });
}

test('with pgvector, chunks are stored as vectors and retrieval ranks them by cosine, per clone', async () => {
  assert.is(await embeddingColumnType(db), 'vector');
  const clone = await createClone(db);
  const other = await createClone(db);
  const bernoulli = await ingest(clone, 'bernoulli.txt', SAMPLE_TEXTS.bernoulli);
  await ingest(clone, 'tides.txt', SAMPLE_TEXTS.tides);
  await ingest(clone, 'revolution.txt', SAMPLE_TEXTS.revolution);
  const otherBernoulli = await ingest(other, 'other-bernoulli.txt', SAMPLE_TEXTS.bernoulli);

  const { rows } = await sql<{ norm: number }>`
    SELECT (embedding <#> embedding) * -1 AS norm FROM document_chunks WHERE document_id = ${bernoulli}
  `.execute(db);
  assert.ok(Math.abs(Number(rows[0]!.norm) - 1) < 1e-4, 'stored normalised');

  const [question] = await embedder.embed(['What are the Bernoulli numbers?']);
  const passages = await retrievePassages(db, { cloneId: clone, embedding: question!, model: embedder.model, dimensions: 256, k: 10 });
  assert.is(passages.length, 3);
  assert.is(passages[0]!.documentId, bernoulli);
  assert.not.ok(passages.some((p) => p.documentId === otherBernoulli));
  for (let i = 1; i < passages.length; i++) assert.ok(passages[i - 1]!.score >= passages[i]!.score);

  // The score is the cosine, as the real[] branch's dot product of normalised vectors.
  const [chunkVector] = await embedder.embed([SAMPLE_TEXTS.bernoulli]);
  const dot = question!.reduce((sum, x, i) => sum + x * chunkVector![i]!, 0);
  assert.ok(Math.abs(passages[0]!.score - dot) < 1e-5, `${passages[0]!.score} vs ${dot}`);

  // Another model or length is never compared (pgvector would refuse vectors of different lengths).
  const [short] = await new LocalEmbedder({ dimensions: 64 }).embed(['What are the Bernoulli numbers?']);
  assert.equal(await retrievePassages(db, { cloneId: clone, embedding: short!, model: embedder.model, dimensions: 64, k: 10 }), []);
});

test('with pgvector, an HNSW cosine index covers the local embedder\'s vectors and the retrieval query can use it', async () => {
  const { rows } = await sql<{ indexname: string; indexdef: string }>`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'document_chunks'`.execute(db);
  const hnsw = rows.find((r) => r.indexname === 'document_chunks_embedding_hnsw_256');
  assert.ok(hnsw, JSON.stringify(rows.map((r) => r.indexname)));
  assert.match(hnsw!.indexdef, /hnsw/);
  assert.match(hnsw!.indexdef, /vector_cosine_ops/);
  // with sequential scans off, the planner answers the nearest-neighbour order from the index
  const query = `[${Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 0)).join(',')}]`;
  const plan = await db.connection().execute(async (conn) => {
    await sql`SET enable_seqscan = off`.execute(conn);
    const explained = await sql<{ 'QUERY PLAN': string }>`
      EXPLAIN SELECT id FROM document_chunks WHERE vector_dims(embedding) = 256
      ORDER BY (embedding::vector(256)) <=> ${query}::vector(256) LIMIT 5`.execute(conn);
    await sql`RESET enable_seqscan`.execute(conn);
    return explained.rows.map((r) => r['QUERY PLAN']).join('\n');
  });
  assert.match(plan, /document_chunks_embedding_hnsw_256/);
});

test.run();
