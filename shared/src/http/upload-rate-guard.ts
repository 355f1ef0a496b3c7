/**
 * A floor under the rate a request body arrives at, on a node HTTP server. After its first `graceMs` a body must keep
 * an average of `minBytesPerSec`: each byte received moves its deadline `1/minBytesPerSec` s later (as Apache's
 * mod_reqtimeout `MinRate`), so a client may pause now and then but not trickle. A body that misses its deadline is
 * handed to `onTooSlow`, which answers it and closes the connection.
 *
 * Progress is read from the connection's byte count, never from the body stream (reading it would take it from the
 * route). While the server is the one not reading (the route busy before it reads, the request's buffer full), the
 * client is not to blame: its measurement starts over. HTTP_REQUEST_TIMEOUT_MS bounds every request in any case; this
 * cuts a trickling one long before. Upgrades (websockets) never emit `request` and are not watched.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface UploadRateGuardOptions {
  /** Slowest average rate after the grace period; 0 turns the guard off. */
  minBytesPerSec: number;
  /** How long a body may take before the rate applies. */
  graceMs: number;
  /** Answers a request whose body came too slowly (the guard stops watching it). */
  onTooSlow(request: IncomingMessage, response: ServerResponse): void;
  /** How often bodies in progress are looked at. Default 250 ms. */
  checkMs?: number;
  /** Default Date.now. */
  now?: () => number;
}

interface Watch {
  response: ServerResponse;
  /** Start of the measurement, and the connection's byte count then. */
  since: number;
  bytesAtStart: number;
}

export function guardUploadRate(server: Server, options: UploadRateGuardOptions): void {
  if (options.minBytesPerSec <= 0) return;
  const now = options.now ?? Date.now;
  const watched = new Map<IncomingMessage, Watch>();
  let timer: NodeJS.Timeout | undefined;

  const sweep = () => {
    const at = now();
    for (const [request, watch] of watched) {
      const socket = request.socket;
      if (request.complete || request.destroyed || socket.destroyed) {
        watched.delete(request);
      } else if (request.readableLength >= request.readableHighWaterMark || socket.isPaused()) {
        watch.since = at;
        watch.bytesAtStart = socket.bytesRead;
      } else {
        const received = socket.bytesRead - watch.bytesAtStart;
        if (at > watch.since + options.graceMs + (received * 1000) / options.minBytesPerSec) {
          watched.delete(request);
          options.onTooSlow(request, watch.response);
        }
      }
    }
    if (watched.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.complete || !hasBody(request)) return;
    watched.set(request, { response, since: now(), bytesAtStart: request.socket.bytesRead });
    timer ??= setInterval(sweep, options.checkMs ?? 250).unref();
  });
  server.on('close', () => {
    clearInterval(timer);
    timer = undefined;
    watched.clear();
  });
}

function hasBody(request: IncomingMessage): boolean {
  return request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
}
