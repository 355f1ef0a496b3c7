/**
 * `CloneConversation`: the port through which the voice pipeline talks to the clone. The agent implements it
 * over the gateway's Socket.IO (the gateway stores the message, meters and bills the reply).
 */

export interface CloneConversation {
  /** Sends a final utterance as the user's message and yields the clone's reply text as it streams. Aborting
   *  `signal` stops the reply (the gateway bills what was produced). Throws on refusal (e.g. session paused). */
  reply(utterance: { clientMessageId: string; content: string }, signal: AbortSignal): AsyncIterable<string>;
  /** Someone is speaking in the room (the user or the clone): the session is not idle. Fire and forget. */
  voiceActivity(): void;
}
