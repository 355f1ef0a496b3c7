/**
 * `Embedder`: turns texts into vectors for the knowledge base. Every implementation returns L2-normalised vectors,
 * so the cosine similarity of two of them is their dot product (what retrieval computes in SQL).
 */

export interface Embedder {
  /** Recorded with each document's chunks (`documents.embedding_model`); only vectors of one model are compared. */
  readonly model: string;
  /** Length of every vector; 0 while unknown (an OpenAI-compatible model not in the known table, before its first answer). */
  readonly dimensions: number;
  /** One vector per text, in order. Rejects with an `EmbeddingError` (its `permanent` says whether a retry may help). */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]>;
}

/** `vector` scaled to length 1 (a zero vector stays zero); a new array of plain numbers. */
export function l2Normalise(vector: ArrayLike<number>): number[] {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  const norm = Math.sqrt(sum);
  const out = new Array<number>(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = norm === 0 ? 0 : vector[i]! / norm;
  return out;
}
