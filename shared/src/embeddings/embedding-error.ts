/** `EmbeddingError`: an embedder could not embed; `permanent` tells the ingestion worker not to retry. */

export type EmbeddingErrorCode =
  /** The provider refused the request (bad key, unknown model, invalid input): retrying cannot help. */
  | 'provider_rejected'
  /** The provider could not be reached or was overloaded, after the client's own retries. */
  | 'provider_unavailable'
  /** The provider answered with the wrong number or length of vectors. */
  | 'invalid_response';

export class EmbeddingError extends Error {
  override readonly name = 'EmbeddingError';
  constructor(
    readonly code: EmbeddingErrorCode,
    message: string,
    /** True when the same request would fail again. */
    readonly permanent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
