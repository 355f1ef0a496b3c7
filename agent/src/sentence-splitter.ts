/**
 * `SentenceSplitter`: cuts a reply streamed in arbitrary pieces into sentences, so each can be spoken as soon as
 * it is complete. Pure: no I/O, no timers.
 */

export interface SentenceSplitterOptions {
  /**
   * A run of text without a sentence end is cut once it is this long (at its last comma, semicolon, colon or
   * space), so a reply without punctuation is still spoken piece by piece; default 300 characters.
   */
  maxChars?: number;
}

/** `.`, `!`, `?` or `…` (repeated or not), closing quotes/brackets, then whitespace; or a line break. */
const SENTENCE_END = /[.!?…]+["'”’)\]]*\s+|\n+/g;

export class SentenceSplitter {
  readonly #maxChars: number;
  #buffer = '';

  constructor(options: SentenceSplitterOptions = {}) {
    this.#maxChars = Math.max(20, options.maxChars ?? 300);
  }

  /**
   * Adds a piece of the reply; returns the sentences it completed, trimmed, in order. A sentence end at the very
   * end of the text so far waits for what follows (`3.` may be `3.5`).
   */
  push(delta: string): string[] {
    this.#buffer += delta;
    const sentences: string[] = [];
    let start = 0;
    for (const match of this.#buffer.matchAll(SENTENCE_END)) {
      const end = match.index + match[0].length;
      this.#take(this.#buffer.slice(start, end), sentences);
      start = end;
    }
    this.#buffer = this.#buffer.slice(start);
    while (this.#buffer.length > this.#maxChars) {
      const cut = cutPoint(this.#buffer, this.#maxChars);
      this.#take(this.#buffer.slice(0, cut), sentences);
      this.#buffer = this.#buffer.slice(cut);
    }
    return sentences;
  }

  /** The rest of the reply, trimmed, once it has ended (undefined when nothing but whitespace is left). */
  flush(): string | undefined {
    const rest = this.#buffer.trim();
    this.#buffer = '';
    return rest || undefined;
  }

  #take(text: string, into: string[]): void {
    const sentence = text.trim();
    if (sentence) into.push(sentence);
  }
}

/** Where to cut an over-long run: after its last `,;:` in the second half, else its last space, else hard. */
function cutPoint(text: string, maxChars: number): number {
  const window = text.slice(0, maxChars);
  const punctuation = Math.max(window.lastIndexOf(','), window.lastIndexOf(';'), window.lastIndexOf(':'));
  if (punctuation >= maxChars / 2) return punctuation + 1;
  const space = window.lastIndexOf(' ');
  return space > 0 ? space + 1 : maxChars;
}
