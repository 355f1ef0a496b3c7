/**
 * Local token counting with the o200k_base encoding (GPT-4o family and OpenAI's embedding models' budget):
 * the one tokenizer of Tollgate, shared by reply metering (gateway/src/replies/count-tokens.ts) and document
 * chunking (shared/src/documents/chunk-text.ts).
 *
 * Counting is on every reply's path and a prompt is mostly text counted before (the clone's system prompt and the
 * session's recent messages come back with every reply), so whole texts' counts are remembered, the oldest forgotten
 * first: a reply encodes only what is new in its prompt.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';

/** Most characters of whole texts whose counts are remembered (about 8 MB of strings). */
const MAX_CACHED_CHARS = 4_000_000;

// Building the encoder parses a multi-megabyte rank table (about half a second): once, when first needed.
let encoder: Tiktoken | undefined;
const textCounts = new Map<string, number>();
let cachedChars = 0;

function getEncoder(): Tiktoken {
  encoder ??= new Tiktoken(o200kBase);
  return encoder;
}

/**
 * Builds the encoder now (synchronously: a fraction of a second on a quiet core, more on a busy one). A gateway calls
 * it before it listens: built on the first reply instead, it would stall every connected user's requests, ticks and
 * presence heartbeats that long.
 */
export function warmTokenizer(): void {
  getEncoder();
}

/** Number of tokens in plain text. */
export function countTokens(text: string): number {
  if (text === '') return 0;
  const known = textCounts.get(text);
  if (known !== undefined) return known;
  // Text that spells a special token such as `<|endoftext|>` is user data, counted as ordinary text
  // (the encoder's default is to throw on it).
  const tokens = getEncoder().encode(text, [], []).length;
  if (text.length <= MAX_CACHED_CHARS) {
    // first in, first out: refreshing an entry on every hit, for least-recently-used order, costs more than it saves
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
