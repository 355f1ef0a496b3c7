/**
 * The knowledge-base upload API, for a clone's own creator: `POST /api/clones/:cloneId/documents` (multipart,
 * one `file` part and an optional `title` field) stores the file under UPLOAD_DIR, inserts a `pending` document and
 * queues its ingestion; `GET /api/clones/:cloneId/documents` lists the clone's documents with their processing
 * status and, for failed ones, why.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { Database } from '#shared/db/schema.ts';
import { documentKind } from '#shared/documents/document-kind.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { bearerToken } from './admin-auth.ts';

export interface DocumentsApiOptions {
  db: Kysely<Database>;
  jwtSecret: string;
  jwtAudience: string;
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

export const documentsApi: FastifyPluginAsync<DocumentsApiOptions> = async (app, options) => {
  const { db } = options;
  const verifier = new TokenVerifier({ secret: options.jwtSecret, audience: options.jwtAudience });
  await app.register(multipart, { limits: { files: 1, fileSize: options.maxUploadBytes, fields: 5, fieldSize: 1000 } });

  /** The requester must be the clone's creator. */
  const creatorOf = async (authorization: Parameters<typeof bearerToken>[0], cloneId: string) => {
    const userId = await verifier.verify(bearerToken(authorization));
    const clone = await db.selectFrom('clones').select('creator_id').where('id', '=', cloneId).executeTakeFirst();
    if (!clone) throw new AppError('not_found', 'no such clone');
    if (clone.creator_id !== userId) throw new AppError('forbidden', "only the clone's creator manages its documents");
  };

  app.get('/clones/:cloneId/documents', async (request) => {
    const { cloneId } = params.parse(request.params);
    await creatorOf(request, cloneId);
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
    const { cloneId } = params.parse(request.params);
    await creatorOf(request, cloneId);
    if (!request.isMultipart()) throw new AppError('invalid_payload', 'send multipart/form-data with a `file` part');
    const part = await malformedAsInvalid(request.file());
    if (!part) throw new AppError('invalid_payload', 'no `file` part');
    try {
      documentKind(part.mimetype, part.filename);
    } catch (error) {
      part.file.resume();
      throw new AppError('invalid_payload', error instanceof Error ? error.message : 'unsupported file type');
    }
    const bytes = await malformedAsInvalid(part.toBuffer()); // RequestFileTooLargeError (413) past MAX_UPLOAD_BYTES
    const titleField = part.fields.title;
    const title = (titleField && 'value' in titleField ? String(titleField.value) : '').trim() || part.filename;
    const id = randomUUID();
    const relative = path.join(cloneId, `${id}-${safeName(part.filename)}`);
    const absolute = path.resolve(options.uploadDir, relative);
    await mkdir(path.dirname(absolute), { recursive: true });
    await writeFile(absolute, bytes);
    try {
      await db
        .insertInto('documents')
        .values({
          id,
          clone_id: cloneId,
          title: title.slice(0, 255),
          file_name: part.filename.slice(0, 255),
          file_path: relative,
          file_type: part.mimetype.slice(0, 100),
          file_size_bytes: bytes.length,
        })
        .execute();
    } catch (error) {
      await rm(absolute, { force: true });
      throw error;
    }
    await options.enqueue?.(id);
    return reply.code(202).send({ document: { id, title, fileName: part.filename, processingStatus: 'pending', sizeBytes: bytes.length } });
  });
};

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
