import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ingestJobId, reingestDocument } from '#billing/ingest/ingest-queue.ts';
import { retrievePassages } from '#gateway/replies/retrieve-passages.ts';
import type { Embedder } from '#shared/embeddings/embedder.ts';
import { OpenAiEmbedder } from '#shared/embeddings/openai-embedder.ts';
import type { IngestWorker } from '#billing/ingest/ingest-worker.ts';
import type { TestDatabase } from '../support/database.ts';
import { startIngestHarness, type IngestHarness } from '../support/ingest-harness.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.ts';
import { insertDocument, SAMPLE_TEXTS, waitForDocument } from '../support/fixtures/knowledge-base.ts';

const MODEL = 'text-embedding-3-small';

/** The worker's embedder, pointed at a good or a wrongly keyed client as a test needs. */
class SwitchableEmbedder implements Embedder {
  readonly model = MODEL;
  current: Embedder;
  constructor(initial: Embedder) {
    this.current = initial;
  }
  get dimensions(): number {
    return this.current.dimensions;
  }
  embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]> {
    return this.current.embed(texts, signal);
  }
}

let h: IngestHarness;
let t: TestDatabase;
let fake: FakeOpenAi;
let worker: IngestWorker;
let cloneId: string;
let good: OpenAiEmbedder;
let embedder: SwitchableEmbedder;

test.before(async () => {
  fake = await startFakeOpenAi({ apiKey: 'sk-good', retryAfterMs: 5 });
  // One SDK retry per attempt, three attempts: a request fails for good after 6 answers of 500.
  good = new OpenAiEmbedder({ apiKey: 'sk-good', baseURL: fake.baseUrl, model: MODEL, maxRetries: 1 });
  embedder = new SwitchableEmbedder(good);
  h = await startIngestHarness({
    config: { INGEST_CONCURRENCY: 1, MAX_UPLOAD_BYTES: 1 << 20, CHUNK_TOKENS: 400, CHUNK_OVERLAP_TOKENS: 60 },
    embedder,
    retry: { attempts: 3, backoffMs: 50 },
  });
  ({ t, worker, cloneId } = h);
});

test.after(async () => {
  await h?.close();
  await fake?.close();
});

const upload = (name: string, content: string) => h.upload(name, content);

test('a provider failing a few times then answering: the document completes with OpenAI embeddings', async () => {
  // Attempt 1: 500, SDK retry 500 → the job is retried; attempt 2: 500, SDK retry 200.
  fake.failNextEmbeddings(3);
  const before = fake.embeddingRequests.length;
  const id = await insertDocument(t.db, { cloneId, title: 'Bernoulli', fileName: upload('bernoulli.txt', SAMPLE_TEXTS.bernoulli) });
  const state = await waitForDocument(t.db, id);
  assert.is(state.processing_status, 'completed', state.failure_reason ?? '');
  assert.is(state.embedding_model, MODEL);
  assert.is(state.embedding_dimensions, 1536);
  assert.equal(fake.embeddingRequests.slice(before).map((r) => r.status), [500, 500, 500, 200]);

  const [question] = await good.embed(['Who computed the Bernoulli numbers on the Analytical Engine?']);
  const passages = await retrievePassages(t.db, { cloneId, embedding: question!, model: MODEL, dimensions: 1536, k: 3 });
  assert.equal(passages.map((p) => p.documentId), [id]);
  assert.equal(
    await retrievePassages(t.db, { cloneId, embedding: question!.slice(0, 256), model: 'local-hash-v1', dimensions: 256, k: 3 }),
    [],
    'local-model queries never see OpenAI chunks',
  );
});

test('a provider failing on every try: the document fails after the last attempt, with the reason', async () => {
  fake.failNextEmbeddings(1000);
  const before = fake.embeddingRequests.length;
  const id = await insertDocument(t.db, { cloneId, title: 'Tides', fileName: upload('tides.txt', SAMPLE_TEXTS.tides) });
  const state = await waitForDocument(t.db, id);
  fake.failNextEmbeddings(0);
  assert.is(state.processing_status, 'failed');
  assert.match(state.failure_reason ?? '', /embedding provider failed \(500\)/);
  assert.is(fake.embeddingRequests.length - before, 6, '3 attempts of 2 requests');
  const job = await worker.queue.getJob(ingestJobId(id));
  assert.is(job?.attemptsMade, 3);
});

test('a provider refusing the request: the document fails at once, without retries', async () => {
  embedder.current = new OpenAiEmbedder({ apiKey: 'sk-revoked', baseURL: fake.baseUrl, model: MODEL, maxRetries: 1 });
  try {
    const before = fake.embeddingRequests.length;
    const id = await insertDocument(t.db, { cloneId, title: 'Revolution', fileName: upload('revolution.txt', SAMPLE_TEXTS.revolution) });
    const state = await waitForDocument(t.db, id);
    assert.is(state.processing_status, 'failed');
    assert.match(state.failure_reason ?? '', /refused text-embedding-3-small \(401\)/);
    assert.equal(fake.embeddingRequests.slice(before).map((r) => r.status), [401]);
    assert.is((await worker.queue.getJob(ingestJobId(id)))?.attemptsMade, 1);

    // The key fixed, the failed document is ingested again on request.
    embedder.current = good;
    assert.ok(await reingestDocument(t.db, worker.queue, id));
    const retried = await waitForDocument(t.db, id);
    assert.is(retried.processing_status, 'completed');
    assert.is(retried.failure_reason, null);
  } finally {
    embedder.current = good;
  }
});

test.run();
