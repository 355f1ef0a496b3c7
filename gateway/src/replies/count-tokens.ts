/**
 * Token counts of chat requests, for when the model server reports no usage and for the offline generator. Counts
 * are the billing basis, so they follow OpenAI's own accounting of chat messages; for other model families they are
 * a close estimate. The tokenizer itself is shared (document chunking counts with it too).
 */
import { countTokens, warmTokenizer } from '#shared/tokens/count-tokens.ts';

export { countTokens, warmTokenizer };

/** Tokens a chat message costs beyond its role and content. */
const TOKENS_PER_MESSAGE = 3;
/** Every reply is primed with `<|start|>assistant<|message|>`. */
const TOKENS_PER_REPLY = 3;

/** Prompt tokens of a chat request: each message's role and content plus the per-message and reply overhead. */
export function countPromptTokens(messages: ReadonlyArray<{ role: string; content: string }>): number {
  let total = TOKENS_PER_REPLY;
  for (const message of messages) {
    total += TOKENS_PER_MESSAGE + countTokens(message.role) + countTokens(message.content);
  }
  return total;
}
