/**
 * `chunkText(sections, options)`: splits extracted text into overlapping chunks of at most `chunkTokens` tokens
 * (o200k_base, the tokenizer of the replies), never across a section (a PDF page). Chunks are made of whole words;
 * a chunk prefers to end at a paragraph, then a line, then a sentence end in its second half; the next one starts
 * with the last words of the one before, up to `overlapTokens`. A "word" longer than a whole chunk (a URL, base64)
 * is cut between characters. Each chunk records where it sits in its section's text: `text.slice(startOffset,
 * endOffset) === content`.
 */
import { countTokens } from '#shared/tokens/count-tokens.ts';
import type { TextSection } from './extract-text.ts';

export interface ChunkOptions {
  /** Most tokens in one chunk (CHUNK_TOKENS); at least 1. */
  chunkTokens: number;
  /** Tokens each chunk repeats from the end of the one before (CHUNK_OVERLAP_TOKENS); below chunkTokens. */
  overlapTokens: number;
}

/** What `document_chunks.doc_metadata` holds. */
export interface ChunkMetadata {
  /** 1-based PDF page the chunk is from. */
  page?: number;
  /** UTF-16 offsets of the chunk in its section's (page's) extracted text. */
  startOffset: number;
  endOffset: number;
  /** Tokens in `content`. */
  tokens: number;
}

export interface TextChunk {
  content: string;
  metadata: ChunkMetadata;
}

interface Piece {
  /** Where the piece's leading whitespace starts, where its word starts, and where it ends. */
  start: number;
  wordStart: number;
  end: number;
  tokens: number;
}

/** The chunks of `sections`, all at once (see `iterateChunks` to produce them a few at a time). */
export function chunkText(sections: readonly TextSection[], options: ChunkOptions): TextChunk[] {
  return [...iterateChunks(sections, options)];
}

/**
 * The chunks of `sections`, one at a time: a caller chunking megabytes can give the event loop a turn between
 * them (tokenizing runs at about 1 MB of text per second).
 */
export function* iterateChunks(sections: readonly TextSection[], options: ChunkOptions): Generator<TextChunk> {
  const { chunkTokens, overlapTokens } = options;
  if (!Number.isInteger(chunkTokens) || chunkTokens < 1) throw new RangeError(`chunkTokens must be a positive integer: ${chunkTokens}`);
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= chunkTokens) {
    throw new RangeError(`overlapTokens must be an integer from 0 to chunkTokens - 1: ${overlapTokens}`);
  }
  for (const section of sections) {
    for (const chunk of chunkSection(section.text, chunkTokens, overlapTokens)) {
      yield section.page === undefined ? chunk : { content: chunk.content, metadata: { page: section.page, ...chunk.metadata } };
    }
  }
}

function* chunkSection(text: string, maxTokens: number, overlapTokens: number): Generator<TextChunk> {
  const pieces = new PieceReader(text, maxTokens);
  let first = 0;
  while (pieces.has(first)) {
    let end = first;
    let tokens = 0;
    while (pieces.has(end) && tokens + pieces.at(end).tokens <= maxTokens) tokens += pieces.at(end++).tokens;
    const last = !pieces.has(end);
    // Pieces' counts add up to the text's count except where the tokenizer joins across a piece boundary (".\n"):
    // the exact count decides, dropping words from the end while it is over.
    if (!last) end = preferredEnd(text, pieces, first, end, maxTokens);
    let content = slice(text, pieces, first, end);
    let exact = countTokens(content);
    while (exact > maxTokens && end - first > 1) {
      end -= 1;
      content = slice(text, pieces, first, end);
      exact = countTokens(content);
    }
    yield { content, metadata: { startOffset: pieces.at(first).wordStart, endOffset: pieces.at(end - 1).end, tokens: exact } };
    if (!pieces.has(end)) return;
    // The next chunk starts with the last words of this one, as many as fit in overlapTokens, and always moves on.
    let next = end;
    let overlap = 0;
    while (next - 1 > first && overlap + pieces.at(next - 1).tokens <= overlapTokens) overlap += pieces.at(--next).tokens;
    first = next;
    pieces.release(first);
  }
}

function slice(text: string, pieces: PieceReader, first: number, end: number): string {
  return text.slice(pieces.at(first).wordStart, pieces.at(end - 1).end);
}

/**
 * The end (exclusive piece index) of a chunk that could run to `end`: the last paragraph end, else line end, else
 * sentence end that keeps the chunk at least half full; `end` when there is none.
 */
function preferredEnd(text: string, pieces: PieceReader, first: number, end: number, maxTokens: number): number {
  let tokens = 0;
  let halfAt = end;
  for (let k = first; k < end; k++) {
    tokens += pieces.at(k).tokens;
    if (tokens >= maxTokens / 2) {
      halfAt = k + 1;
      break;
    }
  }
  const boundary = (k: number) => {
    // Piece k - 1 ends the chunk; the whitespace before piece k tells what kind of break it is.
    const gap = text.slice(pieces.at(k).start, pieces.at(k).wordStart);
    if (/\n[^\S\n]*\n/.test(gap)) return 3;
    if (gap.includes('\n')) return 2;
    const before = text.slice(pieces.at(k - 1).wordStart, pieces.at(k - 1).end);
    return /[.!?…]["'”’)\]]*$/.test(before) ? 1 : 0;
  };
  for (const wanted of [3, 2, 1]) {
    for (let k = end; k >= halfAt && k > first; k--) if (boundary(k) >= wanted) return k;
  }
  return end;
}

/** Words longer than this (UTF-16 units) are cut without being counted whole: BPE time grows with a word's square. */
const LONG_WORD = 200;

/**
 * The words of a text with the whitespace before each, and their token counts, read as far as asked; words that
 * cannot fit in a chunk are cut into slices of at most `maxTokens` UTF-8 bytes (a token is at least one byte).
 * Pieces before the current chunk are let go, so memory stays small for large texts.
 */
class PieceReader {
  readonly #text: string;
  readonly #maxTokens: number;
  readonly #words = /\s*(\S+)/g;
  #pieces: Piece[] = [];
  /** Absolute index of #pieces[0]. */
  #base = 0;
  #done = false;

  constructor(text: string, maxTokens: number) {
    this.#text = text;
    this.#maxTokens = maxTokens;
  }

  has(index: number): boolean {
    while (index - this.#base >= this.#pieces.length && !this.#done) this.#readWord();
    return index - this.#base < this.#pieces.length;
  }

  at(index: number): Piece {
    const piece = this.#pieces[index - this.#base];
    if (!piece) throw new RangeError(`piece ${index} is not read or already released`);
    return piece;
  }

  /** Pieces before `index` will not be asked for again. */
  release(index: number): void {
    const drop = index - this.#base;
    if (drop < 4096) return;
    this.#pieces = this.#pieces.slice(drop);
    this.#base = index;
  }

  #readWord(): void {
    const match = this.#words.exec(this.#text);
    if (!match) {
      this.#done = true;
      return;
    }
    const start = match.index;
    const end = start + match[0].length;
    const wordStart = end - match[1]!.length;
    if (end - wordStart <= LONG_WORD) {
      const tokens = countPiece(this.#text.slice(start, end));
      if (tokens <= this.#maxTokens) {
        this.#pieces.push({ start, wordStart, end, tokens });
        return;
      }
    }
    let leading = start;
    let from = wordStart;
    while (from < end) {
      const to = byteBudgetEnd(this.#text, from, end, this.#maxTokens);
      this.#pieces.push({ start: leading, wordStart: from, end: to, tokens: countTokens(this.#text.slice(from, to)) });
      leading = to;
      from = to;
    }
  }
}

// Words repeat (Zipf): counting each distinct short piece once more than halves the tokenizing time of a text.
const pieceTokens = new Map<string, number>();
const CACHED_PIECE = 24;
const CACHE_SIZE = 50_000;

function countPiece(piece: string): number {
  if (piece.length > CACHED_PIECE) return countTokens(piece);
  let tokens = pieceTokens.get(piece);
  if (tokens === undefined) {
    if (pieceTokens.size >= CACHE_SIZE) pieceTokens.clear();
    tokens = countTokens(piece);
    pieceTokens.set(piece, tokens);
  }
  return tokens;
}

/** The furthest end after `from` whose slice is at most `budget` UTF-8 bytes, whole code points, at least one. */
function byteBudgetEnd(text: string, from: number, end: number, budget: number): number {
  let at = from;
  let bytes = 0;
  while (at < end) {
    const codePoint = text.codePointAt(at)!;
    const size = codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
    if (bytes + size > budget && at > from) break;
    bytes += size;
    at += codePoint > 0xffff ? 2 : 1;
  }
  return at;
}
