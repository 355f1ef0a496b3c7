/**
 * The baseline server: a bare Socket.IO server on node:http — no authentication, no Redis, no adapter, no
 * connection state recovery — that answers `message:send` with an ack echoing a message-shaped object,
 * `session:start` / `session:end` with session-shaped ones, and GET /healthz. Run as its own process (`PORT`,
 * `HOST`), so the bench measures it exactly as it measures a gateway.
 */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';

// A bench entry point (like scripts/run-tests.ts), not a service: its two settings are read here.
const port = Number(process.env['PORT'] ?? '0');
const host = process.env['HOST'] ?? '127.0.0.1';

const http = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  res.writeHead(404).end();
});
// the gateway's frame cap, so the two servers parse the same way
const io = new Server(http, { maxHttpBufferSize: 64 * 1024 });

io.on('connection', (socket) => {
  // a visit's start and end, answered in memory with session-shaped objects (the churn scenario's baseline)
  const session = (sessionId: string, status: 'active' | 'ended') => ({
    id: sessionId,
    status,
    startTime: new Date().toISOString(),
    endTime: status === 'ended' ? new Date().toISOString() : null,
  });
  socket.on('session:start', (_payload: unknown, ack?: (answer: unknown) => void) => {
    ack?.({ ok: true, session: session(randomUUID(), 'active') });
  });
  socket.on('session:end', (payload: { sessionId?: string }, ack?: (answer: unknown) => void) => {
    ack?.({ ok: true, session: session(String(payload?.sessionId), 'ended') });
  });
  socket.on('message:send', (payload: { sessionId?: string; clientMessageId?: string; content?: string }, ack?: (answer: unknown) => void) => {
    ack?.({
      ok: true,
      message: {
        id: randomUUID(),
        sessionId: payload?.sessionId,
        senderType: 'user',
        content: payload?.content,
        tokensUsed: 0,
        costIncrement: '0.0000',
        createdAt: new Date().toISOString(),
      },
    });
  });
});

http.listen(port, host);

const shutdown = () => {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
