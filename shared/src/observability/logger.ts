/** The processes' pino logger; tokens and secrets never reach it (redacted where they could appear). */
import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.ts';

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, name: string): Logger {
  return pino({
    name,
    level: config.LOG_LEVEL,
    redact: ['token', '*.token', 'auth.token', 'headers.authorization', 'req.headers.authorization'],
  });
}
