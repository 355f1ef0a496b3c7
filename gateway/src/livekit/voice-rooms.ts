/**
 * The LiveKit side of voice and video sessions: one room per session (`session-<id>`), join tokens that grant
 * exactly that room (the user: microphone, plus camera for video, and subscribe; the agent: microphone and
 * subscribe, hidden from the user's participant list), the record of which user owns a room (webhooks name only
 * the room), and closing a room when its session ends from our side (RoomServiceClient): a token's expiry does not
 * disconnect someone already in a room.
 */
import { AccessToken, RoomServiceClient, TrackSource, type VideoGrant } from 'livekit-server-sdk';
import type { RedisClient } from '#shared/live-state/redis-client.ts';
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import type { LiveKitJoin, SessionType } from '#shared/contract/socket-events.ts';
import { roomOwnerKey } from '#shared/live-state/keys.ts';

export interface VoiceRoomsOptions {
  config: Config;
  /** Where room owners are recorded (the live-state Redis). */
  redis: RedisClient;
  logger: Logger;
  /** The LiveKit HTTP API; default: a RoomServiceClient on LIVEKIT_API_URL (or LIVEKIT_URL over http). */
  roomService?: RoomServiceClient;
}

const ROOM_PREFIX = 'session-';

/** The agent's participant identity in a session's room (never a user id, which is a uuid). */
export const agentIdentity = (sessionId: string) => `agent-${sessionId}`;

/** LiveKit's HTTP API address for a signalling URL: ws → http, wss → https. */
function apiUrlOf(config: Config): string {
  return config.LIVEKIT_API_URL ?? config.LIVEKIT_URL.replace(/^ws(s?):/, 'http$1:');
}

export class VoiceRooms {
  private readonly roomService: RoomServiceClient;

  constructor(private readonly options: VoiceRoomsOptions) {
    const { config } = options;
    this.roomService =
      options.roomService ?? new RoomServiceClient(apiUrlOf(config), config.LIVEKIT_API_KEY, config.LIVEKIT_API_SECRET);
  }

  roomName(sessionId: string): string {
    return `${ROOM_PREFIX}${sessionId}`;
  }

  /** The session a room belongs to, or undefined for a room that is not a session's. */
  sessionIdOf(room: string): string | undefined {
    const id = room.startsWith(ROOM_PREFIX) ? room.slice(ROOM_PREFIX.length) : '';
    return /^[0-9a-f-]{36}$/i.test(id) ? id : undefined;
  }

  /** What the user's client may do in the room: join it, publish its microphone (and camera), subscribe. */
  userGrant(sessionId: string, type: SessionType): VideoGrant {
    return {
      room: this.roomName(sessionId),
      roomJoin: true,
      canPublish: true,
      canPublishSources: type === 'video' ? [TrackSource.MICROPHONE, TrackSource.CAMERA] : [TrackSource.MICROPHONE],
      canSubscribe: true,
      canPublishData: false,
      canUpdateOwnMetadata: false,
    };
  }

  /** Records the room's owner (before the session exists, so no webhook can miss it) for as long as it may live. */
  async register(sessionId: string, userId: string): Promise<void> {
    const { config, redis } = this.options;
    const ttlMs = config.JOIN_TIMEOUT_MS + config.PAUSED_END_MS + config.ENDED_STATE_TTL_MS;
    await redis.set(roomOwnerKey(config.REDIS_PREFIX, sessionId), userId, 'PX', ttlMs);
  }

  /** The user whose session the room is, or undefined when unknown (not ours, or long gone). */
  async ownerOf(sessionId: string): Promise<string | undefined> {
    return (await this.options.redis.get(roomOwnerKey(this.options.config.REDIS_PREFIX, sessionId))) ?? undefined;
  }

  /** A join for the user's client: a token for this room only, valid LIVEKIT_TOKEN_TTL seconds. */
  async userJoin(sessionId: string, userId: string, type: SessionType): Promise<LiveKitJoin> {
    const token = this.accessToken(userId);
    token.addGrant(this.userGrant(sessionId, type));
    return { url: this.options.config.LIVEKIT_URL, room: this.roomName(sessionId), token: await token.toJwt() };
  }

  /** A join for the clone's voice agent: speaks (microphone) and listens, hidden, this room only. */
  async agentJoin(sessionId: string): Promise<LiveKitJoin> {
    const token = this.accessToken(agentIdentity(sessionId));
    token.addGrant({
      room: this.roomName(sessionId),
      roomJoin: true,
      canPublish: true,
      canPublishSources: [TrackSource.MICROPHONE],
      canSubscribe: true,
      canPublishData: false,
      hidden: true,
      agent: true,
    });
    return { url: this.options.config.LIVEKIT_URL, room: this.roomName(sessionId), token: await token.toJwt() };
  }

  /**
   * The session is over: remove the user from the room and delete the room (which disconnects the agent too).
   * A room or participant that is already gone is fine; other failures are logged (the room's own empty timeout
   * and the next webhook of an ended session try again).
   */
  async close(sessionId: string, userId: string): Promise<void> {
    const room = this.roomName(sessionId);
    const attempt = async (what: string, call: () => Promise<unknown>) => {
      try {
        await call();
      } catch (error) {
        if (isNotFound(error)) return;
        this.options.logger.warn({ err: error, sessionId, room }, `LiveKit ${what} failed`);
      }
    };
    await attempt('removeParticipant', () => this.roomService.removeParticipant(room, userId));
    await attempt('deleteRoom', () => this.roomService.deleteRoom(room));
  }

  /**
   * Who is in the session's room now, by identity (RoomService ListParticipants), or undefined when LiveKit says the
   * room does not exist. Any other failure throws: not knowing is not absence.
   */
  async participants(sessionId: string): Promise<string[] | undefined> {
    try {
      const participants = await this.roomService.listParticipants(this.roomName(sessionId));
      return participants.map((p) => p.identity);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private accessToken(identity: string): AccessToken {
    const { config } = this.options;
    return new AccessToken(config.LIVEKIT_API_KEY, config.LIVEKIT_API_SECRET, {
      identity,
      ttl: config.LIVEKIT_TOKEN_TTL,
    });
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { status?: number; code?: string };
  return e?.status === 404 || e?.code === 'not_found';
}
