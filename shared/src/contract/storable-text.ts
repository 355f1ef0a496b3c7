/**
 * Text Postgres stores exactly as it was sent. A `text` column cannot hold NUL (U+0000: the insert fails, so a
 * message acknowledged with one would be lost) and UTF-8 cannot encode a lone surrogate (the driver would store
 * U+FFFD instead: not what was acknowledged). Text a client sends is refused at the edge with `storableText()`;
 * text Tollgate did not choose (a model's reply, a document's extracted text) is made storable with `toStorableText`.
 */
import { z } from 'zod';

const NUL = '\u0000';
const REPLACEMENT = '\uFFFD';

export const UNSTORABLE_TEXT = 'must not contain NUL or a lone surrogate';

export function isStorableText(text: string): boolean {
  return !text.includes(NUL) && text.isWellFormed();
}

/** The same text with each NUL and lone surrogate replaced by U+FFFD (the text itself when it is already storable). */
export function toStorableText(text: string): string {
  return isStorableText(text) ? text : text.replaceAll(NUL, REPLACEMENT).toWellFormed();
}

/** A zod string Postgres can store as sent; chain `.min()`/`.max()` as on `z.string()`. */
export function storableText() {
  return z.string().refine(isStorableText, UNSTORABLE_TEXT);
}
