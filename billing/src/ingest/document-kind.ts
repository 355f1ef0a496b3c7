/**
 * `documentKind(fileType, fileName)`: which extractor reads a document, from its `file_type` (a MIME type such as
 * `application/pdf`, or an extension such as `pdf` / `.pdf`), else from the extension of its `file_name`.
 */
import path from 'node:path';
import { DocumentError } from './document-error.ts';

export type DocumentKind = 'text' | 'markdown' | 'html' | 'pdf';

const BY_TYPE: Readonly<Record<string, DocumentKind>> = {
  txt: 'text',
  text: 'text',
  'text/plain': 'text',
  md: 'markdown',
  markdown: 'markdown',
  'text/markdown': 'markdown',
  'text/x-markdown': 'markdown',
  html: 'html',
  htm: 'html',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  pdf: 'pdf',
  'application/pdf': 'pdf',
};

function lookup(value: string): DocumentKind | undefined {
  // `text/plain; charset=utf-8` → `text/plain`; `.PDF` → `pdf`.
  const key = value.split(';')[0]!.trim().toLowerCase().replace(/^\./, '');
  return Object.hasOwn(BY_TYPE, key) ? BY_TYPE[key] : undefined;
}

export function documentKind(fileType: string, fileName: string): DocumentKind {
  const kind = lookup(fileType) ?? lookup(path.extname(fileName));
  if (kind) return kind;
  throw new DocumentError(
    'unsupported_type',
    `unsupported document type ${JSON.stringify(fileType)} (${JSON.stringify(fileName)}): use .txt, .md, .html or .pdf`,
  );
}
