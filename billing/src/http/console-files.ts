/**
 * Serves the billing web console: `GET /` is its index.html, `GET /console/*` any file under its directory, with
 * the content type of the file's extension. Only regular files inside the directory (symbolic links resolved) are
 * served, never a dotfile; anything else, or a missing file, is the JSON 404 of the API.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AppError } from '#shared/errors/app-error.ts';

/** billing/console, next to billing/src. */
export const DEFAULT_CONSOLE_DIR = path.resolve(import.meta.dirname, '../../console');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
};

export interface ConsoleFilesOptions {
  /** The console's directory. Default billing/console. */
  dir?: string | undefined;
}

export async function consoleFiles(app: FastifyInstance, options: ConsoleFilesOptions): Promise<void> {
  const root = path.resolve(options.dir ?? DEFAULT_CONSOLE_DIR);
  app.get('/', (_request, reply) => sendFile(reply, root, 'index.html'));
  app.get('/console/*', (request, reply) => {
    const relative = (request.params as { '*'?: string })['*'] ?? '';
    return sendFile(reply, root, relative === '' ? 'index.html' : relative);
  });
}

async function sendFile(reply: FastifyReply, root: string, relative: string): Promise<FastifyReply> {
  const missing = () => new AppError('not_found', 'no such console file');
  if (relative.includes('\0') || relative.split(/[\\/]/).some((part) => part.startsWith('.'))) throw missing();
  const target = path.resolve(root, relative);
  if (!target.startsWith(root + path.sep)) throw missing();
  let file: string;
  let size: number;
  try {
    const [realRoot, realTarget] = await Promise.all([realpath(root), realpath(target)]);
    if (!realTarget.startsWith(realRoot + path.sep)) throw missing();
    const info = await stat(realTarget);
    if (!info.isFile()) throw missing();
    file = realTarget;
    size = info.size;
  } catch {
    throw missing();
  }
  return reply
    .type(CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream')
    .header('content-length', size)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .send(createReadStream(file));
}
