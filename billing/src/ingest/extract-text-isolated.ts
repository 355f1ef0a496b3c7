/**
 * `extractTextIsolated(bytes, kind, budget, signal)`: `extractText` in a child process of its own, within a budget.
 * Parsing a hostile file (a PDF whose content inflates to gigabytes, megabytes of junk PDF.js tries to repair) can
 * take any amount of time and memory; in a process of its own it takes neither from the billing process — not its
 * event loop, not its heap, not its RSS (a worker thread shares the process's memory, and the allocator keeps part
 * of what it freed) — and:
 * - the child's V8 heap is capped (`--max-old-space-size`), and its resident memory (heap, and the buffers PDF.js
 *   inflates streams into, which the heap cap does not count) is read every few milliseconds: grown more than
 *   `memoryMb` above what the fresh process held, it is killed — an `extraction_memory` DocumentError;
 * - past `timeoutMs` it is killed — an `extraction_timeout` DocumentError;
 * - more text than `maxChars` is a `too_much_text` DocumentError (the child stops reading there).
 * Each call starts a fresh process and has ended it when the promise settles.
 */
import { fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { DocumentError, type DocumentErrorCode } from './document-error.ts';
import type { DocumentKind } from './document-kind.ts';
import type { TextSection } from './extract-text.ts';
import type { IngestBudget } from './ingest-budget.ts';

/** What the child is sent, once it said it is ready. */
export interface ExtractionRequest {
  bytes: Uint8Array;
  kind: DocumentKind;
  maxChars: number;
}

/** What the child sends: that it is ready (its code loaded), then its answer, once. */
export type ExtractionMessage =
  | { ready: true }
  | { ok: true; sections: TextSection[] }
  /** `code` when the error was a DocumentError (permanent); without, something unexpected (retried). */
  | { ok: false; code?: DocumentErrorCode; message: string };

/** The child runs a .ts file: it inherits this process's execArgv, which loads tsx (`--import tsx` or tsx's CLI). */
const CHILD_SCRIPT = new URL('./extract-text-worker.ts', import.meta.url);
/** How often the child's memory is read; PDF.js inflates ~150 MB/s, so it overshoots by a few MB at most. */
const WATCH_MS = 10;
const MIB = 1024 * 1024;

/** A process's resident memory in bytes (Linux /proc), or undefined where it cannot be read. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

export async function extractTextIsolated(
  bytes: Uint8Array,
  kind: DocumentKind,
  budget: Pick<IngestBudget, 'maxChars' | 'timeoutMs' | 'memoryMb'>,
  signal?: AbortSignal,
): Promise<TextSection[]> {
  signal?.throwIfAborted();
  const child = fork(CHILD_SCRIPT, [], {
    // a heap over this ends the child ("heap out of memory"), not the billing process
    execArgv: [...process.execArgv, `--max-old-space-size=${budget.memoryMb}`],
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString('utf8');
  });
  const memoryError = () =>
    new DocumentError('extraction_memory', `extraction needed more than the ${budget.memoryMb} MiB of memory allowed (INGEST_MEMORY_MB)`);

  let timer: NodeJS.Timeout | undefined;
  let watch: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  // the answer may come before the baseline is read: no watch may start after the call has settled
  let settled = false;
  try {
    return await new Promise<TextSection[]>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new DocumentError('extraction_timeout', `extraction took longer than the ${budget.timeoutMs} ms allowed (INGEST_TIMEOUT_MS)`)),
        budget.timeoutMs,
      );
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('message', (message: ExtractionMessage) => {
        if ('ready' in message) {
          void startWatching();
          child.send({ bytes, kind, maxChars: budget.maxChars } satisfies ExtractionRequest);
        } else if (message.ok) resolve(message.sections);
        else reject(message.code ? new DocumentError(message.code, message.message) : new Error(`text extraction failed: ${message.message}`));
      });
      child.once('error', reject);
      child.once('exit', (code, exitSignal) => {
        if (/heap out of memory|Allocation failed/i.test(stderr)) reject(memoryError());
        else reject(new Error(`the text extraction process ended (${exitSignal ?? `exit code ${code}`}) before answering`));
      });
      // growth over what the fresh process held (node and its loaded code), read until the answer comes
      const startWatching = async () => {
        const baseline = child.pid === undefined ? undefined : await residentBytes(child.pid);
        if (baseline === undefined || settled) return; // no /proc here: the heap cap and the time limit still hold
        let reading = false;
        watch = setInterval(() => {
          if (reading) return;
          reading = true;
          void residentBytes(child.pid!).then((resident) => {
            reading = false;
            if (resident !== undefined && resident - baseline > budget.memoryMb * MIB) reject(memoryError());
          });
        }, WATCH_MS);
      };
    });
  } finally {
    settled = true;
    clearTimeout(timer);
    clearInterval(watch);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
}
