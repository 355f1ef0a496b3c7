/**
 * `LocalEmbedder` ('local-hash-v1'): a deterministic, offline embedding for development and for running without an
 * OpenAI key. Words (lower-cased, accents folded, common English stop words left out) and the character trigrams
 * of each word are hashed (FNV-1a, signed) into `dimensions` buckets, damped (log 1+x) and L2-normalised. It is
 * lexical — texts sharing words and word parts score high — not semantic, but good enough to find the passage that
 * names what a question asks about.
 */
import { l2Normalise, type Embedder } from './embedder.ts';

const LOCAL_EMBEDDING_MODEL = 'local-hash-v1';

const WORD_WEIGHT = 1;
const TRIGRAM_WEIGHT = 0.25;

// Words that occur in almost every text and so only blur the comparison.
const STOP_WORDS = new Set(
  (
    'a about above after again all am an and any are as at be because been before being below between both but by ' +
    'can could did do does doing down during each few for from further had has have having he her here hers him his ' +
    'how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours out ' +
    'over own same she should so some such than that the their theirs them then there these they this those through ' +
    'to too under until up very was we were what when where which while who whom why will with would you your yours'
  ).split(' '),
);

/** FNV-1a over the UTF-16 code units of `text`, as an unsigned 32-bit integer. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function addFeature(vector: Float64Array, feature: string, weight: number): void {
  const hash = fnv1a(feature);
  // The bucket comes from the low bits; the sign from a mix of the high ones, so collisions cancel out on average.
  const mixed = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b) >>> 0;
  vector[hash % vector.length]! += mixed & 0x80000000 ? -weight : weight;
}

/** The local embedding of `text`: `dimensions` numbers, L2-normalised (all zero for a text with no word). */
export function hashEmbedding(text: string, dimensions: number): number[] {
  const vector = new Float64Array(dimensions);
  const words =
    text
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [];
  for (const word of words) {
    if (STOP_WORDS.has(word)) continue;
    addFeature(vector, `w:${word}`, WORD_WEIGHT);
    const padded = `<${word}>`;
    for (let i = 0; i + 3 <= padded.length; i++) addFeature(vector, `t:${padded.slice(i, i + 3)}`, TRIGRAM_WEIGHT);
  }
  for (let i = 0; i < vector.length; i++) vector[i] = Math.sign(vector[i]!) * Math.log1p(Math.abs(vector[i]!));
  return l2Normalise(vector);
}

export interface LocalEmbedderOptions {
  /** Length of the vectors (EMBEDDING_DIMENSIONS); default 256. */
  dimensions?: number;
}

export class LocalEmbedder implements Embedder {
  readonly model = LOCAL_EMBEDDING_MODEL;
  readonly dimensions: number;

  constructor(options: LocalEmbedderOptions = {}) {
    const dimensions = options.dimensions ?? 256;
    if (!Number.isInteger(dimensions) || dimensions < 1) throw new RangeError(`dimensions must be a positive integer: ${dimensions}`);
    this.dimensions = dimensions;
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<number[][]> {
    signal?.throwIfAborted();
    return texts.map((text) => hashEmbedding(text, this.dimensions));
  }
}
