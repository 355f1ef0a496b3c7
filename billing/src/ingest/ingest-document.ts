/**
 * `ingestDocument(db, documentId, options)`: turns one `documents` row into `document_chunks` — claim the row
 * (pending or processing → processing), read its file (a relative `file_path` under the upload directory), extract
 * the text (in a child process, within the `budget`: see `extractTextIsolated`), chunk it (at most
 * `budget.maxChunks`), embed the chunks in batches, then in ONE transaction replace the document's chunks and mark it
 * completed with the embedding model and dimensions. Running it again replaces the chunks; it never adds to them.
 * Throws `DocumentError` (permanent) or `EmbeddingError` (see `permanent`); the caller decides about retries and
 * calls `markDocumentFailed`.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { l2Normalise, type Embedder } from '#shared/embeddings/embedder.ts';
import { EmbeddingError } from '#shared/embeddings/embedding-error.ts';
import { iterateChunks, type TextChunk } from './chunk-text.ts';
import { DocumentError } from './document-error.ts';
import { documentKind } from './document-kind.ts';
import { embeddingColumnType, embeddingLiteral } from '#shared/documents/embedding-column.ts';
import { extractTextIsolated } from './extract-text-isolated.ts';
import type { IngestBudget } from './ingest-budget.ts';

export interface IngestDocumentOptions {
  embedder: Embedder;
  /** UPLOAD_DIR: relative `file_path`s resolve under it (itself relative to the working directory). */
  uploadDir: string;
  /** MAX_UPLOAD_BYTES: a larger file fails. */
  maxUploadBytes: number;
  /** CHUNK_TOKENS. */
  chunkTokens: number;
  /** CHUNK_OVERLAP_TOKENS. */
  overlapTokens: number;
  /** INGEST_MAX_CHARS, INGEST_MAX_CHUNKS, INGEST_TIMEOUT_MS, INGEST_MEMORY_MB: `ingestBudget(config)`. */
  budget: IngestBudget;
  /** Chunks per `embedder.embed` call; default 96. */
  embedBatchSize?: number;
  /** Aborts between steps and batches (the worker is closing). */
  signal?: AbortSignal;
}

export type IngestOutcome =
  | { status: 'completed'; chunkCount: number; embeddingModel: string; embeddingDimensions: number }
  /**
   * Nothing was written: `not_found` (the row is gone), `not_pending` (completed or failed: only a pending row is
   * ingested, see `reingestDocument`), `superseded` (set back to pending while this run worked: the next run wins).
   */
  | { status: 'skipped'; reason: 'not_found' | 'not_pending' | 'superseded' };

/** Rows per INSERT: a 3072-long embedding literal is ~40 kB, so a statement stays a few MB. */
const INSERT_BATCH = 100;
/** Longest stretch of chunking before the event loop gets a turn. */
const SLICE_MS = 20;
const MAX_REASON_LENGTH = 1000;

export async function ingestDocument(
  db: Kysely<Database>,
  documentId: string,
  options: IngestDocumentOptions,
): Promise<IngestOutcome> {
  const { embedder, signal } = options;
  const document = await db
    .updateTable('documents')
    .set({ processing_status: 'processing', failure_reason: null })
    .where('id', '=', documentId)
    .where('processing_status', 'in', ['pending', 'processing'])
    .returning(['id', 'file_name', 'file_path', 'file_type'])
    .executeTakeFirst();
  if (!document) {
    const exists = await db.selectFrom('documents').select('id').where('id', '=', documentId).executeTakeFirst();
    return { status: 'skipped', reason: exists ? 'not_pending' : 'not_found' };
  }

  const kind = documentKind(document.file_type, document.file_name);
  const bytes = await readUpload(resolveUploadPath(options.uploadDir, document.file_path), options.maxUploadBytes);
  signal?.throwIfAborted();
  const { budget } = options;
  const sections = await extractTextIsolated(bytes, kind, budget, signal);

  const chunks: TextChunk[] = [];
  let sliceStart = performance.now();
  for (const chunk of iterateChunks(sections, { chunkTokens: options.chunkTokens, overlapTokens: options.overlapTokens })) {
    if (chunks.length === budget.maxChunks) {
      throw new DocumentError('too_many_chunks', `the document makes more than the ${budget.maxChunks} chunks allowed (INGEST_MAX_CHUNKS)`);
    }
    chunks.push(chunk);
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToEventLoop();
      signal?.throwIfAborted();
      sliceStart = performance.now();
    }
  }
  if (chunks.length === 0) {
    throw new DocumentError('no_text', kind === 'pdf' ? 'the PDF has no text layer (a scanned PDF needs OCR first)' : 'the document has no text');
  }

  const vectors = await embedAll(embedder, chunks.map((chunk) => chunk.content), options.embedBatchSize ?? 96, signal);
  const dimensions = vectors[0]!.length;
  const columnType = await embeddingColumnType(db);
  signal?.throwIfAborted();

  return db.transaction().execute(async (trx): Promise<IngestOutcome> => {
    // The row lock orders this run against a concurrent one and against a re-ingestion request.
    const current = await trx
      .selectFrom('documents')
      .select('processing_status')
      .where('id', '=', documentId)
      .forUpdate()
      .executeTakeFirst();
    if (!current) return { status: 'skipped', reason: 'not_found' };
    if (current.processing_status !== 'processing') return { status: 'skipped', reason: 'superseded' };
    await trx.deleteFrom('document_chunks').where('document_id', '=', documentId).execute();
    for (let start = 0; start < chunks.length; start += INSERT_BATCH) {
      await trx
        .insertInto('document_chunks')
        .values(
          chunks.slice(start, start + INSERT_BATCH).map((chunk, offset) => ({
            document_id: documentId,
            chunk_index: start + offset,
            content: chunk.content,
            embedding: embeddingLiteral(columnType, vectors[start + offset]!),
            doc_metadata: JSON.stringify(chunk.metadata),
          })),
        )
        .execute();
    }
    await trx
      .updateTable('documents')
      .set({
        processing_status: 'completed',
        chunk_count: chunks.length,
        embedding_model: embedder.model,
        embedding_dimensions: dimensions,
        failure_reason: null,
      })
      .where('id', '=', documentId)
      .execute();
    return { status: 'completed', chunkCount: chunks.length, embeddingModel: embedder.model, embeddingDimensions: dimensions };
  });
}

/**
 * Marks a document that is being processed as failed, with `reason` (cut to 1000 characters). Returns false when it
 * was not 'processing' any more (deleted, or set back to pending for a newer run, which decides).
 */
export async function markDocumentFailed(db: Kysely<Database>, documentId: string, reason: string): Promise<boolean> {
  const result = await db
    .updateTable('documents')
    .set({ processing_status: 'failed', failure_reason: reason.slice(0, MAX_REASON_LENGTH) })
    .where('id', '=', documentId)
    .where('processing_status', '=', 'processing')
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** An absolute path as it is; a relative one under `uploadDir`, which it may not leave. */
function resolveUploadPath(uploadDir: string, filePath: string): string {
  if (path.isAbsolute(filePath)) return filePath;
  const root = path.resolve(uploadDir);
  const resolved = path.resolve(root, filePath);
  if (!resolved.startsWith(root + path.sep)) {
    throw new DocumentError('invalid_path', `file path ${JSON.stringify(filePath)} leaves the upload directory`);
  }
  return resolved;
}

async function readUpload(file: string, maxBytes: number): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DocumentError('file_missing', `file not found: ${file}`, { cause: error });
    throw new DocumentError('file_unreadable', `file cannot be opened (${code ?? (error as Error).message}): ${file}`, { cause: error });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new DocumentError('file_unreadable', `not a regular file: ${file}`);
    if (stats.size > maxBytes) {
      throw new DocumentError('too_large', `file is ${stats.size} bytes, more than the ${maxBytes} allowed (MAX_UPLOAD_BYTES)`);
    }
    return await handle.readFile();
  } catch (error) {
    if (error instanceof DocumentError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new DocumentError('file_unreadable', `file cannot be read (${code ?? (error as Error).message}): ${file}`, { cause: error });
  } finally {
    await handle.close();
  }
}

async function embedAll(embedder: Embedder, texts: string[], batchSize: number, signal?: AbortSignal): Promise<number[][]> {
  const vectors: number[][] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    signal?.throwIfAborted();
    const batch = texts.slice(start, start + batchSize);
    const answer = await embedder.embed(batch, signal);
    if (answer.length !== batch.length) {
      throw new EmbeddingError('invalid_response', `${embedder.model} returned ${answer.length} vectors for ${batch.length} texts`, true);
    }
    for (const vector of answer) {
      const expected = vectors[0]?.length ?? vector.length;
      if (vector.length === 0 || vector.length !== expected) {
        throw new EmbeddingError('invalid_response', `${embedder.model} returned vectors of lengths ${expected} and ${vector.length}`, true);
      }
      vectors.push(l2Normalise(vector));
    }
  }
  return vectors;
}
