/**
 * Local token counting with the o200k_base encoding (GPT-4o family and OpenAI's embedding models' budget): the one
 * tokenizer of Tollgate, shared by reply metering (gateway/src/replies/count-tokens.ts) and document chunking
 * (billing/src/ingest/chunk-text.ts). Both only count, so this only counts.
 *
 * It is o200k_base's algorithm, the same as js-tiktoken's encoder step for step, with js-tiktoken's own rank table,
 * made cheap without changing a single count (tests/replies/count-tokens.test.ts checks every count against
 * js-tiktoken's encoder over seeded random text and the repository's documents):
 * - text is cut into pieces by o200k_base's pattern and each piece is byte-pair encoded on its own (merges never
 *   cross pieces), so a piece always costs the same: natural text repeats its pieces (words with their leading
 *   space, punctuation) and each is encoded once, then remembered;
 * - a prompt is mostly text counted before (the clone's system prompt and the session's recent messages come back
 *   with every reply): whole texts' counts are remembered too, the oldest forgotten first;
 * - the ranks are one map of byte strings: +20 MB of RSS for a process, where js-tiktoken's encoder, which also
 *   keeps every token's bytes for decoding, costs +147 MB (66 MB of heap for every major garbage collection to walk).
 */
import o200kBase from 'js-tiktoken/ranks/o200k_base';

/** Most characters of whole texts whose counts are remembered (about 8 MB of strings). */
const MAX_CACHED_CHARS = 4_000_000;
/** Most pieces whose counts are remembered (forgotten all at once beyond it). */
const MAX_CACHED_PIECES = 200_000;
/** Longest piece whose count is remembered: words repeat, a long run of symbols rarely does (and would fill memory). */
const MAX_CACHED_PIECE_CHARS = 64;

/** o200k_base's pre-tokenisation pattern: what one byte-pair-encoded piece is. */
const PIECE = new RegExp(o200kBase.pat_str, 'gu');
const UTF8 = new TextEncoder();

/** Token byte strings (one char per byte) → rank, parsed once when first needed. */
let ranks: Map<string, number> | undefined;
const pieceCounts = new Map<string, number>();
const textCounts = new Map<string, number>();
let cachedChars = 0;

function getRanks(): Map<string, number> {
  if (ranks) return ranks;
  const parsed = new Map<string, number>();
  // js-tiktoken's format: lines of "<name> <first rank> <base64 token> <base64 token> …", ranks counting up
  for (const line of o200kBase.bpe_ranks.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const first = Number.parseInt(fields[1]!, 10);
    for (let i = 2; i < fields.length; i++) parsed.set(atob(fields[i]!), first + i - 2);
  }
  ranks = parsed;
  return parsed;
}

/** The UTF-8 bytes of a piece as a byte string (ASCII is its own). */
function utf8Bytes(piece: string): string {
  for (let i = 0; i < piece.length; i++) {
    if (piece.charCodeAt(i) > 0x7f) {
      let bytes = '';
      for (const byte of UTF8.encode(piece)) bytes += String.fromCharCode(byte);
      return bytes;
    }
  }
  return piece;
}

/**
 * Tokens of one piece: byte pair merges, the pair of lowest rank first (the leftmost of equal ranks), until no
 * adjacent pair is a token — tiktoken's rule. The pairs wait in a heap and merged parts in a linked list, so a piece
 * of n bytes costs O(n log n): a run that never merges (thousands of random CJK characters or emoji in one piece)
 * cannot hold the event loop, where rescanning every pair after each merge cost O(n²) — seconds for one message.
 */
function encodePiece(bytes: string, table: Map<string, number>): number {
  const n = bytes.length;
  if (n === 1 || table.has(bytes)) return 1;
  // part starting at byte i (while alive): bytes[i, next[i]); pairRank[i]: rank of that part joined with the next
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const pairRank = new Float64Array(n);
  const heap = new MergeHeap();
  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  const rankPair = (i: number): void => {
    const j = next[i]!;
    const rank = j < n ? table.get(bytes.slice(i, next[j])) : undefined;
    pairRank[i] = rank ?? -1;
    if (rank !== undefined) heap.push(rank, i);
  };
  for (let i = 0; i + 1 < n; i++) rankPair(i);
  pairRank[n - 1] = -1;
  let parts = n;
  while (parts > 1 && heap.size > 0) {
    const key = heap.pop();
    const rank = Math.floor(key / POSITIONS);
    const i = key - rank * POSITIONS;
    // a pair that changed since it was queued (either part merged) has another rank now: a rank names one byte string
    if (pairRank[i] !== rank) continue;
    const j = next[i]!;
    const after = next[j]!;
    next[i] = after;
    if (after < n) prev[after] = i;
    pairRank[j] = -1;
    parts -= 1;
    rankPair(i);
    if (prev[i]! >= 0) rankPair(prev[i]!);
  }
  return parts;
}

/** Heap keys are rank × POSITIONS + position: the lowest rank first, the leftmost of equal ranks. */
const POSITIONS = 2 ** 32;

/** A binary min-heap of merge keys. */
class MergeHeap {
  readonly #keys: number[] = [];

  get size(): number {
    return this.#keys.length;
  }

  push(rank: number, position: number): void {
    const keys = this.#keys;
    const key = rank * POSITIONS + position;
    let at = keys.length;
    keys.push(key);
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[at] = keys[parent]!;
      at = parent;
    }
    keys[at] = key;
  }

  pop(): number {
    const keys = this.#keys;
    const top = keys[0]!;
    const last = keys.pop()!;
    if (keys.length === 0) return top;
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= keys.length) break;
      const right = left + 1;
      const child = right < keys.length && keys[right]! < keys[left]! ? right : left;
      if (keys[child]! >= last) break;
      keys[at] = keys[child]!;
      at = child;
    }
    keys[at] = last;
    return top;
  }
}

/** The tokens of one piece, encoded the first time it is seen. */
function countPiece(piece: string): number {
  let tokens = pieceCounts.get(piece);
  if (tokens === undefined) {
    tokens = encodePiece(utf8Bytes(piece), getRanks());
    if (piece.length > MAX_CACHED_PIECE_CHARS) return tokens;
    if (pieceCounts.size >= MAX_CACHED_PIECES) pieceCounts.clear();
    pieceCounts.set(piece, tokens);
  }
  return tokens;
}

/** Number of o200k_base tokens in plain text (text spelling a special token counts as ordinary text). */
export function countTokens(text: string): number {
  if (text === '') return 0;
  // (first in, first out: refreshing an entry on every hit, for least-recently-used order, costs more than it saves)
  const known = textCounts.get(text);
  if (known !== undefined) return known;
  let tokens = 0;
  PIECE.lastIndex = 0;
  for (let match = PIECE.exec(text); match !== null; match = PIECE.exec(text)) tokens += countPiece(match[0]);
  if (text.length <= MAX_CACHED_CHARS) {
    textCounts.set(text, tokens);
    cachedChars += text.length;
    while (cachedChars > MAX_CACHED_CHARS) {
      const oldest = textCounts.keys().next().value!;
      textCounts.delete(oldest);
      cachedChars -= oldest.length;
    }
  }
  return tokens;
}

/**
 * Parses the ranks now (a multi-megabyte table, synchronously: a fraction of a second on a quiet core, more on a
 * busy one). A gateway calls it before it listens: parsed on the first reply instead, it would stall every
 * connected user's requests, ticks and presence heartbeats that long.
 */
export function warmTokenizer(): void {
  getRanks();
}
