/**
 * Lets the app close promptly. Node's server.close() waits for every connection, and fastify only closes the idle
 * keep-alive ones it knows of: a connection opened but never used (browsers preconnect spare sockets) would hold
 * the close until the server's header timeout, past the process's shutdown deadline. On close, connections without
 * a request in progress are destroyed; the others are ended as soon as their response is done.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export function closeUnusedConnections(app: FastifyInstance): void {
  /** Requests in progress per connection. */
  const inFlight = new Map<Socket, number>();
  const sockets = new Set<Socket>();
  let closing = false;

  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      inFlight.delete(socket);
    });
  });
  app.server.on('request', (request, response) => {
    const socket = request.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      if (left > 0) return void inFlight.set(socket, left);
      inFlight.delete(socket);
      if (closing) socket.end();
    });
  });
  app.addHook('preClose', (done) => {
    closing = true;
    for (const socket of sockets) if (!inFlight.has(socket)) socket.destroy();
    done();
  });
}
