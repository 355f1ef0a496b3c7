/**
 * The one mapping, for both processes' HTTP apps, from anything a request ends with to its answer
 * `{ error: { code, message } }`: an AppError by its code; a ZodError (input checked with `parse`) `invalid_payload`;
 * fastify's own request errors (bad JSON, body too large, wrong content type, malformed URL, parameter too long) and
 * node's client errors (headers too large, a request not received in time, bytes that are not HTTP)
 * `invalid_payload` with their status; Redis or Postgres not answering `unavailable` (503); anything else `internal` (500: logged by the app, never explained).
 */
import { STATUS_CODES } from 'node:http';
import { ZodError } from 'zod';
import { AppError, type ErrorCode } from '../errors/app-error.ts';
import { dependencyFailure } from '../errors/dependency-failure.ts';

export interface HttpAnswer<Code extends string = ErrorCode> {
  status: number;
  body: { error: { code: Code; message: string } };
}

const STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_payload: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  invalid_state: 422,
  insufficient_credits: 422,
  clone_unavailable: 422,
  rate_limited: 429,
  overloaded: 503,
  unavailable: 503,
  internal: 500,
};

/** Errors whose own message would echo what the client sent (a URL): answered with a fixed one. */
const FIXED_MESSAGES: Readonly<Record<string, string>> = {
  FST_ERR_BAD_URL: 'malformed URL',
  FST_ERR_MAX_PARAM_LENGTH: 'URL parameter too long',
};

/** node's http parser errors (`clientError`) and what they are answered. */
const CLIENT_ERRORS: Readonly<Record<string, { status: number; message: string }>> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'request headers too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'request not received in time' },
};

export function httpAnswer<Code extends string>(status: number, code: Code, message: string): HttpAnswer<Code> {
  return { status, body: { error: { code, message } } };
}

export function toHttpAnswer(error: unknown): HttpAnswer {
  if (error instanceof AppError) return httpAnswer(STATUS[error.code], error.code, error.message);
  if (error instanceof ZodError) {
    const issues = error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    return httpAnswer(400, 'invalid_payload', issues.join('; ') || 'invalid input');
  }
  const dependency = dependencyFailure(error);
  if (dependency) return httpAnswer(503, 'unavailable', `${dependency} is not answering; try again`);
  const { code, statusCode, message } = (error ?? {}) as { code?: unknown; statusCode?: unknown; message?: unknown };
  if (typeof code !== 'string') return httpAnswer(500, 'internal', 'internal error');
  if (code.startsWith('FST_') && typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    const text = FIXED_MESSAGES[code] ?? (typeof message === 'string' && message ? message : STATUS_CODES[statusCode] ?? 'invalid request');
    return httpAnswer(statusCode, 'invalid_payload', text);
  }
  const client = CLIENT_ERRORS[code];
  if (client) return httpAnswer(client.status, 'invalid_payload', client.message);
  // the rest of llhttp's errors: a method, header or chunk that is not HTTP
  if (code.startsWith('HPE_')) return httpAnswer(400, 'invalid_payload', 'malformed HTTP request');
  return httpAnswer(500, 'internal', 'internal error');
}
