/**
 * The processes' pino logger. Secrets never reach its output, in two layers: fields that carry tokens, keys or
 * passwords are redacted by path wherever they are logged; and, as the last guard against a secret inside an error
 * message or a URL, every line is scrubbed of the configured secrets (JWT_SECRET, LIVEKIT_API_SECRET,
 * OPENAI_API_KEY, DEEPGRAM_API_KEY, METRICS_TOKEN, the passwords of DATABASE_URL and REDIS_URL) and of anything shaped like a JWT
 * (access tokens, agent tokens, LiveKit room and admin tokens).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/config.ts';

export type LoggerConfig = Pick<Config, 'LOG_LEVEL'> &
  Partial<Pick<Config, 'JWT_SECRET' | 'LIVEKIT_API_SECRET' | 'OPENAI_API_KEY' | 'DEEPGRAM_API_KEY' | 'METRICS_TOKEN' | 'DATABASE_URL' | 'REDIS_URL'>>;

/** Field names whose values are secrets wherever they appear (top level and one level down, pino's redact paths). */
const SECRET_FIELDS = [
  'token',
  'accessToken',
  'authorization',
  'cookie',
  'password',
  'secret',
  'apiKey',
  'apiSecret',
  'connectionString',
  'JWT_SECRET',
  'LIVEKIT_API_SECRET',
  'OPENAI_API_KEY',
  'DEEPGRAM_API_KEY',
  'METRICS_TOKEN',
  'DATABASE_URL',
  'REDIS_URL',
];
const REDACT_PATHS = [
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]),
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'req.headers.authorization',
  'handshake.auth',
  '*.handshake.auth',
  'auth.token',
];

/** Three base64url parts starting with a JSON header (`{"` → `eyJ`): a JWT, signed or not. */
const JWT_SOURCE = String.raw`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`;
/** Shorter configured values are not scrubbed from text (they would mangle ordinary words); they are dev defaults. */
const MIN_SCRUBBED_LENGTH = 6;

export function createLogger(config: LoggerConfig, name: string, destination?: DestinationStream): Logger {
  return pino(
    { name, level: config.LOG_LEVEL, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    scrubbing(destination ?? pino.destination(process.stdout.fd || 1), secretValues(config)),
  );
}

/** The configured secrets, as they could appear in a log line (as is, JSON-escaped, URL-encoded). */
export function secretValues(config: LoggerConfig): string[] {
  const values = [config.JWT_SECRET, config.LIVEKIT_API_SECRET, config.OPENAI_API_KEY, config.DEEPGRAM_API_KEY, config.METRICS_TOKEN];
  for (const url of [config.DATABASE_URL, config.REDIS_URL]) {
    const password = url ? passwordOf(url) : '';
    if (password) values.push(password, safeDecode(password));
  }
  const forms = values
    .filter((value): value is string => typeof value === 'string' && value.length >= MIN_SCRUBBED_LENGTH)
    .flatMap((value) => [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]);
  // longest first, so a secret containing another is replaced whole
  return [...new Set(forms)].sort((a, b) => b.length - a.length);
}

/** A destination that writes each line with the secrets and JWTs in it replaced by `[redacted]`. */
function scrubbing(destination: DestinationStream, secrets: string[]): DestinationStream {
  const escaped = secrets.map((secret) => secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp([...escaped, JWT_SOURCE].join('|'), 'g');
  const target = destination as DestinationStream & { flush?(callback?: (error?: Error) => void): void; flushSync?(): void };
  return {
    write: (line: string) => target.write(line.replace(pattern, '[redacted]')),
    // logger.flush() reaches the real destination
    ...(target.flush ? { flush: (callback?: (error?: Error) => void) => target.flush!(callback) } : {}),
    ...(target.flushSync ? { flushSync: () => target.flushSync!() } : {}),
  } as DestinationStream;
}

function passwordOf(url: string): string {
  try {
    return new URL(url).password;
  } catch {
    return '';
  }
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
