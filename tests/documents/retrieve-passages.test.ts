import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { embeddingColumnType, embeddingLiteral } from '#shared/documents/embedding-column.ts';
import { retrievePassages } from '#gateway/replies/retrieve-passages.ts';
import { LocalEmbedder } from '#shared/embeddings/local-embedder.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createClone, ingestFile, SAMPLE_TEXTS } from '../support/fixtures/knowledge-base.ts';
import { minimalPdf } from '../support/fixtures/minimal-pdf.ts';

const embedder = new LocalEmbedder({ dimensions: 256 });
let t: TestDatabase;
let uploadDir: string;
let cloneA: string;
let cloneB: string;
const ids: Record<string, string> = {};

function ingest(cloneId: string, title: string, fileName: string, content: string | Uint8Array): Promise<string> {
  return ingestFile(t.db, { cloneId, uploadDir, embedder, title, fileName, content });
}

const ask = async (question: string) => (await embedder.embed([question]))[0]!;
const query = (cloneId: string, embedding: number[], k = 5) =>
  retrievePassages(t.db, { cloneId, embedding, model: embedder.model, dimensions: embedder.dimensions, k });

test.before(async () => {
  t = await createTestDatabase();
  uploadDir = mkdtempSync(path.join(tmpdir(), 'tollgate-uploads-'));
  cloneA = await createClone(t.db);
  cloneB = await createClone(t.db);
  ids.bernoulli = await ingest(cloneA, 'Bernoulli numbers', 'bernoulli.txt', SAMPLE_TEXTS.bernoulli);
  ids.photosynthesis = await ingest(cloneA, 'Photosynthesis', 'photosynthesis.md', `# Photosynthesis\n\n${SAMPLE_TEXTS.photosynthesis}`);
  ids.revolution = await ingest(cloneA, 'French Revolution', 'revolution.html', `<p>${SAMPLE_TEXTS.revolution}</p>`);
  ids.tides = await ingest(cloneA, 'Tides', 'tides.pdf', minimalPdf([['Notes'], [SAMPLE_TEXTS.tides.slice(0, 90)]]));
  // Another clone's document on the very subject asked about.
  ids.otherBernoulli = await ingest(cloneB, 'Bernoulli (clone B)', 'b-bernoulli.txt', SAMPLE_TEXTS.bernoulli);
});

test.after(async () => {
  await t?.drop();
  if (uploadDir) rmSync(uploadDir, { recursive: true, force: true });
});

test('the passage that answers the question comes first, scores descending', async () => {
  const passages = await query(cloneA, await ask('What are the Bernoulli numbers?'));
  assert.is(passages[0]!.documentId, ids.bernoulli);
  assert.is(passages[0]!.title, 'Bernoulli numbers');
  assert.is(passages[0]!.chunkIndex, 0);
  assert.is(passages[0]!.content, SAMPLE_TEXTS.bernoulli);
  assert.ok(passages[0]!.score > 0.3 && passages[0]!.score <= 1.000001, `score ${passages[0]!.score}`);
  for (let i = 1; i < passages.length; i++) assert.ok(passages[i - 1]!.score >= passages[i]!.score);

  const photosynthesis = await query(cloneA, await ask('How does chlorophyll turn light into sugar?'), 1);
  assert.equal(photosynthesis.map((p) => p.documentId), [ids.photosynthesis]);
  const revolution = await query(cloneA, await ask('When was the Bastille stormed?'), 1);
  assert.equal(revolution.map((p) => p.documentId), [ids.revolution]);
  const tides = await query(cloneA, await ask('what causes ocean tides'), 1);
  assert.equal(tides.map((p) => ({ id: p.documentId, page: p.page })), [{ id: ids.tides, page: 2 }]);
});

test("a clone never gets another clone's passages", async () => {
  const forA = await query(cloneA, await ask('What are the Bernoulli numbers?'), 100);
  assert.ok(forA.length >= 4);
  assert.not.ok(forA.some((p) => p.documentId === ids.otherBernoulli));
  const forB = await query(cloneB, await ask('What are the Bernoulli numbers?'), 100);
  assert.equal(forB.map((p) => p.documentId), [ids.otherBernoulli]);
});

test('only completed documents of the same embedding model and length are searched; k limits', async () => {
  const question = await ask('What are the Bernoulli numbers?');
  assert.is((await query(cloneA, question, 2)).length, 2);
  await sql`UPDATE documents SET processing_status = 'processing' WHERE id = ${ids.bernoulli}`.execute(t.db);
  try {
    assert.not.ok((await query(cloneA, question)).some((p) => p.documentId === ids.bernoulli));
  } finally {
    await sql`UPDATE documents SET processing_status = 'completed' WHERE id = ${ids.bernoulli}`.execute(t.db);
  }
  assert.equal(
    await retrievePassages(t.db, { cloneId: cloneA, embedding: question, model: 'text-embedding-3-small', dimensions: 256, k: 5 }),
    [],
  );
  const shorter = (await new LocalEmbedder({ dimensions: 128 }).embed(['What are the Bernoulli numbers?']))[0]!;
  assert.equal(await retrievePassages(t.db, { cloneId: cloneA, embedding: shorter, model: embedder.model, dimensions: 128, k: 5 }), []);
  const mismatch = await retrievePassages(t.db, { cloneId: cloneA, embedding: shorter, model: embedder.model, dimensions: 256, k: 5 }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.instance(mismatch, RangeError);
});

test('the embedding column is detected once; literals match its type', async () => {
  const type = await embeddingColumnType(t.db);
  assert.ok(type === 'real[]' || type === 'vector');
  assert.is(embeddingLiteral('real[]', [0.5, -0.25, 1e-7]), '{0.5,-0.25,1e-7}');
  assert.is(embeddingLiteral('vector', [0.5, -0.25]), '[0.5,-0.25]');
  assert.throws(() => embeddingLiteral('real[]', [Number.NaN]), RangeError);
});

test.run();
