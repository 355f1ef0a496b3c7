/**
 * `ingestBudget(config)`: what one document's ingestion may take — characters of text, chunks, and the time and
 * memory of its text extraction (which runs in a child process, see `extractTextIsolated`). A document over any of
 * them fails with a DocumentError naming the budget, and is not retried.
 */
import type { Config } from '#shared/config/config.ts';

export interface IngestBudget {
  /** INGEST_MAX_CHARS: most characters of text extracted from one document. */
  maxChars: number;
  /** INGEST_MAX_CHUNKS: most chunks one document is split into. */
  maxChunks: number;
  /** INGEST_TIMEOUT_MS: longest the extraction may run; its worker is terminated then. */
  timeoutMs: number;
  /** INGEST_MEMORY_MB: most memory (MiB) the extraction's worker may use, V8 heap and buffers together. */
  memoryMb: number;
}

export function ingestBudget(
  config: Pick<Config, 'INGEST_MAX_CHARS' | 'INGEST_MAX_CHUNKS' | 'INGEST_TIMEOUT_MS' | 'INGEST_MEMORY_MB'>,
): IngestBudget {
  return {
    maxChars: config.INGEST_MAX_CHARS,
    maxChunks: config.INGEST_MAX_CHUNKS,
    timeoutMs: config.INGEST_TIMEOUT_MS,
    memoryMb: config.INGEST_MEMORY_MB,
  };
}
