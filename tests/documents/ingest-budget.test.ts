/**
 * Ingestion within a budget (issue 21): hostile uploads — compression bombs, junk at the upload limit, a tiny PDF
 * that would make thousands of chunks — end 'failed' on their first attempt with a reason naming the budget they
 * broke, while this process (the billing worker's host here) keeps its memory: their text is extracted in a child
 * process with its own limits.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '#shared/config/config.ts';
import { DocumentError } from '#billing/ingest/document-error.ts';
import { extractTextIsolated } from '#billing/ingest/extract-text-isolated.ts';
import { ingestJobId } from '#billing/ingest/ingest-queue.ts';
import { LocalEmbedder } from '#shared/embeddings/local-embedder.ts';
import type { IngestWorker } from '#billing/ingest/ingest-worker.ts';
import type { TestDatabase } from '../support/database.ts';
import { deflatedPdf, repeated } from '../support/fixtures/deflated-pdf.ts';
import { startIngestHarness, type IngestHarness } from '../support/ingest-harness.ts';
import { insertDocument, waitForDocument, type DocumentState } from '../support/fixtures/knowledge-base.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MIB = 1024 * 1024;
const DEFAULTS = loadConfig({});
const CONFIG = {
  ...DEFAULTS,
  INGEST_CONCURRENCY: 1,
  CHUNK_TOKENS: 80,
  CHUNK_OVERLAP_TOKENS: 15,
  INGEST_MAX_CHARS: 1_000_000,
  INGEST_MAX_CHUNKS: 500,
  INGEST_TIMEOUT_MS: 30_000,
  INGEST_MEMORY_MB: 128,
};
/**
 * How much this process's own V8 heap may grow while a hostile file is ingested: it holds the file's bytes (outside
 * the heap), never the parsed document.
 */
const HEAP_BOUND_MB = 48;
/**
 * How much its RSS may grow, while and after: the file read from disk (up to MAX_UPLOAD_BYTES, 20 MiB) and its copy
 * sent to the extraction process, nothing of the parse — that runs in a process of its own (with the worker thread
 * this replaced, RSS rose by up to INGEST_MEMORY_MB + 70 MB while it ran and kept ~+30–150 MB after).
 */
const RSS_PEAK_BOUND_MB = 80;
const RSS_AFTER_BOUND_MB = 80;
/** Far more than any of these takes with the budget; without it the bomb alone parses for over a minute. */
const WAIT_MS = 30_000;

let h: IngestHarness;
let t: TestDatabase;
let worker: IngestWorker;
let cloneId: string;

test.before(async () => {
  h = await startIngestHarness({ config: CONFIG, embedder: new LocalEmbedder({ dimensions: 256 }), retry: { attempts: 3, backoffMs: 50 } });
  ({ t, worker, cloneId } = h);
  // The first ingestion loads code that stays loaded here: measured runs start after it.
  await ingest('warm-up.txt', 'A first document, to load the ingestion code once.');
});

test.after(async () => {
  await h?.close();
});

interface Ingested {
  id: string;
  state: DocumentState;
  /** How much this process's heapUsed / RSS rose above their values before, at most while it ran and after. */
  heapPeakMb: number;
  rssPeakMb: number;
  /** RSS after, over before (both after a full GC). */
  rssAfterMb: number;
}

/** Uploads a file, waits for the worker to finish with it, and measures this process's memory meanwhile. */
async function ingest(fileName: string, content: string | Uint8Array): Promise<Ingested> {
  h.upload(fileName, content);
  gc();
  const before = process.memoryUsage();
  let heapPeak = before.heapUsed;
  let rssPeak = before.rss;
  const sample = () => {
    const now = process.memoryUsage();
    heapPeak = Math.max(heapPeak, now.heapUsed);
    rssPeak = Math.max(rssPeak, now.rss);
  };
  const sampler = setInterval(sample, 10);
  try {
    const id = await insertDocument(t.db, { cloneId, title: fileName, fileName });
    const state = await waitForDocument(t.db, id, WAIT_MS);
    sample();
    gc();
    const after = process.memoryUsage();
    return {
      id,
      state,
      heapPeakMb: (heapPeak - before.heapUsed) / MIB,
      rssPeakMb: (rssPeak - before.rss) / MIB,
      rssAfterMb: (after.rss - before.rss) / MIB,
    };
  } finally {
    clearInterval(sampler);
  }
}

async function assertFailedOnce(ingested: Ingested, reason: RegExp): Promise<void> {
  const { id, state } = ingested;
  assert.is(state.processing_status, 'failed', `${state.processing_status}: ${state.failure_reason}`);
  assert.match(state.failure_reason ?? '', reason, `failure_reason: ${state.failure_reason}`);
  assert.is(state.chunk_count, 0);
  // Permanent: failed on the first attempt, not retried.
  const job = await worker.queue.getJob(ingestJobId(id));
  assert.is(job?.attemptsMade, 1);
  assert.is(job?.failedReason, state.failure_reason);
}

function assertMemoryFlat(ingested: Ingested, what: string): void {
  const mb = (n: number) => n.toFixed(1);
  const { heapPeakMb, rssPeakMb, rssAfterMb } = ingested;
  console.log(`  ${what}: heapUsed peak +${mb(heapPeakMb)} MB, RSS peak +${mb(rssPeakMb)} MB, RSS after +${mb(rssAfterMb)} MB`);
  assert.ok(heapPeakMb < HEAP_BOUND_MB, `${what}: heapUsed grew by ${mb(heapPeakMb)} MB`);
  assert.ok(rssPeakMb < RSS_PEAK_BOUND_MB, `${what}: RSS grew by ${mb(rssPeakMb)} MB while it ran`);
  assert.ok(rssAfterMb < RSS_AFTER_BOUND_MB, `${what}: RSS stayed ${mb(rssAfterMb)} MB higher after`);
}

test('a compression bomb (256 MiB of content in a small PDF) fails on the memory budget; this process keeps its memory', async () => {
  // `q Q` (save, restore the graphics state): no text, so only the memory and time budgets can stop it.
  const pdf = await deflatedPdf(repeated(Buffer.alloc(MIB, 'q Q\n'), 256));
  assert.ok(pdf.length < 512 * 1024, `${pdf.length} bytes`);
  const ingested = await ingest('bomb.pdf', pdf);
  await assertFailedOnce(ingested, /more than the 128 MiB of memory allowed \(INGEST_MEMORY_MB\)/);
  assertMemoryFlat(ingested, `bomb (${(pdf.length / 1024).toFixed(0)} KB)`);
});

test('a compression bomb of text (24 MiB of it, inflated within the memory budget) fails on the character budget', async () => {
  // PDF.js inflates a page's whole content stream before it reads it: a bigger one breaks the memory budget first.
  // Each line is drawn at the same place (text PDF.js drops as off the page would not count).
  const line = '1 0 0 1 72 720 Tm (All work and no play makes Jack a dull boy.) Tj\n';
  const pdf = await deflatedPdf(['BT /F1 12 Tf\n', ...repeated(Buffer.from(line.repeat(16_384)), 24), 'ET']);
  const ingested = await ingest('text-bomb.pdf', pdf);
  await assertFailedOnce(ingested, /more than the 1000000 characters of text allowed \(INGEST_MAX_CHARS\)/);
  assertMemoryFlat(ingested, `text bomb (${(pdf.length / 1024).toFixed(0)} KB)`);
});

test('junk the size of the upload limit, named .pdf, fails on the memory budget; this process keeps its memory', async () => {
  // Numbered objects and nothing else: PDF.js indexes every one while it tries to repair the file.
  const parts = ['%PDF-1.4\n'];
  let length = parts[0]!.length;
  for (let n = 1; length < CONFIG.MAX_UPLOAD_BYTES; n++) {
    const object = `${n} 0 obj\n<< /A ${n} >>\nendobj\n`;
    parts.push(object);
    length += object.length;
  }
  const junk = Buffer.from(parts.join('')).subarray(0, CONFIG.MAX_UPLOAD_BYTES);
  assert.is(junk.length, DEFAULTS.MAX_UPLOAD_BYTES);
  const ingested = await ingest('junk.pdf', junk);
  await assertFailedOnce(ingested, /more than the 128 MiB of memory allowed \(INGEST_MEMORY_MB\)/);
  assertMemoryFlat(ingested, 'junk (20 MiB)');
});

test('a tiny PDF that would make thousands of chunks fails on the chunk budget', async () => {
  const words = ['tide', 'moon', 'gravity', 'ocean', 'spring', 'neap', 'basin', 'shelf', 'current', 'surge'];
  // 15,000 lines (600,000 characters, under INGEST_MAX_CHARS) over and over the same 50 places on the page.
  const lines = Array.from(
    { length: 15_000 },
    (_, i) => `1 0 0 1 72 ${720 - (i % 50) * 14} Tm (Line ${i}: the ${words[i % 10]} and the ${words[(i * 7) % 10]} meet.) Tj\n`,
  );
  const pdf = await deflatedPdf(['BT /F1 12 Tf\n', ...lines, 'ET']);
  assert.ok(pdf.length < 64 * 1024, `${pdf.length} bytes`);
  const ingested = await ingest('many-chunks.pdf', pdf);
  await assertFailedOnce(ingested, /more than the 500 chunks allowed \(INGEST_MAX_CHUNKS\)/);
  assertMemoryFlat(ingested, `many chunks (${(pdf.length / 1024).toFixed(0)} KB)`);
});

test('an extraction past its time budget is ended: a timeout DocumentError', async () => {
  // 24 MiB of `q Q`: under the memory budget, but seconds of parsing.
  const pdf = await deflatedPdf(repeated(Buffer.alloc(MIB, 'q Q\n'), 24));
  let error: unknown;
  try {
    await extractTextIsolated(pdf, 'pdf', { maxChars: 1_000_000, timeoutMs: 1000, memoryMb: 256 });
  } catch (caught) {
    error = caught;
  }
  assert.instance(error, DocumentError);
  assert.is((error as DocumentError).code, 'extraction_timeout');
  assert.match((error as DocumentError).message, /longer than the 1000 ms allowed \(INGEST_TIMEOUT_MS\)/);
});

test.run();
