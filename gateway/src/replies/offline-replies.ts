/**
 * `OfflineReplyGenerator`: a deterministic stand-in for the model when no OpenAI key is configured, so a
 * session works end to end (streaming, token metering) with no network.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { countPromptTokens, countTokens } from './count-tokens.ts';
import type { CloneProfile, Reply, ReplyGenerator, ReplyRequest } from './reply-generator.ts';
import { buildChatMessages } from './system-prompt.ts';

/** Longest part of the user's message quoted back. */
const QUOTE_CHARS = 120;
/** Longest part of a passage quoted in an offline answer. */
const PASSAGE_CHARS = 400;
/** Words streamed between two yields to the event loop. */
const WORDS_PER_TURN = 12;

export class OfflineReplyGenerator implements ReplyGenerator {
  async generate(request: ReplyRequest, onDelta: (delta: string) => void): Promise<Reply> {
    request.signal?.throwIfAborted();
    const content = composeReply(request);
    // Word by word, like a model's stream: each word with the whitespace after it, so the deltas join to
    // exactly the content.
    const words = content.match(/\S+\s*/g) ?? [];
    for (let i = 0; i < words.length; i++) {
      // Yield to the event loop every few words (a turn per word cost more than the word) so other sessions' work
      // interleaves, as with a real stream.
      if (i % WORDS_PER_TURN === 0) await nextTurn();
      request.signal?.throwIfAborted();
      onDelta(words[i]!);
    }
    return { content, tokensUsed: countPromptTokens(buildChatMessages(request)) + countTokens(content) };
  }
}

function composeReply(request: ReplyRequest): string {
  const { clone } = request;
  const name = oneLine(clone.name) || 'Expert';
  const lastUser = request.history.findLast((turn) => turn.senderType === 'user');
  const question = quote(oneLine(lastUser?.content ?? ''));
  const opening = question ? `I hear you asking about "${question}".` : 'I hear you.';
  const best = request.passages?.[0];
  if (best) {
    // answered from the best-matching passage of the clone's own documents, cited as the model would
    return [
      `${name}: ${opening}`,
      `From "${oneLine(best.title) || 'my notes'}" [1]: ${quote(oneLine(best.content), PASSAGE_CHARS)}`,
      'I am answering in offline mode, from my documents without an AI model.',
    ].join(' ');
  }
  return [
    `${name}: ${opening}`,
    `As an expert in ${expertise(clone)}, I would start by pinning down what matters most to you here, then work through it one step at a time.`,
    'I am answering in offline mode, without an AI model, so take this as a placeholder rather than considered advice.',
  ].join(' ');
}

function expertise(clone: CloneProfile): string {
  const areas = clone.expertiseAreas.map(oneLine).filter(Boolean);
  if (areas.length === 0) return 'my field';
  if (areas.length === 1) return areas[0]!;
  return `${areas.slice(0, -1).join(', ')} and ${areas.at(-1)!}`;
}

function quote(text: string, limit = QUOTE_CHARS): string {
  const chars = Array.from(text); // by code point, so an emoji is never cut in half
  if (chars.length <= limit) return text;
  return `${chars.slice(0, limit).join('').trimEnd()}…`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
