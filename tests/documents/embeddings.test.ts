import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '#shared/config/config.ts';
import { createEmbedder } from '#shared/embeddings/create-embedder.ts';
import { EmbeddingError } from '#shared/embeddings/embedding-error.ts';
import { hashEmbedding, LocalEmbedder } from '#shared/embeddings/local-embedder.ts';
import { EMBEDDING_BATCH_SIZE, OpenAiEmbedder } from '#shared/embeddings/openai-embedder.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.ts';
import { SAMPLE_TEXTS } from '../support/fixtures/knowledge-base.ts';

let fake: FakeOpenAi;

test.before(async () => {
  fake = await startFakeOpenAi({ apiKey: 'sk-good', retryAfterMs: 5 });
});
test.after(async () => {
  await fake?.close();
});

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const norm = (a: readonly number[]) => Math.sqrt(dot(a, a));

async function embeddingError(run: () => Promise<unknown>): Promise<EmbeddingError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof EmbeddingError) return error;
    throw error;
  }
  throw new Error('expected an EmbeddingError');
}

test('the local embedder is deterministic, normalised and EMBEDDING_DIMENSIONS long', async () => {
  const texts = [SAMPLE_TEXTS.bernoulli, SAMPLE_TEXTS.tides, 'Ünïcödé façade — naïve café'];
  const first = await new LocalEmbedder({ dimensions: 256 }).embed(texts);
  const second = await new LocalEmbedder({ dimensions: 256 }).embed(texts);
  assert.equal(first, second);
  assert.equal(first[0], hashEmbedding(SAMPLE_TEXTS.bernoulli, 256));
  for (const vector of first) {
    assert.is(vector.length, 256);
    assert.ok(Math.abs(norm(vector) - 1) < 1e-9);
  }
  assert.is((await new LocalEmbedder({ dimensions: 64 }).embed(['x']))[0]!.length, 64);
  assert.equal(await new LocalEmbedder().embed(['', '!!!']), [new Array(256).fill(0), new Array(256).fill(0)], 'no word: zero');
  assert.is(new LocalEmbedder().model, 'local-hash-v1');
});

test('local embeddings put a question near the text that answers it', async () => {
  const embedder = new LocalEmbedder({ dimensions: 256 });
  const [question, ...docs] = await embedder.embed([
    'What are the Bernoulli numbers?',
    SAMPLE_TEXTS.bernoulli,
    SAMPLE_TEXTS.photosynthesis,
    SAMPLE_TEXTS.revolution,
    SAMPLE_TEXTS.tides,
  ]);
  const scores = docs.map((doc) => dot(question!, doc));
  assert.is(scores.indexOf(Math.max(...scores)), 0, `scores ${scores}`);
});

test('OpenAiEmbedder sends at most 96 inputs per request and returns normalised vectors in order', async () => {
  const embedder = new OpenAiEmbedder({ apiKey: 'sk-good', baseURL: fake.baseUrl, model: 'text-embedding-3-small' });
  assert.is(embedder.dimensions, 1536);
  const texts = Array.from({ length: EMBEDDING_BATCH_SIZE * 2 + 5 }, (_, i) => `text number ${i} about item ${i * 7}`);
  const before = fake.embeddingRequests.length;
  const vectors = await embedder.embed(texts);
  const sent = fake.embeddingRequests.slice(before);
  assert.equal(sent.map((r) => (r.body.input as string[]).length), [96, 96, 5]);
  assert.ok(sent.every((r) => r.body.model === 'text-embedding-3-small' && r.authorization === 'Bearer sk-good'));
  assert.is(sent[0]!.body.encoding_format, 'base64', 'the SDK asks for base64 and decodes it');
  assert.is(vectors.length, texts.length);
  for (const [i, vector] of vectors.entries()) {
    assert.is(vector.length, 1536);
    assert.ok(Math.abs(norm(vector) - 1) < 1e-6);
    assert.ok(Array.isArray(vector));
    // The fake's vectors are the local hashing of each input (sent as float32).
    assert.ok(dot(vector, hashEmbedding(texts[i]!, 1536)) > 0.99999);
  }
  assert.equal(await embedder.embed([]), []);
});

test('OpenAiEmbedder: server errors are retried by the SDK; after its retries they are a transient EmbeddingError', async () => {
  const embedder = new OpenAiEmbedder({ apiKey: 'sk-good', baseURL: fake.baseUrl, model: 'text-embedding-3-small', maxRetries: 2 });
  fake.failNextEmbeddings(2);
  const before = fake.embeddingRequests.length;
  assert.is((await embedder.embed(['tides']))[0]!.length, 1536);
  assert.equal(fake.embeddingRequests.slice(before).map((r) => r.status), [500, 500, 200]);

  fake.failNextEmbeddings(3);
  const error = await embeddingError(() => embedder.embed(['tides']));
  assert.is(error.code, 'provider_unavailable');
  assert.is(error.permanent, false);
  assert.match(error.message, /500/);
});

test('OpenAiEmbedder: a refused request (bad key) is a permanent EmbeddingError, not retried', async () => {
  const embedder = new OpenAiEmbedder({ apiKey: 'sk-wrong', baseURL: fake.baseUrl, model: 'text-embedding-3-small', maxRetries: 3 });
  const before = fake.embeddingRequests.length;
  const error = await embeddingError(() => embedder.embed(['tides']));
  assert.is(error.code, 'provider_rejected');
  assert.is(error.permanent, true);
  assert.match(error.message, /401/);
  assert.is(fake.embeddingRequests.length - before, 1);
});

test('OpenAiEmbedder learns the length of an unknown model from its first answer', async () => {
  const embedder = new OpenAiEmbedder({ apiKey: 'sk-good', baseURL: fake.baseUrl, model: 'nomic-embed-text' });
  assert.is(embedder.dimensions, 0);
  await embedder.embed(['a']);
  assert.is(embedder.dimensions, 1536);
});

test('createEmbedder picks OpenAI with OPENAI_API_KEY and the local embedder without', () => {
  const local = createEmbedder(loadConfig({ EMBEDDING_DIMENSIONS: '128' }));
  assert.ok(local instanceof LocalEmbedder);
  assert.is(local.dimensions, 128);
  const remote = createEmbedder(loadConfig({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: fake.baseUrl, EMBEDDING_MODEL: 'text-embedding-3-large' }));
  assert.ok(remote instanceof OpenAiEmbedder);
  assert.is(remote.model, 'text-embedding-3-large');
  assert.is(remote.dimensions, 3072);
});

test('config: knowledge-base defaults, and an overlap must be below the chunk size', () => {
  const config = loadConfig({});
  assert.is(config.EMBEDDING_MODEL, 'text-embedding-3-small');
  assert.is(config.EMBEDDING_DIMENSIONS, 256);
  assert.is(config.CHUNK_TOKENS, 400);
  assert.is(config.CHUNK_OVERLAP_TOKENS, 60);
  assert.is(config.RAG_TOP_K, 5);
  assert.is(config.UPLOAD_DIR, '.tollgate/uploads');
  assert.is(config.MAX_UPLOAD_BYTES, 20_971_520);
  assert.is(config.INGEST_CONCURRENCY, 2);
  assert.throws(() => loadConfig({ CHUNK_TOKENS: '100', CHUNK_OVERLAP_TOKENS: '100' }), /CHUNK_OVERLAP_TOKENS/);
});

test.run();
