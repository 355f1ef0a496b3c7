/**
 * `DocumentError`: a document that cannot be ingested as it is (missing or unreadable file, unsupported type, too
 * large, no text). Always permanent: the ingestion worker marks the document 'failed' with `message` as its
 * `failure_reason` and does not retry.
 */

export type DocumentErrorCode =
  | 'file_missing'
  | 'file_unreadable'
  | 'invalid_path'
  | 'too_large'
  | 'unsupported_type'
  | 'invalid_pdf'
  | 'no_text';

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
