/**
 * `extractTextIsolated(bytes, kind, budget, signal)`: `extractText` in a worker thread of its own, within a budget.
 * Parsing a hostile file (a PDF whose content inflates to gigabytes, megabytes of junk PDF.js tries to repair) can
 * take any amount of time and memory; in a worker it takes neither from the calling process's event loop, and:
 * - the worker's V8 heap is capped (`resourceLimits`), and its heap plus buffers (`external_memory`: PDF.js inflates
 *   streams into ArrayBuffers, which the heap cap does not count) are read every few milliseconds: over
 *   `memoryMb`, the worker is terminated — an `extraction_memory` DocumentError;
 * - past `timeoutMs` the worker is terminated — an `extraction_timeout` DocumentError;
 * - more text than `maxChars` is a `too_much_text` DocumentError (the worker stops reading there).
 * Each call starts a fresh worker and has terminated it when the promise settles, so what it allocated is released.
 */
import { Worker } from 'node:worker_threads';
import { DocumentError, type DocumentErrorCode } from './document-error.ts';
import type { DocumentKind } from './document-kind.ts';
import type { TextSection } from './extract-text.ts';
import type { IngestBudget } from './ingest-budget.ts';

/** What the worker is given (`workerData`). */
export interface ExtractionRequest {
  bytes: Uint8Array;
  kind: DocumentKind;
  maxChars: number;
}

/** What the worker posts back, once. */
export type ExtractionAnswer =
  | { ok: true; sections: TextSection[] }
  /** `code` when the error was a DocumentError (permanent); without, something unexpected (retried). */
  | { ok: false; code?: DocumentErrorCode; message: string };

/** The worker runs a .ts file: it inherits this process's execArgv, which loads tsx (`--import tsx` or tsx's CLI). */
const WORKER_SCRIPT = new URL('./extract-text-worker.ts', import.meta.url);
/** How often the worker's memory is read; PDF.js inflates ~150 MB/s, so it overshoots by a few MB at most. */
const WATCH_MS = 10;
const MIB = 1024 * 1024;

export async function extractTextIsolated(
  bytes: Uint8Array,
  kind: DocumentKind,
  budget: Pick<IngestBudget, 'maxChars' | 'timeoutMs' | 'memoryMb'>,
  signal?: AbortSignal,
): Promise<TextSection[]> {
  signal?.throwIfAborted();
  const request: ExtractionRequest = { bytes, kind, maxChars: budget.maxChars };
  const worker = new Worker(WORKER_SCRIPT, {
    workerData: request,
    // A heap over this ends the worker with ERR_WORKER_OUT_OF_MEMORY (not the process, as it would on the main thread).
    resourceLimits: { maxOldGenerationSizeMb: budget.memoryMb },
  });
  const memoryError = () =>
    new DocumentError('extraction_memory', `extraction needed more than the ${budget.memoryMb} MiB of memory allowed (INGEST_MEMORY_MB)`);

  let timer: NodeJS.Timeout | undefined;
  let watch: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<TextSection[]>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new DocumentError('extraction_timeout', `extraction took longer than the ${budget.timeoutMs} ms allowed (INGEST_TIMEOUT_MS)`)),
        budget.timeoutMs,
      );
      let reading = false;
      watch = setInterval(() => {
        if (reading) return;
        reading = true;
        // Answered between the worker's JavaScript instructions (an interrupt), even while it never yields.
        worker.getHeapStatistics().then(
          (stats) => {
            reading = false;
            if (stats.used_heap_size + stats.external_memory > budget.memoryMb * MIB) reject(memoryError());
          },
          () => {
            reading = false;
          },
        );
      }, WATCH_MS);
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.once('message', (answer: ExtractionAnswer) => {
        if (answer.ok) resolve(answer.sections);
        else reject(answer.code ? new DocumentError(answer.code, answer.message) : new Error(`text extraction failed: ${answer.message}`));
      });
      worker.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? memoryError() : error));
      worker.once('exit', (code) => reject(new Error(`the text extraction worker exited with code ${code} before answering`)));
    });
  } finally {
    clearTimeout(timer);
    clearInterval(watch);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    await worker.terminate();
  }
}
