/**
 * The one place that reads the environment: every setting parsed once, validated with zod, frozen.
 * A bad value stops the process with a message naming the variable (see `loadConfig`).
 */
import { z } from 'zod';
import { parseMoney, parseRatio, type Ratio, type Units } from '../money/money.ts';

const DEV_JWT_SECRET = 'tollgate-dev-secret-change-me-0123456789';

const integer = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
// keys are fetched from it: a `file:` or `data:` URL is a mistake, not a key set
const httpUrl = z.string().url().refine((url) => /^https?:\/\//i.test(url), 'an http(s) URL');
const decimal = (fallback: string) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'a non-negative decimal such as 0.20')
    .default(fallback);

/** Each variable, its default and what it means. README's configuration table mirrors this. */
export const configSchema = z.object({
  /** `production` refuses the built-in development JWT secret. */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** Gateway HTTP + Socket.IO port. */
  PORT: integer(3000),
  /** Billing worker HTTP port (health and metrics). */
  BILLING_PORT: integer(3001),
  /** Interface both processes listen on. */
  HOST: z.string().default('0.0.0.0'),
  /**
   * `npm start` only: `auto` embeds Postgres (PGlite) and/or Redis (redis-server from PATH) when DATABASE_URL /
   * REDIS_URL are unset and nothing answers on the defaults; `always` embeds both; `never` never does.
   */
  EMBEDDED_SERVICES: z.enum(['auto', 'always', 'never']).default('auto'),
  /** Where `npm start` keeps embedded services' data. */
  DATA_DIR: z.string().default('.tollgate'),
  /** Postgres connection; the database is created if missing. */
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/tollgate'),
  /** Redis connection for live session state and the billing queue. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /**
   * A Redis Cluster instead of one Redis: some of its nodes, `host:port,host:port` (the rest are discovered).
   * REDIS_URL's user, password and `rediss:` then apply to every node; its host is not used.
   */
  REDIS_CLUSTER_NODES: z.string().regex(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, 'host:port,host:port,...').optional(),
  /**
   * How many replicas must hold a user message or a clone reply before it is acknowledged (Redis WAIT on the master
   * that took it): with 1, a master's failover cannot lose an acknowledged message. 0: acknowledged once the master
   * has it (one Redis, or replicas not trusted with it).
   */
  REDIS_ACK_REPLICAS: integer(0, 0),
  /** How long a write waits for REDIS_ACK_REPLICAS replicas before it is answered `unavailable` (retried, found, waited again). */
  REDIS_ACK_TIMEOUT_MS: integer(500, 1),
  /** Prefix of every Redis key Tollgate writes (live state and queue). */
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('tg'),
  /** HS256 secret of the Supabase-style access tokens (Supabase's legacy JWT secret) and of the voice agents' tokens. */
  JWT_SECRET: z.string().min(32, 'at least 32 characters').default(DEV_JWT_SECRET),
  /** Required `aud` of access tokens. */
  JWT_AUDIENCE: z.string().default('authenticated'),
  /**
   * The Supabase project (`https://<ref>.supabase.co`) whose signing keys access tokens may also be signed with
   * (ES256, RS256, EdDSA): verified against the key set it publishes at `/auth/v1/.well-known/jwks.json`, beside
   * HS256 tokens with JWT_SECRET. Unset (and SUPABASE_JWKS_URL unset): HS256 with JWT_SECRET only. Use https:
   * whoever can change the key set can sign any token.
   */
  SUPABASE_URL: httpUrl.optional(),
  /** The signing keys' JWKS URL, when it is not SUPABASE_URL's (a self-hosted Supabase, a proxy); wins over SUPABASE_URL. */
  SUPABASE_JWKS_URL: httpUrl.optional(),
  /** Comma-separated browser origins allowed to connect; `*` allows any. */
  ALLOWED_ORIGINS: z.string().default('*'),
  /** Seconds of time at the clone's rate the user must be able to pay to start a session. */
  MIN_START_SECONDS: integer(60),
  /** Most sessions (active or paused) one user may have open at once. */
  MAX_OPEN_SESSIONS: integer(5, 1),
  /** Messages one user may send per minute, across every gateway (then `rate_limited`). */
  MESSAGE_RATE_PER_MIN: integer(30, 1),
  /** Longest user message, in characters. */
  MAX_MESSAGE_CHARS: integer(4000, 1),
  /** Sockets one user may hold open at once, across every gateway (then `connect_error` `too_many_connections`). */
  MAX_CONNECTIONS_PER_USER: integer(10, 1),
  /**
   * How often a gateway re-checks its sockets' access tokens: a socket whose token has expired, or whose user no
   * longer exists, is disconnected (the client reconnects with a fresh token).
   */
  TOKEN_RECHECK_MS: integer(60_000, 50),
  /** How long a connection slot outlives its gateway's last renewal (a crashed gateway's sockets stop counting then). */
  CONNECTION_LEASE_MS: integer(60_000, 100),
  /** Client events one socket may send per second, sustained (then `rate_limited`). */
  EVENTS_PER_SECOND: integer(20, 1),
  /** Client events one socket may send in a burst. */
  EVENT_BURST: integer(40, 1),
  /** How often each gateway looks for due events (exhaustion, idle pause, timeout). */
  DUE_POLL_MS: integer(100, 10),
  /** Interval of `meter:tick` events. */
  METER_TICK_MS: integer(1000, 50),
  /** `credits:low` is sent once when less than this many seconds are left. */
  LOW_BALANCE_SECONDS: integer(120),
  /** An active chat session with no user message for this long pauses. */
  IDLE_PAUSE_MS: integer(300_000, 1),
  /** A paused session left for this long ends (reason `idle_timeout`). */
  PAUSED_END_MS: integer(600_000, 1),
  /** Price of 1000 AI tokens, in credits (decimal). */
  AI_PRICE_PER_1K_TOKENS: decimal('0'),
  /** Share of each session total kept by the platform (decimal, 0..1). */
  PLATFORM_FEE_RATE: decimal('0.20').refine((v) => Number(v) <= 1, 'at most 1'),
  /**
   * A voice/video session is metered while the user and the clone's agent are both in the room: a user whom no agent
   * joins within this (or whose agent left and none took over) is told, and the session ends (`agent_timeout`) with
   * nothing charged for the wait.
   */
  AGENT_JOIN_TIMEOUT_MS: integer(30_000, 100),
  /**
   * A voice/video conversation in which neither side has spoken for this long (the agent's speech-to-text and the
   * clone's own speech tell the gateway) pauses like an idle chat and tells the user; speaking again resumes it. 0: never.
   */
  VOICE_IDLE_MS: integer(120_000, 0),
  /**
   * How often one gateway asks LiveKit's RoomService who is in the room of every active voice/video session (and once
   * when a gateway starts): a user no longer there pauses the session at the last instant their presence was proved,
   * a room that no longer exists ends it. A lost `participant_left` or `room_finished` charges at most this long.
   */
  ROOM_CHECK_MS: integer(30_000, 100),
  /**
   * A LiveKit webhook's instant further than this from Redis time at its receipt (LiveKit's clock running ahead or
   * behind, or a very late delivery) is not trusted: the event applies at its receipt, and is logged. Every webhook's
   * skew is in /metrics (gateway_livekit_webhook_skew_seconds).
   */
  WEBHOOK_SKEW_MS: integer(10_000, 1),
  /** Stripe secret key (`sk_…`); without it credit purchases answer `unavailable` (there is nothing to sell through). */
  STRIPE_SECRET_KEY: z.string().optional(),
  /** The Stripe webhook endpoint's signing secret (`whsec_…`); without it every webhook is refused. */
  STRIPE_WEBHOOK_SECRET: z.string().optional(),
  /** Stripe's API (tests point it at a local server that speaks Stripe's wire format). */
  STRIPE_API_URL: httpUrl.default('https://api.stripe.com'),
  /**
   * The credit packs on sale, `id:price:credits,…`: the price in CREDIT_CURRENCY's minor units (cents), the credits a
   * decimal with up to four places.
   */
  CREDIT_PACKS: z
    .string()
    .regex(/^\s*[a-z0-9_-]{1,32}:\d{1,9}:\d{1,9}(\.\d{1,4})?\s*(,\s*[a-z0-9_-]{1,32}:\d{1,9}:\d{1,9}(\.\d{1,4})?\s*)*$/, 'id:price:credits,…')
    .default('small:500:50,medium:2000:220,large:5000:600'),
  /**
   * The paid subscription tiers, `tier:stripePriceId:monthlyCredits:discount,…`: the Stripe recurring price that makes a
   * user that tier, the credits granted each time its invoice is paid, and the discount on every clone's per-minute
   * rate (0..1), frozen into a session's rate when it starts. `free` is everyone else.
   */
  SUBSCRIPTION_PLANS: z
    .string()
    .regex(/^\s*(pro|enterprise):[\w-]{1,100}:\d{1,9}(\.\d{1,4})?:[01](\.\d{1,4})?\s*(,\s*(pro|enterprise):[\w-]{1,100}:\d{1,9}(\.\d{1,4})?:[01](\.\d{1,4})?\s*)*$/, 'tier:priceId:monthlyCredits:discount,… (tiers pro, enterprise)')
    .default('pro:price_pro_monthly:300:0.10,enterprise:price_enterprise_monthly:3000:0.20'),
  /** The least a creator is paid in one payout (credits, decimal): less stays owed until the next run. */
  PAYOUT_MINIMUM: decimal('50'),
  /** What a creator's credit is worth in CREDIT_CURRENCY's minor units (a divisor of 10,000: 100 = one credit, one unit). */
  PAYOUT_MINOR_PER_CREDIT: z.coerce
    .number()
    .int()
    .min(1)
    .refine((n) => 10_000 % n === 0, 'a divisor of 10000')
    .default(100),
  /** ISO currency of the packs' prices (lowercase, as Stripe writes it). */
  CREDIT_CURRENCY: z.string().regex(/^[a-z]{3}$/, 'a lowercase ISO currency code').default('usd'),
  /** Where Checkout sends a buyer who paid (Stripe replaces {CHECKOUT_SESSION_ID}). */
  CHECKOUT_SUCCESS_URL: httpUrl.default('http://localhost:3000/credits/thanks?session_id={CHECKOUT_SESSION_ID}'),
  /** Where Checkout sends a buyer who turned back. */
  CHECKOUT_CANCEL_URL: httpUrl.default('http://localhost:3000/credits'),
  /** OpenAI key; without it a built-in offline responder answers. */
  OPENAI_API_KEY: z.string().optional(),
  /** OpenAI-compatible endpoint (tests point it at a local server). */
  OPENAI_BASE_URL: z.string().url().optional(),
  /** Chat model of the clone replies. */
  OPENAI_MODEL: z.string().default('gpt-4o-mini'),
  /** How many recent session messages go to the model as context. */
  CONTEXT_MESSAGES: integer(20, 1),
  /** No gateway has seen a user's sockets for this long: their active chats pause where they were last seen. */
  PRESENCE_TIMEOUT_MS: integer(5000, 100),
  /** How often an active session records a checkpoint (active ms, cost so far) in Postgres. */
  CHECKPOINT_MS: integer(15_000, 100),
  /** A gateway's claim on a user's due events; a dead gateway's claims pass to another after this. */
  LEASE_MS: integer(10_000, 100),
  /** Outbox entries older than this are relayed by the recovery sweep (their writer is presumed dead). */
  OUTBOX_GRACE_MS: integer(5000, 0),
  /**
   * How often one process (of all) walks the Redis keyspace for outboxes the index missed (a process that died
   * between a script and its index write); every sweep reads the index itself.
   */
  OUTBOX_SCAN_MS: integer(900_000, 1000),
  /** How often gateways sweep outboxes and the billing worker reconciles Postgres with Redis. */
  RECONCILE_MS: integer(30_000, 100),
  /** How long an ended session's live state stays in Redis for `session:get`. */
  ENDED_STATE_TTL_MS: integer(86_400_000, 1000),
  /** Billing jobs processed at once by one worker. */
  BILLING_CONCURRENCY: integer(8, 1),
  /**
   * How long a billing worker's hold on a running job lasts unless renewed (BullMQ lockDuration; also how often the
   * workers look for jobs whose holder stopped renewing, stalledInterval). A frozen worker's jobs run elsewhere after
   * this; every job is idempotent, so the frozen one finishing them too changes nothing.
   */
  BILLING_LOCK_MS: integer(30_000, 500),
  /** OpenAI embedding model of the knowledge base (used when OPENAI_API_KEY is set). */
  EMBEDDING_MODEL: z.string().min(1).default('text-embedding-3-small'),
  /** Length of the built-in local embeddings (`local-hash-v1`, used without OPENAI_API_KEY). */
  EMBEDDING_DIMENSIONS: integer(256, 8),
  /** Most tokens (o200k_base) in one knowledge-base chunk. */
  CHUNK_TOKENS: integer(400, 16),
  /** Tokens a chunk repeats from the end of the one before it; less than CHUNK_TOKENS. */
  CHUNK_OVERLAP_TOKENS: integer(60, 0),
  /** Passages retrieved from a clone's knowledge base per question. */
  RAG_TOP_K: integer(5, 1),
  /** Directory that relative `documents.file_path`s are resolved under. */
  UPLOAD_DIR: z.string().min(1).default('.tollgate/uploads'),
  /** Largest document file that is ingested, in bytes (default 20 MiB). */
  MAX_UPLOAD_BYTES: integer(20_971_520, 1),
  /** Documents one billing process ingests at once. */
  INGEST_CONCURRENCY: integer(2, 1),
  /** Most characters of text extracted from one document; more fails it (a PDF's extraction stops there). */
  INGEST_MAX_CHARS: integer(2_000_000, 1),
  /** Most chunks one document is split into; more fails it. */
  INGEST_MAX_CHUNKS: integer(1000, 1),
  /** Longest one document's text extraction may run (in a process of its own, then killed; the document fails). */
  INGEST_TIMEOUT_MS: integer(60_000, 100),
  /** Memory one document's text extraction may use, in MiB (its process's heap cap, and its resident growth); more fails it. */
  INGEST_MEMORY_MB: integer(256, 32),
  /** LiveKit server URL handed to voice/video clients and used by the agent (`livekit-server --dev` default). */
  LIVEKIT_URL: z.string().url().default('ws://127.0.0.1:7880'),
  /** LiveKit HTTP API (RoomService); default: LIVEKIT_URL with http(s). */
  LIVEKIT_API_URL: z.string().url().optional(),
  /** LiveKit API key: signs room tokens, verifies webhooks (`livekit-server --dev`: devkey). */
  LIVEKIT_API_KEY: z.string().min(1).default('devkey'),
  /** LiveKit API secret (`livekit-server --dev`: secret; production refuses the dev one). */
  LIVEKIT_API_SECRET: z.string().min(1).default('secret'),
  /** Lifetime of a room token, in seconds (a rejoin asks `session:token` for a new one). */
  LIVEKIT_TOKEN_TTL: integer(600, 10),
  /** A voice/video session whose user never joins its room within this ends with nothing charged. */
  JOIN_TIMEOUT_MS: integer(120_000, 100),
  /** Deepgram key of the voice agent (speech-to-text and text-to-speech). */
  DEEPGRAM_API_KEY: z.string().optional(),
  /** Deepgram API base URL (tests point it at a local server speaking Deepgram's format). */
  DEEPGRAM_BASE_URL: z.string().url().default('https://api.deepgram.com'),
  /** Deepgram live speech-to-text model. */
  DEEPGRAM_STT_MODEL: z.string().min(1).default('nova-3'),
  /** Deepgram text-to-speech voice. */
  DEEPGRAM_TTS_MODEL: z.string().min(1).default('aura-2-thalia-en'),
  /** Gateway the voice agent connects to (Socket.IO, with an agent token). */
  AGENT_GATEWAY_URL: z.string().url().default('http://127.0.0.1:3000'),
  /**
   * Longest an HTTP request may take to arrive, headers and body, on both processes (then 408 and the connection is
   * closed). Long-lived Socket.IO connections are not requests in progress and are not cut.
   */
  HTTP_REQUEST_TIMEOUT_MS: integer(300_000, 100),
  /**
   * Slowest average rate a request body may arrive at, in bytes per second, after the first HTTP_UPLOAD_GRACE_MS
   * (then 408 and the connection is closed); 0: no minimum.
   */
  HTTP_MIN_UPLOAD_BYTES_PER_SEC: integer(1024, 0),
  /** How long a request body may take before HTTP_MIN_UPLOAD_BYTES_PER_SEC applies to it. */
  HTTP_UPLOAD_GRACE_MS: integer(10_000, 0),
  /** When set, `GET /metrics` on both processes requires `Authorization: Bearer <METRICS_TOKEN>` (else 401). */
  METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  /** How long a scrape of `/metrics` reuses the counts it read from Postgres and the queue (0: read on every scrape). */
  METRICS_CACHE_MS: integer(5000, 0),
  /**
   * How long billing facts nobody waits for (messages, replies, starts, ends, checkpoints) may wait on a gateway to
   * share one queue write with others: fewer, fuller `fact-batch` jobs and billing transactions. They are safe in
   * the user's outbox meanwhile (docs/performance.md: 20 → 50 ms took Postgres CPU −30 % in the churn scenario; 50 → 200
   * ms Redis per message −20 % and billing CPU −65 %, a session settled ~150 ms later).
   */
  RELAY_LINGER_MS: integer(200, 0),
  /**
   * Admission control (gateway): past any of these limits a gateway refuses new handshakes (of users with no open
   * session) and `session:start` with `overloaded` and a retry hint, and `/readyz` answers 503, until every signal has
   * been back under its limit for ADMISSION_CALM_MS. 0 turns a signal off. Event-loop delay is its 90th percentile
   * over each ADMISSION_SAMPLE_MS; replies waiting are replies queued for a slot; Redis is a command's round trip on
   * the live-state connection.
   */
  ADMISSION_EVENT_LOOP_MS: integer(150, 0),
  ADMISSION_REPLIES_WAITING: integer(256, 0),
  ADMISSION_REDIS_MS: integer(250, 0),
  ADMISSION_SAMPLE_MS: integer(500, 10),
  ADMISSION_CALM_MS: integer(2000, 0),
  /** The retry hint of an `overloaded` answer: each is between half and 1.5 times this (spreads the retries). */
  ADMISSION_RETRY_MS: integer(2000, 1),
  /** pino log level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type RawConfig = z.infer<typeof configSchema>;

export interface Config extends RawConfig {
  /** AI_PRICE_PER_1K_TOKENS in money units. */
  readonly aiPricePer1kTokens: Units;
  /** PLATFORM_FEE_RATE as an exact ratio. */
  readonly platformFeeRate: Ratio;
  /** Where the access tokens' signing keys are published (SUPABASE_JWKS_URL, else SUPABASE_URL's); undefined: HS256 only. */
  readonly jwksUrl: string | undefined;
  /** CREDIT_PACKS parsed, by id. */
  readonly creditPacks: ReadonlyMap<string, CreditPack>;
  /** SUBSCRIPTION_PLANS parsed, by tier. */
  readonly subscriptionPlans: ReadonlyMap<PaidTier, SubscriptionPlan>;
  /** ALLOWED_ORIGINS parsed; `true` means any origin. */
  readonly allowedOrigins: true | string[];
  /** The variables the environment set (the rest are defaults): `npm start` embeds services only for unset ones. */
  readonly explicitlySet: ReadonlySet<string>;
}

/** A credit pack on sale: what it costs (minor units of CREDIT_CURRENCY) and the credits it grants. */
export interface CreditPack {
  id: string;
  priceMinor: bigint;
  credits: Units;
}

/** `id:price:credits,…` (validated by the schema) → packs by id; a repeated id is a mistake. */
export function parseCreditPacks(list: string): ReadonlyMap<string, CreditPack> {
  const packs = new Map<string, CreditPack>();
  for (const entry of list.split(',').map((e) => e.trim()).filter(Boolean)) {
    const [id, price, credits] = entry.split(':') as [string, string, string];
    if (packs.has(id)) throw new ConfigError(`invalid configuration:\n  CREDIT_PACKS: pack ${id} is listed twice`);
    const pack = { id, priceMinor: BigInt(price), credits: parseMoney(credits) };
    if (pack.priceMinor <= 0n || pack.credits <= 0n) throw new ConfigError(`invalid configuration:\n  CREDIT_PACKS: pack ${id} must cost and grant more than 0`);
    packs.set(id, pack);
  }
  return packs;
}

export type PaidTier = 'pro' | 'enterprise';

/** A paid tier: the Stripe price that makes a user it, the credits each paid invoice grants, the rate discount. */
export interface SubscriptionPlan {
  tier: PaidTier;
  priceId: string;
  monthlyCredits: Units;
  discount: Ratio;
}

/** `tier:priceId:credits:discount,…` (validated by the schema) → plans by tier. */
export function parseSubscriptionPlans(list: string): ReadonlyMap<PaidTier, SubscriptionPlan> {
  const plans = new Map<PaidTier, SubscriptionPlan>();
  for (const entry of list.split(',').map((e) => e.trim()).filter(Boolean)) {
    const [tier, priceId, credits, discount] = entry.split(':') as [PaidTier, string, string, string];
    if (plans.has(tier)) throw new ConfigError(`invalid configuration:\n  SUBSCRIPTION_PLANS: tier ${tier} is listed twice`);
    if (Number(discount) > 1) throw new ConfigError(`invalid configuration:\n  SUBSCRIPTION_PLANS: ${tier}'s discount is above 1`);
    plans.set(tier, { tier, priceId, monthlyCredits: parseMoney(credits), discount: parseRatio(discount) });
  }
  return plans;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment (or a given record) into a frozen config; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Readonly<Config> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const raw = parsed.data;
  if (raw.NODE_ENV === 'production' && raw.JWT_SECRET === DEV_JWT_SECRET) {
    throw new ConfigError('invalid configuration:\n  JWT_SECRET: must be set in production');
  }
  if (raw.NODE_ENV === 'production' && raw.LIVEKIT_API_SECRET === 'secret') {
    throw new ConfigError('invalid configuration:\n  LIVEKIT_API_SECRET: must be set in production');
  }
  if (raw.CHUNK_OVERLAP_TOKENS >= raw.CHUNK_TOKENS) {
    throw new ConfigError('invalid configuration:\n  CHUNK_OVERLAP_TOKENS: must be less than CHUNK_TOKENS');
  }
  const origins = raw.ALLOWED_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean);
  return Object.freeze({
    ...raw,
    aiPricePer1kTokens: parseMoney(raw.AI_PRICE_PER_1K_TOKENS),
    platformFeeRate: parseRatio(raw.PLATFORM_FEE_RATE),
    jwksUrl: raw.SUPABASE_JWKS_URL ?? (raw.SUPABASE_URL ? `${raw.SUPABASE_URL.replace(/\/+$/, '')}/auth/v1/.well-known/jwks.json` : undefined),
    allowedOrigins: origins.includes('*') ? true : origins,
    creditPacks: parseCreditPacks(raw.CREDIT_PACKS),
    subscriptionPlans: parseSubscriptionPlans(raw.SUBSCRIPTION_PLANS),
    explicitlySet: new Set(Object.keys(cleaned).filter((name) => name in configSchema.shape)),
  });
}

/** The environment's config with some variables replaced (`npm start` pointing at services it started). */
export function loadConfigWith(overrides: Record<string, string>): Readonly<Config> {
  return loadConfig({ ...process.env, ...overrides });
}

/** For process entry points: load the config or print the problem and exit 1. */
export function loadConfigOrExit(): Readonly<Config> {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
}
