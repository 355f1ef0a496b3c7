/**
 * What writes a clone's reply in a chat session: `ReplyGenerator`, and `createReplyGenerator`, which picks
 * the OpenAI-backed one when a key is configured and the offline one otherwise.
 */
import type { Config } from '#shared/config/config.ts';
import { OfflineReplyGenerator } from './offline-replies.ts';
import { OpenAiReplyGenerator } from './openai-replies.ts';

/** The parts of a clone that shape how it answers (columns of `clones`). */
export interface CloneProfile {
  name: string;
  bio: string | null;
  description: string | null;
  expertiseAreas: string[];
  /** The `personality_traits` jsonb: usually an object of trait → value or list of values. */
  personalityTraits: unknown;
}

/** One message of the session as the model sees it. */
export interface ChatTurn {
  senderType: 'user' | 'ai';
  content: string;
}

/** A passage of the clone's knowledge base retrieved for the question, best first. */
export interface Passage {
  documentId: string;
  title: string;
  chunkIndex: number;
  content: string;
}

export interface ReplyRequest {
  clone: CloneProfile;
  /** Passages of the clone's documents that match the question; the reply should rest on them. Default none. */
  passages?: Passage[];
  /** Recent turns, oldest first, the new user message last. */
  history: ChatTurn[];
  /** Aborting it stops the reply: `generate` rejects with `signal.reason` and delivers no further delta. */
  signal?: AbortSignal;
}

export interface Reply {
  /** The whole reply: exactly the deltas joined. */
  content: string;
  /** Prompt plus completion tokens, as the model server reported them or as counted locally. */
  tokensUsed: number;
}

export interface ReplyGenerator {
  /**
   * Writes the reply, handing each piece of text to `onDelta` as it arrives, and resolves with the whole.
   * Rejects on any failure (for the OpenAI one, the SDK's `APIError` family), and with `request.signal.reason`
   * when the signal aborts.
   */
  generate(request: ReplyRequest, onDelta: (delta: string) => void): Promise<Reply>;
}

/** OpenAI (or the OpenAI-compatible `OPENAI_BASE_URL`) when `OPENAI_API_KEY` is set, else the offline responder. */
export function createReplyGenerator(
  config: Pick<Config, 'OPENAI_API_KEY' | 'OPENAI_BASE_URL' | 'OPENAI_MODEL'>,
): ReplyGenerator {
  if (config.OPENAI_API_KEY) {
    return new OpenAiReplyGenerator({
      apiKey: config.OPENAI_API_KEY,
      baseURL: config.OPENAI_BASE_URL,
      model: config.OPENAI_MODEL,
    });
  }
  return new OfflineReplyGenerator();
}
