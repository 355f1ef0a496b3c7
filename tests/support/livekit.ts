/**
 * LiveKit for tests, without a LiveKit server: webhooks signed exactly as LiveKit signs them (an AccessToken
 * carrying the body's sha256, made with the real SDK), and a local RoomService that speaks Twirp over HTTP (JSON),
 * checks the caller's admin token with the API secret, and records each call.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { jwtVerify } from 'jose';
import { AccessToken, ParticipantInfo, Room, WebhookEvent } from 'livekit-server-sdk';

export const TEST_LIVEKIT_KEY = 'test-key';
export const TEST_LIVEKIT_SECRET = 'test-livekit-secret-0123456789abcdef';

export type ParticipantEventName = 'participant_joined' | 'participant_left' | 'participant_connection_aborted';

export interface WebhookSpec {
  event: ParticipantEventName | 'room_finished';
  room: string;
  /** Participant events: who, and their participant sid. */
  identity?: string;
  participantSid?: string;
  /** When LiveKit says it happened (ms; sent in whole seconds as LiveKit does). Default: now. */
  at?: number;
  /** Joins: the participant's exact join instant (ms). */
  joinedAtMs?: number;
  id?: string;
}

/** The body and Authorization header LiveKit would send for an event. */
export async function signedWebhook(spec: WebhookSpec, secret = TEST_LIVEKIT_SECRET, key = TEST_LIVEKIT_KEY) {
  const at = spec.at ?? Date.now();
  const event = new WebhookEvent({
    id: spec.id ?? `EV_${randomUUID()}`,
    createdAt: BigInt(Math.floor(at / 1000)),
    room: new Room({ name: spec.room, sid: `RM_${spec.room}` }),
    ...(spec.identity
      ? {
          participant: new ParticipantInfo({
            identity: spec.identity,
            sid: spec.participantSid ?? `PA_${randomUUID()}`,
            joinedAt: BigInt(Math.floor((spec.joinedAtMs ?? at) / 1000)),
            joinedAtMs: BigInt(spec.joinedAtMs ?? 0),
          }),
        }
      : {}),
  });
  event.event = spec.event; // the SDK's WebhookEvent constructor resets `event`
  const body = JSON.stringify(event.toJson());
  const token = new AccessToken(key, secret);
  token.sha256 = createHash('sha256').update(body).digest('base64');
  return { body, authorization: await token.toJwt(), id: event.id };
}

/** Posts a signed webhook to a gateway; returns the HTTP status. */
export async function postWebhook(gatewayUrl: string, spec: WebhookSpec, secret?: string): Promise<number> {
  const { body, authorization } = await signedWebhook(spec, secret);
  const response = await fetch(`${gatewayUrl}/livekit/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/webhook+json', authorization },
    body,
  });
  await response.arrayBuffer();
  return response.status;
}

export interface RoomServiceCall {
  method: string;
  body: Record<string, unknown>;
  /** The grants of the admin token the call carried. */
  video: Record<string, unknown>;
}

export interface FakeRoomService {
  url: string;
  calls: RoomServiceCall[];
  /** Who is in each room, by identity, for ListParticipants; a room not here does not exist (Twirp not_found). */
  rooms: Map<string, string[]>;
  /** While true, every call fails (500): LiveKit not answering. */
  failing: boolean;
  /** Calls that carried no valid admin token (answered 401). */
  refused: number;
  close(): Promise<void>;
}

/**
 * A LiveKit RoomService (Twirp, JSON) on a free local port. RemoveParticipant and DeleteRoom always succeed;
 * ListParticipants answers from `rooms` (a room not listed does not exist).
 */
export async function startFakeRoomService(secret = TEST_LIVEKIT_SECRET): Promise<FakeRoomService> {
  const calls: RoomServiceCall[] = [];
  const rooms = new Map<string, string[]>();
  const state = { refused: 0, failing: false };
  const key = new TextEncoder().encode(secret);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const method = /^\/twirp\/livekit\.RoomService\/(\w+)$/.exec(req.url ?? '')?.[1];
        if (req.method !== 'POST' || !method) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'bad_route', msg: 'no such method' }));
          return;
        }
        try {
          const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
          const { payload } = await jwtVerify(bearer, key, { algorithms: ['HS256'] });
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
          calls.push({ method, body, video: (payload.video ?? {}) as Record<string, unknown> });
          if (state.failing) {
            res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'internal', msg: 'unavailable' }));
            return;
          }
          if (method === 'ListParticipants') {
            const inRoom = rooms.get(String(body.room));
            if (!inRoom) {
              res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'not_found', msg: 'requested room does not exist' }));
              return;
            }
            const participants = inRoom.map((identity) => ({ sid: `PA_${identity}`, identity, state: 'ACTIVE' }));
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ participants }));
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } catch {
          state.refused += 1;
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'unauthenticated', msg: 'invalid token' }));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    rooms,
    get failing() {
      return state.failing;
    },
    set failing(value: boolean) {
      state.failing = value;
    },
    get refused() {
      return state.refused;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A browser's attempt to join a room: the signal connection's path and the access token it carried. */
export interface SignalJoin {
  path: string;
  token: string;
}

export interface RefusingSignalServer {
  /** The LiveKit URL browsers are given (ws://). */
  url: string;
  joins: SignalJoin[];
  close(): Promise<void>;
}

/**
 * Where LiveKit's browser SDK connects to join a room (`/rtc…?access_token=`), without a media server behind it:
 * each signal connection is recorded and refused (503), and the SDK's follow-up check (`…/validate`) is told so.
 * Enough to prove a page tried to join the right room with the right token, and copes with failing to.
 */
export async function startRefusingSignalServer(): Promise<RefusingSignalServer> {
  const joins: SignalJoin[] = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain', 'access-control-allow-origin': '*' }).end('no media server in this test');
  });
  server.on('upgrade', (req, socket) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    joins.push({ path: url.pathname, token: url.searchParams.get('access_token') ?? '' });
    socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    joins,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
