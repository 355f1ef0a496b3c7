/**
 * `createHttpApp`: the fastify app both processes serve HTTP with, hardened the same way. Every error answer, whoever
 * produces it, is `{ error: { code, message } }`: a route's throw (the error handler), no such route (404), a URL
 * fastify cannot route (malformed, a parameter too long, over MAX_URL_CHARS: 400/414), a request node refuses before
 * fastify sees it (headers too large 431, not HTTP 400, too slow 408: `clientErrorHandler`). Deadlines: a request must
 * arrive whole within HTTP_REQUEST_TIMEOUT_MS (its headers within HEADERS_TIMEOUT_MS of that), and its body at
 * HTTP_MIN_UPLOAD_BYTES_PER_SEC or better after HTTP_UPLOAD_GRACE_MS (guardUploadRate). These bound requests only:
 * a websocket upgraded on the same server, or a long-poll whose request has arrived, is never cut by them.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config/config.ts';
import { httpAnswer, toHttpAnswer, type HttpAnswer } from './http-answer.ts';
import { guardUploadRate } from './upload-rate-guard.ts';

export type HttpLimits = Pick<Config, 'HTTP_REQUEST_TIMEOUT_MS' | 'HTTP_MIN_UPLOAD_BYTES_PER_SEC' | 'HTTP_UPLOAD_GRACE_MS'>;

export interface HttpAppOptions {
  /** The request deadlines (from the config). */
  limits: HttpLimits;
  /** Largest request body a route parses (a route may set its own). Default fastify's, 1 MiB. */
  bodyLimit?: number;
  /** What a request that failed is answered; default toHttpAnswer. A process with errors of its own extends it. */
  toAnswer?: (error: unknown) => HttpAnswer<string>;
  /** Told of each failure answered 500 or more, with its request when it got that far (to log it). Default: nothing. */
  onServerError?: (error: unknown, request: FastifyRequest | undefined) => void;
}

/** Longest URL (path and query) answered; longer is 414. The apps' own URLs are well under 1 KiB. */
const MAX_URL_CHARS = 4096;

/** Longest a request's headers may take (or HTTP_REQUEST_TIMEOUT_MS if shorter): a real client sends them at once. */
const HEADERS_TIMEOUT_MS = 20_000;

const JSON_TYPE = 'application/json; charset=utf-8';

export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const toAnswer = options.toAnswer ?? toHttpAnswer;
  const onServerError = (error: unknown, request?: FastifyRequest) => {
    if (toAnswer(error).status >= 500) options.onServerError?.(error, request);
  };
  const requestTimeout = options.limits.HTTP_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(HEADERS_TIMEOUT_MS, requestTimeout);

  const app = Fastify({
    ...(options.bodyLimit !== undefined ? { bodyLimit: options.bodyLimit } : {}),
    // fastify's default (0) turns node's whole-request timeout off; it is set on the server after it is made
    requestTimeout,
    // node looks for requests past their deadlines every connectionsCheckingInterval (default 30 s)
    http: { requestTimeout, headersTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 10))) },
    frameworkErrors: (error, _request, reply) => {
      onServerError(error);
      sendAnswer(reply, toAnswer(error));
    },
    clientErrorHandler: (error, socket) => {
      onServerError(error);
      writeRawAnswer(socket, toAnswer(error), error);
    },
  });

  app.setErrorHandler((error, request, reply) => {
    onServerError(error, request);
    sendAnswer(reply, toAnswer(error));
  });
  app.setNotFoundHandler((_request, reply) => sendAnswer(reply, httpAnswer(404, 'not_found', 'no such route')));
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.length > MAX_URL_CHARS) return sendAnswer(reply, httpAnswer(414, 'invalid_payload', `URL longer than ${MAX_URL_CHARS} characters`));
  });

  guardUploadRate(app.server, {
    minBytesPerSec: options.limits.HTTP_MIN_UPLOAD_BYTES_PER_SEC,
    graceMs: options.limits.HTTP_UPLOAD_GRACE_MS,
    onTooSlow: (request, response) =>
      answerAndClose(request, response, httpAnswer(408, 'invalid_payload', `request body slower than ${options.limits.HTTP_MIN_UPLOAD_BYTES_PER_SEC} bytes/s`)),
  });
  return app;
}

function sendAnswer(reply: FastifyReply, answer: HttpAnswer<string>): FastifyReply {
  if (answer.status === 401) reply.header('www-authenticate', 'Bearer');
  // serialized here: a framework error's reply has no route, so no serializer of its own
  return reply.code(answer.status).type(JSON_TYPE).send(JSON.stringify(answer.body));
}

/** Answers through the request's response when nothing of it was sent yet; the connection closes either way. */
function answerAndClose(request: IncomingMessage, response: ServerResponse, answer: HttpAnswer<string>): void {
  if (response.headersSent) {
    request.socket.destroy();
    return;
  }
  const body = JSON.stringify(answer.body);
  // `connection: close`: node closes the socket once this is written, whatever of the body is still coming
  response.writeHead(answer.status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body), connection: 'close' });
  response.end(body);
}

/**
 * Writes the answer straight to a connection node refused a request on (no response object exists), unless a response
 * is already being written on it, then closes it (as node's own `clientError` default does).
 */
function writeRawAnswer(socket: Socket, answer: HttpAnswer<string>, error: Error & { code?: string }): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !inProgress?.headersSent) {
    const body = JSON.stringify(answer.body);
    const auth = answer.status === 401 ? 'WWW-Authenticate: Bearer\r\n' : '';
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\nContent-Type: ${JSON_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n${auth}Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
