/**
 * The gateway's web surface for people: `GET /` (the demo page), `GET /widget.js` (the embeddable chat widget),
 * `GET /web/*` (their static assets, from gateway/web/, read once at registration; `/web/tollgate-client.js`, the
 * typed client of shared/src/client bundled for browsers with socket.io-client: the widget runs the same client code
 * as Node callers; `/web/livekit-client.js`, LiveKit's browser SDK for the widget's voice calls, bundled on first
 * request) and `GET /api/clones` (the published, active clones a user can chat with; public). Socket.IO still serves
 * its own browser client at `/socket.io/socket.io.esm.min.js` (`serveClient`, on by default).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { build, buildSync, type BuildOptions } from 'esbuild';
import { z } from 'zod';
import type { Config } from '#shared/config/config.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';

export interface WebRoutesOptions {
  config: Config;
  db: Kysely<Database>;
  /** Folder of the static assets; default gateway/web/. */
  webDir?: string;
}

/** A clone as `GET /api/clones` lists it. */
export interface PublicClone {
  id: string;
  name: string;
  avatarUrl: string | null;
  bio: string | null;
  description: string | null;
  expertiseAreas: string[];
  /** Decimal string with four places, credits per minute. */
  ratePerMinute: string;
}

/** Most clones one `GET /api/clones` lists. */
const MAX_CLONES = 100;

const DEFAULT_WEB_DIR = path.resolve(import.meta.dirname, '../../web');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** LiveKit Cloud projects: the SDK asks `/settings/regions` there and may connect to a regional host instead. */
const LIVEKIT_CLOUD_DOMAINS = ['livekit.cloud', 'livekit.run'];

/**
 * The demo page runs only its own scripts; avatars may live anywhere on https; it connects to the gateway and, for
 * voice calls, to LiveKit (its WebSocket, and the HTTP check the SDK makes when a join fails; for LiveKit Cloud any
 * of the project's regional hosts).
 */
function pageCsp(livekitUrl: string): string {
  const livekit = new URL(livekitUrl);
  const secure = livekit.protocol === 'wss:' || livekit.protocol === 'https:';
  const cloud = LIVEKIT_CLOUD_DOMAINS.find((domain) => livekit.hostname.endsWith(`.${domain}`));
  const hosts = cloud ? [livekit.host, `*.${cloud}`] : [livekit.host];
  const origins = hosts.flatMap((host) => [`${secure ? 'wss' : 'ws'}://${host}`, `${secure ? 'https' : 'http'}://${host}`]);
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https: data:",
    `connect-src 'self' ${origins.join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const clonesQuery = z.object({ id: z.string().uuid().optional() }).strict();

export function registerWebRoutes(app: FastifyInstance, options: WebRoutesOptions): void {
  const { config, db } = options;
  const assets = loadAssets(options.webDir ?? DEFAULT_WEB_DIR);
  const csp = pageCsp(config.LIVEKIT_URL);

  // The widget runs on other sites: its assets and the clone list answer any allowed origin.
  const allowOrigin = (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    reply.header('vary', 'Origin');
    if (origin === undefined) return;
    if (config.allowedOrigins === true || config.allowedOrigins.includes(origin)) {
      reply.header('access-control-allow-origin', origin);
    }
  };

  const sendAsset = async (name: string, request: FastifyRequest, reply: FastifyReply) => {
    const asset = await assets.get(name)?.();
    if (!asset) throw new AppError('not_found', 'no such file');
    reply.header('etag', asset.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  app.get('/', (request, reply) => {
    reply.header('content-security-policy', csp).header('referrer-policy', 'no-referrer');
    return sendAsset('index.html', request, reply);
  });

  app.get('/widget.js', (request, reply) => {
    reply.header('cross-origin-resource-policy', 'cross-origin');
    return sendAsset('widget.js', request, reply);
  });

  app.get('/web/*', (request, reply) => {
    allowOrigin(request, reply);
    reply.header('cross-origin-resource-policy', 'cross-origin');
    const name = (request.params as { '*': string })['*'];
    return sendAsset(name, request, reply);
  });

  app.get('/api/clones', async (request, reply) => {
    allowOrigin(request, reply);
    const query = clonesQuery.safeParse(request.query);
    if (!query.success) {
      return reply.code(400).send({ error: { code: 'invalid_payload', message: 'id must be a clone id (uuid)' } });
    }
    let select = db
      .selectFrom('clones')
      .select(['id', 'name', 'avatar_url', 'bio', 'description', 'expertise_areas', 'base_price'])
      .where('is_published', '=', true)
      .where('is_active', '=', true);
    if (query.data.id !== undefined) select = select.where('id', '=', query.data.id);
    const rows = await select.orderBy('name').orderBy('id').limit(MAX_CLONES).execute();
    const clones: PublicClone[] = rows.map((row) => ({
      id: row.id,
      name: row.name,
      avatarUrl: row.avatar_url,
      bio: row.bio,
      description: row.description,
      expertiseAreas: row.expertise_areas,
      ratePerMinute: row.base_price,
    }));
    return reply.header('cache-control', 'no-cache').send({ clones });
  });
}

/** The typed client (shared/src/client), bundled for browsers with socket.io-client: the widget's only transport. */
const CLIENT_ENTRY = path.resolve(import.meta.dirname, '../../../shared/src/client/tollgate-client.ts');
/** LiveKit's browser SDK, the part the widget's voice calls use (a room, its events, audio tracks, the log level). */
const LIVEKIT_ENTRY = "export { Room, RoomEvent, Track, setLogLevel } from 'livekit-client';";

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** One self-contained ES module for browsers. */
const BUNDLE_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  write: false,
} satisfies BuildOptions;

const bundled = (built: { outputFiles: Array<{ contents: Uint8Array }> }) => asset(Buffer.from(built.outputFiles[0]!.contents), CONTENT_TYPES['.js']!);

/**
 * LiveKit's SDK, built in esbuild's own process (~100 ms) the first time a voice call asks for it, so the gateway's
 * event loop never waits for it; a failed build is tried again at the next request.
 */
function liveKitBundle(): () => Promise<Asset> {
  let building: Promise<Asset> | undefined;
  return () =>
    (building ??= build({ ...BUNDLE_OPTIONS, stdin: { contents: LIVEKIT_ENTRY, resolveDir: import.meta.dirname } }).then(bundled, (error: unknown) => {
      building = undefined;
      throw error;
    }));
}

/**
 * Every file directly in `dir` whose type is known, by file name, and the bundles: the typed client built now (every
 * page needs it; tens of milliseconds), LiveKit's SDK when a first voice call asks for it.
 */
function loadAssets(dir: string): Map<string, () => Asset | Promise<Asset>> {
  const client = bundled(buildSync({ ...BUNDLE_OPTIONS, entryPoints: [CLIENT_ENTRY] }));
  const assets = new Map<string, () => Asset | Promise<Asset>>([
    ['tollgate-client.js', () => client],
    ['livekit-client.js', liveKitBundle()],
  ]);
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (type === undefined) continue;
    const file = asset(readFileSync(path.join(dir, name)), type);
    assets.set(name, () => file);
  }
  return assets;
}
