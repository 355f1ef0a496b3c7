/**
 * The knowledge-base upload API, for a clone's own creator: `POST /api/clones/:cloneId/documents` (multipart,
 * exactly one `file` part and an optional `title` field, nothing else) stores the file under UPLOAD_DIR, inserts a
 * `pending` document and queues its ingestion; `GET /api/clones/:cloneId/documents` lists the clone's documents with
 * their processing status and, for failed ones, why. Both check the bearer token before anything else (401).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { Database } from '#shared/db/schema.ts';
import { isStorableText, UNSTORABLE_TEXT } from '#shared/contract/storable-text.ts';
import { DocumentError } from '#billing/ingest/document-error.ts';
import { documentKind, type DocumentKind } from '#billing/ingest/document-kind.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { bearerToken } from './admin-auth.ts';

export interface DocumentsApiOptions {
  db: Kysely<Database>;
  /** Checks the creator's bearer token (tokenVerifierFromConfig). */
  verifier: TokenVerifier;
  /** UPLOAD_DIR: where uploaded files are kept. */
  uploadDir: string;
  /** MAX_UPLOAD_BYTES: larger files are refused with 413. */
  maxUploadBytes: number;
  /** Queues a document's ingestion (the pending-row poller would find it too, a few seconds later). */
  enqueue?: (documentId: string) => Promise<void>;
}

const params = z.object({ cloneId: z.string().uuid() });

/** A file name safe to keep on disk: letters, digits, dot, dash, underscore. */
const safeName = (name: string) => path.basename(name).replace(/[^A-Za-z0-9._-]+/g, '_').slice(-100) || 'file';

/** The name a file sent without a usable one (empty, `.`, `..`: busboy keeps only a path's last part) is stored under. */
const DEFAULT_NAME: Readonly<Record<DocumentKind, string>> = {
  text: 'document.txt',
  markdown: 'document.md',
  html: 'document.html',
  pdf: 'document.pdf',
};

/** Column widths of `documents`. */
const MAX_NAME_CHARS = 255;
const MAX_TYPE_CHARS = 100;

/** The one upload a request carries: its `file` part read whole, and its `title` field if it had one. */
interface Upload {
  fileName: string;
  fileType: string;
  bytes: Buffer;
  title: string | undefined;
}

export const documentsApi: FastifyPluginAsync<DocumentsApiOptions> = async (app, options) => {
  const { db, verifier } = options;
  // One file and one field are documented; room for one part more of each kind, so the first part too many reaches
  // readUpload (and is refused 400 naming it) before busboy's limits (413) would stop the body.
  await app.register(multipart, { limits: { files: 2, fields: 2, parts: 3, fileSize: options.maxUploadBytes, fieldSize: 1000 } });

  /** The requester must be the clone's creator: who they are first (401), then which clone (400, 404, 403). */
  const creatorsClone = async (request: FastifyRequest): Promise<string> => {
    const userId = await verifier.verify(bearerToken(request));
    const parsed = params.safeParse(request.params);
    if (!parsed.success) throw new AppError('invalid_payload', 'the clone id must be a uuid');
    const { cloneId } = parsed.data;
    const clone = await db.selectFrom('clones').select('creator_id').where('id', '=', cloneId).executeTakeFirst();
    if (!clone) throw new AppError('not_found', 'no such clone');
    if (clone.creator_id !== userId) throw new AppError('forbidden', "only the clone's creator manages its documents");
    return cloneId;
  };

  app.get('/clones/:cloneId/documents', async (request) => {
    const cloneId = await creatorsClone(request);
    const rows = await db
      .selectFrom('documents')
      .select(['id', 'title', 'file_name', 'file_type', 'file_size_bytes', 'processing_status', 'chunk_count', 'failure_reason', 'created_at'])
      .where('clone_id', '=', cloneId)
      .orderBy('created_at', 'desc')
      .execute();
    return {
      documents: rows.map((r) => ({
        id: r.id,
        title: r.title,
        fileName: r.file_name,
        fileType: r.file_type,
        sizeBytes: r.file_size_bytes,
        processingStatus: r.processing_status,
        chunkCount: r.chunk_count,
        failureReason: r.failure_reason,
        createdAt: new Date(r.created_at).toISOString(),
      })),
    };
  });

  app.post('/clones/:cloneId/documents', async (request, reply) => {
    const cloneId = await creatorsClone(request);
    if (!request.isMultipart()) throw new AppError('invalid_payload', 'send multipart/form-data with a `file` part');
    // the whole body is read and judged before anything is written
    const upload = await readUpload(request);
    const title = clip(upload.title?.trim() || upload.fileName, MAX_NAME_CHARS);
    const id = randomUUID();
    const relative = path.join(cloneId, `${id}-${safeName(upload.fileName)}`);
    const absolute = path.resolve(options.uploadDir, relative);
    await mkdir(path.dirname(absolute), { recursive: true });
    await writeFile(absolute, upload.bytes);
    try {
      await db
        .insertInto('documents')
        .values({
          id,
          clone_id: cloneId,
          title,
          file_name: upload.fileName,
          file_path: relative,
          file_type: upload.fileType,
          file_size_bytes: upload.bytes.length,
        })
        .execute();
    } catch (error) {
      await rm(absolute, { force: true });
      throw error;
    }
    await options.enqueue?.(id);
    return reply
      .code(202)
      .send({ document: { id, title, fileName: upload.fileName, processingStatus: 'pending', sizeBytes: upload.bytes.length } });
  });
};

/**
 * Reads the multipart body: exactly one file part named `file` (a supported type, up to MAX_UPLOAD_BYTES) and at most
 * one field named `title`, in any order. Any other part, a second of either, or text Postgres cannot store (NUL, a lone
 * surrogate) is `invalid_payload`.
 */
async function readUpload(request: FastifyRequest): Promise<Upload> {
  let file: Omit<Upload, 'title'> | undefined;
  let title: string | undefined;
  const parts = request.parts()[Symbol.asyncIterator]();
  for (;;) {
    const next = await malformedAsInvalid(parts.next());
    if (next.done) break;
    const part = next.value;
    if (part.type === 'field' && part.fieldname === 'title' && title === undefined) {
      if (typeof part.value !== 'string') throw new AppError('invalid_payload', 'the `title` field must be text');
      title = storable(part.value, 'the title');
      continue;
    }
    if (part.type === 'file' && part.fieldname === 'file' && file === undefined) {
      try {
        const given = storable(part.filename, 'the file name').trim();
        const fileType = storable(part.mimetype, 'the file type');
        const kind = documentKind(fileType, given);
        const fileName = clip(given || DEFAULT_NAME[kind], MAX_NAME_CHARS);
        // RequestFileTooLargeError (413) past MAX_UPLOAD_BYTES
        file = { fileName, fileType: clip(fileType, MAX_TYPE_CHARS), bytes: await malformedAsInvalid(part.toBuffer()) };
      } catch (error) {
        part.file.resume();
        if (error instanceof DocumentError) throw new AppError('invalid_payload', error.message);
        throw error;
      }
      continue;
    }
    if (part.type === 'file') part.file.resume();
    const what = part.type === 'file' ? 'file part' : 'field';
    throw new AppError('invalid_payload', `unexpected ${what} ${JSON.stringify(part.fieldname)}: send one \`file\` part and at most one \`title\` field`);
  }
  if (!file) throw new AppError('invalid_payload', 'no `file` part');
  return { ...file, title };
}

/** The text as sent, or invalid_payload when Postgres could not store it so. */
function storable(text: string, what: string): string {
  if (!isStorableText(text)) throw new AppError('invalid_payload', `${what} ${UNSTORABLE_TEXT}`);
  return text;
}

/** At most `max` characters (code points, as a varchar counts them), never half a surrogate pair. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : Array.from(text).slice(0, max).join('');
}

/**
 * The multipart parser (busboy) rejects a body that does not parse — a boundary other than the header's, none, a
 * body cut off — with a plain Error: that is the client's mistake (400), not ours. fastify's own errors (413) pass.
 */
async function malformedAsInvalid<T>(reading: Promise<T>): Promise<T> {
  try {
    return await reading;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('FST_')) throw error;
    throw new AppError('invalid_payload', `malformed multipart body: ${error instanceof Error ? error.message : 'unreadable'}`);
  }
}
