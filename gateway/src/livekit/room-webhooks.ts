/**
 * `POST /livekit/webhook`: LiveKit's webhooks about session rooms, verified with WebhookReceiver over the raw body
 * (its `Authorization` JWT carries the body's sha256, signed with the API secret). Forged, tampered or unsigned
 * requests get 401 and change nothing. What each event means for a session is decided by `toRoomEvent` (pure) and
 * room-event.lua (ordering, duplicates, instants).
 */
import type { FastifyInstance } from 'fastify';
import { WebhookReceiver, type WebhookEvent } from 'livekit-server-sdk';
import type { Logger } from 'pino';
import type { RoomEvent } from '#shared/live-state/session-store.ts';

/** A webhook about a session's room, as the session service takes it. */
export interface RoomWebhook {
  room: string;
  /** The participant's identity ('' for room events). */
  identity: string;
  event: RoomEvent;
}

export interface RoomWebhooksOptions {
  apiKey: string;
  apiSecret: string;
  logger: Logger;
  /** Applies one verified event; a throw answers 500 so LiveKit retries. */
  apply(webhook: RoomWebhook): Promise<void>;
}

/** Largest webhook body accepted (LiveKit's are a few KiB). */
const BODY_LIMIT = 256 * 1024;

/**
 * What a LiveKit event says about a room's participant, or undefined for events that do not move the meter.
 * Instants: LiveKit stamps events in whole seconds, so a join counts from the participant's exact `joinedAtMs`
 * (else the end of its second) and a leave or a room's end from the start of its second: rounding never charges
 * time outside the room.
 */
function toRoomEvent(event: WebhookEvent): RoomWebhook | undefined {
  const room = event.room?.name ?? '';
  const createdMs = Number(event.createdAt) * 1000;
  const participant = event.participant;
  switch (event.event) {
    case 'participant_joined': {
      if (!participant) return undefined;
      const joinedAtMs = Number(participant.joinedAtMs ?? 0n);
      const at = joinedAtMs > 0 ? joinedAtMs : createdMs + 999;
      return { room, identity: participant.identity, event: { id: event.id, kind: 'joined', participantSid: participant.sid, at } };
    }
    case 'participant_left':
    case 'participant_connection_aborted':
      if (!participant) return undefined;
      return { room, identity: participant.identity, event: { id: event.id, kind: 'left', participantSid: participant.sid, at: createdMs } };
    case 'room_finished':
      return { room, identity: '', event: { id: event.id, kind: 'finished', participantSid: '', at: createdMs } };
    default:
      return undefined;
  }
}

export async function roomWebhooks(app: FastifyInstance, options: RoomWebhooksOptions): Promise<void> {
  const receiver = new WebhookReceiver(options.apiKey, options.apiSecret);
  // the signature covers the exact bytes: this scope keeps bodies as strings, whatever their content type
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));

  app.post('/livekit/webhook', async (request, reply) => {
    let event: WebhookEvent;
    try {
      if (typeof request.body !== 'string') throw new Error('no body');
      event = await receiver.receive(request.body, request.headers.authorization);
    } catch {
      return reply.code(401).send({ error: { code: 'unauthorized', message: 'invalid webhook signature' } });
    }
    const webhook = toRoomEvent(event);
    if (webhook) await options.apply(webhook);
    return reply.code(200).send({ ok: true });
  });
}
