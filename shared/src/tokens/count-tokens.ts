/**
 * Local token counting with the o200k_base encoding (GPT-4o family and OpenAI's embedding models' budget): the one
 * tokenizer of Tollgate, shared by reply metering (gateway/src/replies/count-tokens.ts) and document chunking
 * (shared/src/documents/chunk-text.ts). Both only count, so this only counts.
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

/** Tokens of one piece: byte pair merges, the pair of lowest rank first, until no adjacent pair is a token. */
function encodePiece(bytes: string, table: Map<string, number>): number {
  if (bytes.length === 1 || table.has(bytes)) return 1;
  // part i is bytes[bounds[i], bounds[i + 1])
  const bounds = Array.from({ length: bytes.length + 1 }, (_, i) => i);
  while (bounds.length > 2) {
    let lowest = Infinity;
    let at = -1;
    for (let i = 0; i + 2 < bounds.length; i++) {
      const rank = table.get(bytes.slice(bounds[i], bounds[i + 2]));
      if (rank !== undefined && rank < lowest) {
        lowest = rank;
        at = i;
      }
    }
    if (at < 0) break;
    bounds.splice(at + 1, 1);
  }
  let tokens = 0;
  for (let i = 0; i + 1 < bounds.length; i++) if (table.has(bytes.slice(bounds[i], bounds[i + 1]))) tokens += 1;
  return tokens;
}

/** The tokens of one piece, encoded the first time it is seen. */
function countPiece(piece: string): number {
  let tokens = pieceCounts.get(piece);
  if (tokens === undefined) {
    tokens = encodePiece(utf8Bytes(piece), getRanks());
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
