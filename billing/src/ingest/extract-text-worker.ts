/**
 * The child process `extractTextIsolated` starts: says it is ready, extracts the text of the document it is sent and
 * sends the sections, or the error, back once, then exits. Its limits are enforced from outside (the parent kills it).
 */
import { DocumentError } from './document-error.ts';
import type { ExtractionMessage, ExtractionRequest } from './extract-text-isolated.ts';
import { extractText } from './extract-text.ts';

if (!process.send) throw new Error('extract-text-worker.ts runs as a child process with an IPC channel (see extractTextIsolated)');
const send = (message: ExtractionMessage) => new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()));

process.once('message', async (request: ExtractionRequest) => {
  let answer: ExtractionMessage;
  try {
    answer = { ok: true, sections: await extractText(request.bytes, request.kind, { maxChars: request.maxChars }) };
  } catch (error) {
    answer =
      error instanceof DocumentError
        ? { ok: false, code: error.code, message: error.message }
        : { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  await send(answer);
  process.exit(0);
});
await send({ ready: true });
