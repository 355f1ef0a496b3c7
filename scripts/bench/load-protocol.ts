/**
 * The commands the bench sends to its load process over the IPC channel, with their parameters and results.
 * A pool is a named set of socket.io clients the load process holds between commands (client i is user i's).
 * Times the load process measures are its own `performance.now()`, except where a field says epoch ms.
 */
import type { Summary } from './latency-stats.ts';

export interface ConnectParams {
  pool: string;
  url: string;
  userIds: string[];
  secret: string;
  audience: string;
  /** Connects in flight at once. */
  concurrency: number;
  /** Source addresses to spread the clients over (each has its own ephemeral port range). */
  localAddresses: string[];
  /** A connect that takes longer fails. */
  timeoutMs: number;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  /** From the first connect started to the last one finished. */
  durationMs: number;
  /** Failure messages and how often each occurred. */
  errors: Record<string, number>;
}

export interface StartSessionsParams {
  pool: string;
  cloneId: string;
  /** Sessions each client starts (a number for all, or one per client). */
  perClient: number | number[];
  type: 'chat' | 'voice' | 'video';
  concurrency: number;
}

export interface StartedSession {
  sessionId: string;
  userId: string;
  client: number;
  /** The session's startTime (epoch ms, Redis server time). */
  startTime: number;
}

export interface StartSessionsResult {
  sessions: StartedSession[];
  failed: number;
  errors: Record<string, number>;
  durationMs: number;
}

export interface ChatRunParams {
  pool: string;
  /** Messages per second over all sessions. */
  rate: number;
  durationMs: number;
  /** Sends beyond this many unanswered ones are not made (counted as shed), so an overloaded server is not buried. */
  maxOutstanding: number;
  ackTimeoutMs: number;
  /** The server answers each message with a streamed reply (`message:completed`); wait this long for them after. */
  replyWaitMs: number;
  expectReplies: boolean;
  label: string;
}

export interface ChatRunResult {
  offeredRate: number;
  /** Acknowledged ok per second of the run. */
  achievedRate: number;
  sent: number;
  acked: number;
  failed: number;
  shed: number;
  timedOut: number;
  errors: Record<string, number>;
  /** Ack time − the send's scheduled instant (open loop: includes any lateness of the sender). */
  ack: Summary;
  /** `message:completed` of the reply − the send's scheduled instant. */
  reply: Summary;
  repliesMissing: number;
  /** CPU of the load process over the run (cores). */
  loadCpuCores: number;
}

export interface ChurnRunParams {
  url: string;
  /** Users drawn in turn, one per arrival (enough that a user's visits rarely overlap). */
  userIds: string[];
  secret: string;
  audience: string;
  cloneId: string;
  /** Users arriving per second, for durationMs. */
  arrivalRate: number;
  durationMs: number;
  messagesPerUser: number;
  /** Between a user's messages. */
  thinkMs: number;
  /** Arrivals beyond this many users still visiting are shed (counted). */
  maxActiveUsers: number;
  ackTimeoutMs: number;
  /** The server answers each message with a streamed reply; a user waits this long for the last one before leaving. */
  replyWaitMs: number;
  expectReplies: boolean;
  label: string;
}

export interface ChurnRunResult {
  offeredArrivalRate: number;
  offeredMessageRate: number;
  /** Messages acknowledged ok per second of arrivals (the offered rate when every admitted message was acked). */
  achievedMessageRate: number;
  arrivals: number;
  completedVisits: number;
  failedVisits: number;
  shed: number;
  sent: number;
  acked: number;
  /** By phase and code (`message: rate_limited`, `start: timeout`, …). */
  errors: Record<string, number>;
  /** Connected − scheduled arrival (the handshake, and any lateness of the sender). */
  connect: Summary;
  /** Acks of `session:start`, `message:send`, `session:end`, from their emit. */
  start: Summary;
  ack: Summary;
  end: Summary;
  /** `message:completed` of the reply − the message's emit. */
  reply: Summary;
  /** Sessions ended, with the instant their end was acknowledged (epoch ms), for end → settled. */
  ended: Array<{ sessionId: string; endedAt: number }>;
  loadCpuCores: number;
}

export interface MeterWindowParams {
  pool: string;
  durationMs: number;
  tickMs: number;
}

export interface MeterWindowResult {
  /** Per session: arrival of its k-th tick in the window − (its best phase + k × tickMs). */
  lateness: Summary;
  /** Gap between consecutive ticks of a session − tickMs. */
  gapExcess: Summary;
  sessionsTicked: number;
  ticks: number;
  /** Ticks a session active for the whole window should have got but did not. */
  missingTicks: number;
}

export interface EndedSession {
  sessionId: string;
  reason: string;
  /** endTime of the session:ended payload (epoch ms). */
  endTime: number;
  /** When the client received it (epoch ms). */
  receivedAt: number;
}

export interface SendMessagesParams {
  pool: string;
  messagesPerSession: number;
  concurrency: number;
  /** Wait until each message's reply completed. */
  replyWaitMs: number;
}

export interface SendMessagesResult {
  sent: number;
  failed: number;
  replies: number;
  durationMs: number;
  errors: Record<string, number>;
}

export interface EndSessionsResult {
  ended: number;
  failed: number;
  errors: Record<string, number>;
  /** From the first session:end emitted to the last ack. */
  durationMs: number;
  /** Epoch ms when the first session:end was emitted. */
  firstEmitAt: number;
}

export interface FanoutRunParams {
  acting: string;
  observer: string;
  /** Actions per second over all users (pause, resume, message in turn per user). */
  rate: number;
  durationMs: number;
  /** An action whose events have not all arrived after this is counted as lost. */
  timeoutMs: number;
}

export interface FanoutRunResult {
  actions: number;
  lost: number;
  skipped: number;
  /** session:updated after a pause/resume: on the acting socket (same gateway), on the other gateway's socket. */
  updatedSame: Summary;
  updatedCross: Summary;
  /** message:completed of the reply to a message sent on the acting socket: same gateway, other gateway. */
  completedSame: Summary;
  completedCross: Summary;
  /** Arrival on the other gateway − arrival on the acting one, per event. */
  crossMinusSame: Summary;
  errors: Record<string, number>;
}

export interface LoadCommands {
  connect: { params: ConnectParams; result: ConnectResult };
  disconnect: { params: { pool: string }; result: { closed: number; durationMs: number } };
  poolStats: { params: { pool: string }; result: { connected: number; disconnects: number } };
  startSessions: { params: StartSessionsParams; result: StartSessionsResult };
  /** For the baseline: `perClient` made-up session ids per client, so a chat run has sessions to name. */
  fakeSessions: { params: { pool: string; perClient: number }; result: { sessions: number } };
  chatRun: { params: ChatRunParams; result: ChatRunResult };
  /** Users coming and going (its own sockets, not a pool's). */
  churnRun: { params: ChurnRunParams; result: ChurnRunResult };
  meterWindow: { params: MeterWindowParams; result: MeterWindowResult };
  /** session:ended events the pool's clients got, and the sessions the server paused on its own. */
  endedSessions: { params: { pool: string }; result: { ended: EndedSession[]; paused: string[] } };
  sendMessages: { params: SendMessagesParams; result: SendMessagesResult };
  endSessions: { params: { pool: string }; result: EndSessionsResult };
  fanoutRun: { params: FanoutRunParams; result: FanoutRunResult };
  /** Open file limit and descriptors in use of the load process. */
  fdUsage: { params: Record<string, never>; result: { open: number; limit: number } };
}

export type LoadCommandName = keyof LoadCommands;

export type ParentMessage = { id: number; command: LoadCommandName; params: unknown };
export type ChildMessage =
  | { kind: 'result'; id: number; result: unknown }
  | { kind: 'error'; id: number; message: string }
  | { kind: 'progress'; text: string };
