/**
 * `extractText(bytes, kind, options)`: the plain text of a document, as sections — one per page for a PDF (numbered
 * from 1), one for the whole file otherwise. Text files are read as UTF-8 (Windows-1252 when they are not valid UTF-8);
 * markdown is kept as written; HTML goes through html-to-text (scripts, styles and images left out, links as their
 * text); PDFs through unpdf (PDF.js, pure JavaScript), a page at a time. Line ends become `\n`; NUL and lone
 * surrogates become U+FFFD (`toStorableText`), so the text can be stored in Postgres as it is.
 *
 * It runs in the calling thread with no limit on time or memory: a hostile file can take both. The ingestion runs it
 * in a child process with a budget (`extractTextIsolated`).
 */
import type { PDFDocumentProxy } from 'unpdf/pdfjs';
import { toStorableText } from '#shared/contract/storable-text.ts';
import { DocumentError } from './document-error.ts';
import type { DocumentKind } from './document-kind.ts';

export interface TextSection {
  text: string;
  /** 1-based page of a PDF; absent for other documents. */
  page?: number;
}

const HTML_OPTIONS = {
  wordwrap: false as const,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'img', format: 'skip' },
    { selector: 'noscript', format: 'skip' },
    { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
  ],
};

export interface ExtractOptions {
  /**
   * Most characters of text in all sections together (INGEST_MAX_CHARS); more is a `too_much_text` DocumentError,
   * thrown as soon as it is known (a PDF's extraction stops there). Default: no limit.
   */
  maxChars?: number;
}

export async function extractText(bytes: Uint8Array, kind: DocumentKind, options: ExtractOptions = {}): Promise<TextSection[]> {
  const maxChars = options.maxChars ?? Infinity;
  switch (kind) {
    case 'text':
    case 'markdown':
      return [{ text: storable(decodeText(bytes), maxChars) }];
    case 'html': {
      // Loaded when needed: each extraction worker starts afresh and loads only its kind's parser.
      const { convert } = await import('html-to-text');
      return [{ text: storable(convert(decodeText(bytes), HTML_OPTIONS), maxChars) }];
    }
    case 'pdf':
      return extractPdf(bytes, maxChars);
  }
}

function storable(text: string, maxChars: number): string {
  if (text.length > maxChars) throw tooMuchText(maxChars);
  return toStorableText(normaliseLines(text));
}

function tooMuchText(maxChars: number): DocumentError {
  return new DocumentError('too_much_text', `the document has more than the ${maxChars} characters of text allowed (INGEST_MAX_CHARS)`);
}

/** UTF-8 (a BOM dropped), or Windows-1252 for older text files that are not valid UTF-8; NUL bytes mean binary. */
function decodeText(bytes: Uint8Array): string {
  if (bytes.includes(0)) throw new DocumentError('file_unreadable', 'the file holds binary data, not text');
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

function normaliseLines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** What a PDF.js text content stream yields: text items (`str`) and marked-content markers (no `str`). */
interface TextContentChunk {
  items: ReadonlyArray<{ str?: string; hasEOL?: boolean }>;
}

async function extractPdf(bytes: Uint8Array, maxChars: number): Promise<TextSection[]> {
  const { getDocumentProxy } = await import('unpdf');
  let pdf: PDFDocumentProxy;
  try {
    // PDF.js may take over the buffer it is given: hand it a copy. verbosity 0: errors only, no console warnings.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
  } catch (error) {
    const name = (error as { name?: unknown } | null)?.name;
    const reason = name === 'PasswordException' ? 'the PDF is password-protected' : `not a readable PDF (${(error as Error).message})`;
    throw new DocumentError('invalid_pdf', reason, { cause: error });
  }
  let abandoned = false;
  try {
    const sections: TextSection[] = [];
    let left = maxChars;
    // One page at a time, its text read as PDF.js produces it, and given up as soon as it passes the budget.
    for (let page = 1; page <= pdf.numPages; page++) {
      const text = await pageText(pdf, page, left);
      if (text === undefined) {
        abandoned = true;
        throw tooMuchText(maxChars);
      }
      left -= text.length;
      sections.push({ text: toStorableText(normaliseLines(text)), page });
    }
    return sections;
  } catch (error) {
    if (error instanceof DocumentError) throw error;
    throw new DocumentError('invalid_pdf', `the PDF's text could not be read (${(error as Error).message})`, { cause: error });
  } finally {
    // A page's text left part-way cannot be stopped cleanly: cancelling its stream races PDF.js's own messages (an
    // uncaught "Controller is already closed"), and destroying the document can wait for the page forever. It is
    // left to the end of the thread (extractTextIsolated terminates it).
    const destroyed = pdf.loadingTask.destroy().catch(() => undefined);
    if (!abandoned) await destroyed;
  }
}

/** The page's text as unpdf joins it (items, a `\n` after each that ends a line); undefined past `maxChars`. */
async function pageText(pdf: PDFDocumentProxy, pageNumber: number, maxChars: number): Promise<string | undefined> {
  const page = await pdf.getPage(pageNumber);
  const reader = (page.streamTextContent() as ReadableStream<TextContentChunk>).getReader();
  const parts: string[] = [];
  let length = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const item of value.items) {
      if (typeof item.str !== 'string') continue;
      const part = item.hasEOL ? `${item.str}\n` : item.str;
      length += part.length;
      if (length > maxChars) return undefined;
      parts.push(part);
    }
  }
  page.cleanup();
  return parts.join('');
}
