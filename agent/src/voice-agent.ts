/**
 * `VoiceAgent`: the process that speaks for clones in voice/video rooms. It connects to the gateway's `/agent`
 * namespace with an agent token; when offered a session (`agent:dispatch`) and it has room, it claims it, joins
 * the room (LiveKit), and runs a VoicePipeline (Deepgram speech-to-text → the clone's reply through the gateway →
 * Deepgram text-to-speech) until the session ends or the pipeline stops. The claim is renewed while it serves, so
 * a crashed agent's sessions go to another agent the next time their user is in the room.
 */
import { io } from 'socket.io-client';
import type { Logger } from 'pino';
import type { Config } from '#shared/config/config.ts';
import { AGENT_NAMESPACE, type AgentDispatch } from '#shared/contract/agent-events.ts';
import type { LiveKitJoin } from '#shared/contract/socket-events.ts';
import { signAgentToken } from '#shared/auth/agent-token.ts';
import { DeepgramSpeechToText } from './deepgram-speech-to-text.ts';
import { DeepgramTextToSpeech } from './deepgram-text-to-speech.ts';
import { LiveKitTransport } from './livekit-transport.ts';
import type { MediaTransport } from './media-transport.ts';
import type { SpeechToText } from './speech-to-text.ts';
import type { TextToSpeech } from './text-to-speech.ts';
import { SocketConversation, type AgentSocket } from './socket-conversation.ts';
import { VoicePipeline } from './voice-pipeline.ts';

export interface VoiceAgentOptions {
  config: Config;
  logger: Logger;
  /** This agent's name in claims and logs. */
  agentId: string;
  /** Most sessions served at once; default 20. */
  maxSessions?: number;
  /** The room's media for a session; default LiveKitTransport (@livekit/rtc-node). */
  joinRoom?: (join: LiveKitJoin, dispatch: AgentDispatch) => Promise<MediaTransport>;
  /** Default: Deepgram live transcription (DEEPGRAM_API_KEY, DEEPGRAM_BASE_URL, DEEPGRAM_STT_MODEL). */
  speechToText?: () => SpeechToText;
  /** Default: Deepgram speak (DEEPGRAM_TTS_MODEL). */
  textToSpeech?: () => TextToSpeech;
}

interface Served {
  pipeline: VoicePipeline;
  renew: NodeJS.Timeout;
}

export class VoiceAgent {
  private socket: AgentSocket | undefined;
  private readonly served = new Map<string, Served>();
  private readonly maxSessions: number;
  private closing = false;

  constructor(private readonly options: VoiceAgentOptions) {
    this.maxSessions = options.maxSessions ?? 20;
  }

  /** Sessions this agent is serving now. */
  get sessions(): string[] {
    return [...this.served.keys()];
  }

  /** Connects to the gateway; resolves once connected. */
  async start(): Promise<void> {
    const { config } = this.options;
    const socket: AgentSocket = io(`${config.AGENT_GATEWAY_URL}${AGENT_NAMESPACE}`, {
      auth: (callback) => {
        // a fresh token on every (re)connection
        void signAgentToken({ secret: config.JWT_SECRET, audience: config.JWT_AUDIENCE, agentId: this.options.agentId }).then((t) => callback({ token: t }));
      },
      transports: ['websocket'],
    });
    this.socket = socket;
    socket.on('agent:dispatch', (dispatch) => void this.offer(dispatch));
    socket.on('session:ended', ({ sessionId }) => void this.stop(sessionId));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) => reject(error));
    });
  }

  /** Stops every session (releasing the claims) and disconnects. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.served.keys()].map((id) => this.stop(id)));
    this.socket?.disconnect();
  }

  private async offer(dispatch: AgentDispatch): Promise<void> {
    const socket = this.socket;
    if (!socket || this.closing || this.served.has(dispatch.sessionId) || this.served.size >= this.maxSessions) return;
    const { logger } = this.options;
    const log = logger.child({ sessionId: dispatch.sessionId });
    try {
      const claim = await socket.timeout(10_000).emitWithAck('agent:claim', { sessionId: dispatch.sessionId });
      if (!claim.ok || !claim.claimed) return;
      await this.serve(socket, claim.dispatch, claim.livekit, claim.claimTtlMs, log);
    } catch (error) {
      log.error({ err: error }, 'could not serve the session');
      socket.emit('agent:release', { sessionId: dispatch.sessionId }, () => undefined);
    }
  }

  private async serve(socket: AgentSocket, dispatch: AgentDispatch, join: LiveKitJoin, claimTtlMs: number, log: Logger): Promise<void> {
    const { config } = this.options;
    // the agent's own LIVEKIT_URL: inside a deployment it may reach LiveKit by another address than browsers do
    const room = { ...join, url: config.LIVEKIT_URL };
    const transport = this.options.joinRoom ? await this.options.joinRoom(room, dispatch) : await joinLiveKit(room, dispatch, log);
    const apiKey = config.DEEPGRAM_API_KEY;
    const deepgramNeeded = !this.options.speechToText || !this.options.textToSpeech;
    if (deepgramNeeded && !apiKey) {
      await transport.close();
      throw new Error('DEEPGRAM_API_KEY is not set: the agent cannot hear or speak');
    }
    const pipeline = new VoicePipeline({
      transport,
      speechToText:
        this.options.speechToText?.() ??
        new DeepgramSpeechToText({ apiKey: apiKey!, baseUrl: config.DEEPGRAM_BASE_URL, model: config.DEEPGRAM_STT_MODEL, logger: log }),
      textToSpeech:
        this.options.textToSpeech?.() ??
        new DeepgramTextToSpeech({ apiKey: apiKey!, baseUrl: config.DEEPGRAM_BASE_URL, model: config.DEEPGRAM_TTS_MODEL }),
      conversation: new SocketConversation(socket, dispatch.sessionId),
      logger: log,
      messageIdPrefix: `voice-${this.options.agentId.slice(0, 20)}-${Date.now().toString(36)}`,
    });
    const renew = setInterval(() => {
      socket.emit('agent:claim', { sessionId: dispatch.sessionId }, (answer) => {
        if (!answer.ok || !answer.claimed) void this.stop(dispatch.sessionId);
      });
    }, Math.max(1000, Math.floor(claimTtlMs / 3)));
    this.served.set(dispatch.sessionId, { pipeline, renew });
    void pipeline.closed.then(() => this.stop(dispatch.sessionId));
    try {
      await pipeline.start();
    } catch (error) {
      await this.stop(dispatch.sessionId); // closes the pipeline and the room it owns, releases the claim
      throw error;
    }
    log.info('serving the session');
  }

  private async stop(sessionId: string): Promise<void> {
    const served = this.served.get(sessionId);
    if (!served) return;
    this.served.delete(sessionId);
    clearInterval(served.renew);
    await served.pipeline.close();
    this.socket?.emit('agent:release', { sessionId }, () => undefined);
  }
}

/** The real room: @livekit/rtc-node, listening to the user's microphone only. */
async function joinLiveKit(join: LiveKitJoin, dispatch: AgentDispatch, logger: Logger): Promise<MediaTransport> {
  const transport = new LiveKitTransport({ url: join.url, token: join.token, userIdentity: dispatch.userId, logger });
  try {
    await transport.start();
  } catch (error) {
    await transport.close();
    throw error;
  }
  return transport;
}
