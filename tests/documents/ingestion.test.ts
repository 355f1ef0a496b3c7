import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { ingestJobId, reingestDocument, enqueueDocument } from '#billing/ingest/ingest-queue.ts';
import { LocalEmbedder } from '#shared/embeddings/local-embedder.ts';
import type { IngestWorker } from '#billing/ingest/ingest-worker.ts';
import type { TestDatabase } from '../support/database.ts';
import { startIngestHarness, type IngestHarness } from '../support/ingest-harness.ts';
import { insertDocument, SAMPLE_TEXTS, waitForDocument } from '../support/fixtures/knowledge-base.ts';
import { minimalPdf } from '../support/fixtures/minimal-pdf.ts';

const CHUNK_TOKENS = 80;

let h: IngestHarness;
let t: TestDatabase;
let worker: IngestWorker;
let cloneId: string;

test.before(async () => {
  h = await startIngestHarness({
    config: { INGEST_CONCURRENCY: 2, MAX_UPLOAD_BYTES: 64 * 1024, CHUNK_TOKENS, CHUNK_OVERLAP_TOKENS: 15 },
    embedder: new LocalEmbedder({ dimensions: 256 }),
    staleProcessingMs: 1000,
    retry: { attempts: 2, backoffMs: 50 },
  });
  ({ t, worker, cloneId } = h);
});

test.after(async () => {
  await h?.close();
});

const upload = (relativePath: string, content: string | Uint8Array) => h.upload(relativePath, content);

async function chunksOf(documentId: string) {
  return t.db
    .selectFrom('document_chunks')
    .select(['chunk_index', 'content', 'doc_metadata', sql<number>`(SELECT sum(x::float8 * x::float8) FROM unnest(embedding) AS x)`.as('norm2'), sql<number>`cardinality(embedding)`.as('length')])
    .where('document_id', '=', documentId)
    .orderBy('chunk_index')
    .execute();
}

const longBernoulli = Array.from({ length: 6 }, (_, i) => `Part ${i + 1}. ${SAMPLE_TEXTS.bernoulli}`).join('\n\n');

test('a pending row inserted directly is picked up by the poller and ingested into normalised chunks', async () => {
  const id = await insertDocument(t.db, { cloneId, title: 'Bernoulli notes', fileName: upload('bernoulli.txt', longBernoulli) });
  const state = await waitForDocument(t.db, id);
  assert.is(state.processing_status, 'completed', state.failure_reason ?? '');
  assert.is(state.failure_reason, null);
  assert.is(state.embedding_model, 'local-hash-v1');
  assert.is(state.embedding_dimensions, 256);
  const chunks = await chunksOf(id);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  assert.is(state.chunk_count, chunks.length);
  assert.equal(chunks.map((c) => c.chunk_index), chunks.map((_, i) => i));
  for (const chunk of chunks) {
    const metadata = chunk.doc_metadata as { startOffset: number; endOffset: number; tokens: number; page?: number };
    assert.is(longBernoulli.slice(metadata.startOffset, metadata.endOffset), chunk.content);
    assert.ok(metadata.tokens > 0 && metadata.tokens <= CHUNK_TOKENS);
    assert.is(metadata.page, undefined);
    assert.is(chunk.length, 256);
    assert.ok(Math.abs(chunk.norm2 - 1) < 1e-4, `|v|² = ${chunk.norm2}`);
  }
});

test('markdown, HTML and a two-page PDF are ingested; PDF chunks carry their page', async () => {
  const md = await insertDocument(t.db, {
    cloneId,
    title: 'Tides (md)',
    fileName: upload('tides.md', `# Tides\n\n${SAMPLE_TEXTS.tides}\n\n## More\n\n- spring tides\n- neap tides\n`),
    fileType: 'text/markdown',
  });
  const html = await insertDocument(t.db, {
    cloneId,
    title: 'Revolution (html)',
    fileName: upload('revolution.html', `<html><head><script>var hidden = 1;</script></head><body><h1>The French Revolution</h1><p>${SAMPLE_TEXTS.revolution}</p></body></html>`),
    fileType: 'text/html',
  });
  const pdf = await insertDocument(t.db, {
    cloneId,
    title: 'Two pages (pdf)',
    fileName: upload('two-pages.pdf', minimalPdf([
      ['Photosynthesis on page one.', 'Chlorophyll absorbs red and blue light.'],
      ['Page two: the Calvin cycle fixes carbon dioxide.'],
    ])),
    fileType: 'application/pdf',
  });
  for (const id of [md, html, pdf]) assert.is((await waitForDocument(t.db, id)).processing_status, 'completed');

  const mdChunks = await chunksOf(md);
  assert.match(mdChunks[0]!.content, /^# Tides\n\nOcean tides/);
  const htmlChunks = await chunksOf(html);
  assert.match(htmlChunks[0]!.content, /^The French Revolution\n/);
  assert.not.match(htmlChunks.map((c) => c.content).join(' '), /hidden|<p>/);
  const pdfChunks = await chunksOf(pdf);
  assert.equal(pdfChunks.map((c) => (c.doc_metadata as { page: number }).page), [1, 2]);
  assert.match(pdfChunks[0]!.content, /Photosynthesis on page one\.\s+Chlorophyll absorbs red and blue light\./);
  assert.match(pdfChunks[1]!.content, /Calvin cycle/);
});

test('a file that cannot be ingested fails with its reason, and the next one still completes', async () => {
  const docx = await insertDocument(t.db, {
    cloneId,
    title: 'Word file',
    fileName: upload('cv.docx', 'PK\u0003\u0004 not really a docx'),
    fileType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  });
  const corrupt = await insertDocument(t.db, { cloneId, title: 'Broken PDF', fileName: upload('broken.pdf', '%PDF-1.4\nnonsense\n%%EOF') });
  const missing = await insertDocument(t.db, { cloneId, title: 'Gone', fileName: 'never-uploaded.txt' });
  const large = await insertDocument(t.db, { cloneId, title: 'Too big', fileName: upload('large.txt', 'word '.repeat(20_000)) });
  const escaping = await insertDocument(t.db, { cloneId, title: 'Sneaky', fileName: 'x.txt', filePath: '../outside.txt' });
  const scanned = await insertDocument(t.db, { cloneId, title: 'Scanned', fileName: upload('scanned.pdf', minimalPdf([[], []])) });
  const good = await insertDocument(t.db, { cloneId, title: 'Good one', fileName: upload('good.txt', SAMPLE_TEXTS.tides) });

  const reasons: Record<string, RegExp> = {
    [docx]: /unsupported document type/,
    [corrupt]: /not a readable PDF/,
    [missing]: /file not found/,
    [large]: /more than the 65536 allowed/,
    [escaping]: /leaves the upload directory/,
    [scanned]: /no text layer/,
  };
  for (const [id, reason] of Object.entries(reasons)) {
    const state = await waitForDocument(t.db, id);
    assert.is(state.processing_status, 'failed', id);
    assert.match(state.failure_reason ?? '', reason);
    assert.is(state.chunk_count, 0);
    // Permanent: failed on the first attempt, not retried.
    const job = await worker.queue.getJob(ingestJobId(id));
    assert.is(job?.attemptsMade, 1);
    assert.is(job?.failedReason, state.failure_reason);
  }
  assert.is((await waitForDocument(t.db, good)).processing_status, 'completed');
});

test('re-processing replaces the chunks, never adds to them', async () => {
  const file = upload('changing.txt', longBernoulli);
  const id = await insertDocument(t.db, { cloneId, title: 'Changing', fileName: file });
  const first = await waitForDocument(t.db, id);
  assert.is(first.processing_status, 'completed');
  const before = await chunksOf(id);

  // Asked again with the same file: the same chunks, once.
  assert.ok(await reingestDocument(t.db, worker.queue, id));
  assert.is((await waitForDocument(t.db, id)).processing_status, 'completed');
  const again = await chunksOf(id);
  assert.equal(again.map((c) => c.content), before.map((c) => c.content));

  // A new file behind the same row: only the new chunks remain.
  upload('changing.txt', SAMPLE_TEXTS.photosynthesis);
  assert.ok(await reingestDocument(t.db, worker.queue, id));
  const state = await waitForDocument(t.db, id);
  assert.is(state.chunk_count, 1);
  const after = await chunksOf(id);
  assert.equal(after.map((c) => c.content), [SAMPLE_TEXTS.photosynthesis]);
  assert.not.ok(await reingestDocument(t.db, worker.queue, '00000000-0000-4000-8000-000000000000'));
});

test('a document is queued once however often it is asked for; a completed one is not ingested again', async () => {
  const id = await insertDocument(t.db, { cloneId, title: 'Once', fileName: upload('once.txt', SAMPLE_TEXTS.revolution) });
  await Promise.all([1, 2, 3, 4].map(() => enqueueDocument(worker.queue, id)));
  await worker.pollOnce();
  assert.is((await waitForDocument(t.db, id)).processing_status, 'completed');
  const stamp = async () =>
    (await t.db.selectFrom('documents').select('updated_at').where('id', '=', id).executeTakeFirstOrThrow()).updated_at.getTime();
  const completedAt = await stamp();
  const chunks = (await chunksOf(id)).length;
  await enqueueDocument(worker.queue, id);
  // The job runs and finds the row completed: it changes nothing.
  await waitForJobGone(ingestJobId(id));
  assert.is(await stamp(), completedAt);
  assert.is((await chunksOf(id)).length, chunks);
});

test('a document left processing by a dead run is queued again by the stale sweep', async () => {
  // As if a worker had claimed it and died, its job lost with it: after staleProcessingMs (1 s here) it is queued again.
  const id = await insertDocument(t.db, {
    cloneId,
    title: 'Orphan',
    fileName: upload('orphan.txt', SAMPLE_TEXTS.tides),
    status: 'processing',
  });
  assert.is(await worker.queue.getJob(ingestJobId(id)), undefined);
  assert.is((await waitForDocument(t.db, id)).processing_status, 'completed');
});

async function waitForJobGone(jobId: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (await worker.queue.getJob(jobId)) {
    if (Date.now() > deadline) throw new Error(`job ${jobId} still there`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test.run();
