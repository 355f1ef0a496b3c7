/**
 * Local token counting with the o200k_base encoding (GPT-4o family and OpenAI's embedding models' budget):
 * the one tokenizer of Tollgate, shared by reply metering (gateway/src/replies/count-tokens.ts) and document
 * chunking (shared/src/documents/chunk-text.ts).
 */
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';

// Building the encoder parses a multi-megabyte rank table (about half a second): once, when first needed.
let encoder: Tiktoken | undefined;

function getEncoder(): Tiktoken {
  encoder ??= new Tiktoken(o200kBase);
  return encoder;
}

/** Number of tokens in plain text. */
export function countTokens(text: string): number {
  if (text === '') return 0;
  // Text that spells a special token such as `<|endoftext|>` is user data, counted as ordinary text
  // (the encoder's default is to throw on it).
  return getEncoder().encode(text, [], []).length;
}
