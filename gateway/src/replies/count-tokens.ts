/**
 * Local token counting with the o200k_base encoding (GPT-4o family), for when the model server reports
 * no usage and for the offline generator. Counts are the billing basis, so they follow OpenAI's own
 * accounting of chat messages; for other model families they are a close estimate.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';

/** Tokens a chat message costs beyond its role and content. */
const TOKENS_PER_MESSAGE = 3;
/** Every reply is primed with `<|start|>assistant<|message|>`. */
const TOKENS_PER_REPLY = 3;

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

/** Prompt tokens of a chat request: each message's role and content plus the per-message and reply overhead. */
export function countPromptTokens(messages: ReadonlyArray<{ role: string; content: string }>): number {
  let total = TOKENS_PER_REPLY;
  for (const message of messages) {
    total += TOKENS_PER_MESSAGE + countTokens(message.role) + countTokens(message.content);
  }
  return total;
}
