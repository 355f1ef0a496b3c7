/**
 * HTTP at the byte level, for what fetch will not send or hides: malformed request lines, oversized headers, bodies
 * that trickle in. `exchange` opens a connection, lets `send` write to it (as slowly as it likes), and resolves with
 * the first response the server wrote and whether the server closed the connection — once it did, or at `timeoutMs`.
 */
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

export interface Exchange {
  /** The first response, if a whole one came. */
  response: RawResponse | undefined;
  /** The server closed (or reset) the connection before `timeoutMs`. */
  closedByServer: boolean;
}

/** Writes to the connection until it closes; `closed()` tells the writer to stop. */
export type Sender = (socket: net.Socket, closed: () => boolean) => void | Promise<void>;

export function exchange(url: string, send: Sender | string | Buffer, timeoutMs = 5000): Promise<Exchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = (closedByServer: boolean) => {
      clearTimeout(timer);
      closed = true;
      socket.destroy();
      resolve({ response: parse(Buffer.concat(chunks)), closedByServer });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!closed) finish(true);
    });
    socket.once('connect', () => {
      if (typeof send === 'string' || Buffer.isBuffer(send)) socket.write(send);
      else void Promise.resolve(send(socket, () => closed || socket.destroyed)).catch(() => undefined);
    });
  });
}

/** A sender that writes `head` at once, then `chunk` every `everyMs` until the connection closes. */
export function trickle(head: string | Buffer, chunk: string | Buffer, everyMs: number): Sender {
  return async (socket, closed) => {
    socket.write(head);
    while (!closed()) {
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      if (!closed()) socket.write(chunk);
    }
  };
}

function parse(raw: Buffer): RawResponse | undefined {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]);
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const bodyBytes = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  const length = headers['content-length'] === undefined ? bodyBytes.length : Number(headers['content-length']);
  return { status, headers, body: bodyBytes.subarray(0, length).toString('utf8') };
}
