/**
 * The worker thread `extractTextIsolated` starts: extracts the text of the document in `workerData` and posts the
 * sections, or the error, back once. Its limits are enforced from outside (the parent terminates it).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DocumentError } from './document-error.ts';
import type { ExtractionAnswer, ExtractionRequest } from './extract-text-isolated.ts';
import { extractText } from './extract-text.ts';

if (!parentPort) throw new Error('extract-text-worker.ts runs as a worker thread (see extractTextIsolated)');
const port = parentPort;
const { bytes, kind, maxChars } = workerData as ExtractionRequest;

let answer: ExtractionAnswer;
try {
  answer = { ok: true, sections: await extractText(bytes, kind, { maxChars }) };
} catch (error) {
  answer =
    error instanceof DocumentError
      ? { ok: false, code: error.code, message: error.message }
      : { ok: false, message: error instanceof Error ? error.message : String(error) };
}
port.postMessage(answer);
