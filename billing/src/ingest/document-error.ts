/**
 * `DocumentError`: a document that cannot be ingested as it is (missing or unreadable file, unsupported type, too
 * large, no text, over an ingestion budget: too much text, too many chunks, extraction too slow or too big). Always
 * permanent: the ingestion worker marks the document 'failed' with `message` as its `failure_reason` and does not
 * retry.
 */

export type DocumentErrorCode =
  | 'file_missing'
  | 'file_unreadable'
  | 'invalid_path'
  | 'too_large'
  | 'unsupported_type'
  | 'invalid_pdf'
  | 'no_text'
  /** More extracted characters than INGEST_MAX_CHARS. */
  | 'too_much_text'
  /** More chunks than INGEST_MAX_CHUNKS. */
  | 'too_many_chunks'
  /** Extraction ran longer than INGEST_TIMEOUT_MS. */
  | 'extraction_timeout'
  /** Extraction needed more memory than INGEST_MEMORY_MB. */
  | 'extraction_memory';

export class DocumentError extends Error {
  override readonly name = 'DocumentError';
  constructor(
    readonly code: DocumentErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
