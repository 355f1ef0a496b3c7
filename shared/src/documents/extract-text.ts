/**
 * `extractText(bytes, kind)`: the plain text of a document, as sections — one per page for a PDF (numbered from 1),
 * one for the whole file otherwise. Text files are read as UTF-8 (Windows-1252 when they are not valid UTF-8);
 * markdown is kept as written; HTML goes through html-to-text (scripts, styles and images left out, links as their
 * text); PDFs through unpdf (PDF.js, pure JavaScript). Line ends become `\n`.
 */
import { convert } from 'html-to-text';
import { extractText as extractPdfText, getDocumentProxy } from 'unpdf';
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

export async function extractText(bytes: Uint8Array, kind: DocumentKind): Promise<TextSection[]> {
  switch (kind) {
    case 'text':
    case 'markdown':
      return [{ text: normaliseLines(decodeText(bytes)) }];
    case 'html':
      return [{ text: normaliseLines(convert(decodeText(bytes), HTML_OPTIONS)) }];
    case 'pdf':
      return extractPdf(bytes);
  }
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

async function extractPdf(bytes: Uint8Array): Promise<TextSection[]> {
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // PDF.js may take over the buffer it is given: hand it a copy. verbosity 0: errors only, no console warnings.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
  } catch (error) {
    const name = (error as { name?: unknown } | null)?.name;
    const reason = name === 'PasswordException' ? 'the PDF is password-protected' : `not a readable PDF (${(error as Error).message})`;
    throw new DocumentError('invalid_pdf', reason, { cause: error });
  }
  try {
    const { text } = await extractPdfText(pdf, { mergePages: false });
    return text.map((pageText, index) => ({ text: normaliseLines(pageText), page: index + 1 }));
  } catch (error) {
    throw new DocumentError('invalid_pdf', `the PDF's text could not be read (${(error as Error).message})`, { cause: error });
  } finally {
    await pdf.loadingTask.destroy().catch(() => undefined);
  }
}
