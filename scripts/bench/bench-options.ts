/**
 * `parseBenchOptions`: the command line of `npm run bench` into sizes per scenario, with the full defaults the
 * issue asks for and the small `--quick` ones (the whole run under a minute). Unknown flags are an error.
 */
export const SCENARIOS = ['idle', 'chat', 'churn', 'meter', 'settle', 'fanout'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  scenarios: ScenarioName[];
  quick: boolean;
  /** Where bench-results.json goes. */
  jsonPath: string;
  /** Spawn gateways and billing workers with --cpu-prof; profiles land in profileDir. */
  profile: boolean;
  profileDir: string;
  /**
   * Run the scenarios on a private Redis Cluster (3 masters + 3 replicas) and on a private single Redis with the same
   * persistence, the one beside the other (`--cluster`; scenarios churn and meter unless --scenario says otherwise),
   * and churn once more with acknowledgements waiting for a replica (REDIS_ACK_REPLICAS=1).
   */
  cluster: boolean;
  /** Settings (config keys) given to every gateway and billing worker the run starts (`--set KEY=VALUE`). */
  settings: Record<string, string>;
  idle: {
    /** Authenticated connections to hold. */
    connections: number;
    /** Handshakes in flight at once. */
    concurrency: number;
    /** How long the connections are held before memory is read. */
    holdMs: number;
    /** Source addresses 127.0.0.1..127.0.0.n the clients are spread over. */
    sourceAddresses: number;
  };
  chat: {
    /** Active sessions (one user and socket each). */
    sessions: number;
    /** Messages per second over all sessions, for durationMs. */
    rate: number;
    durationMs: number;
    /** Rates of the capacity sweep (ascending; it stops at the first that misses), each held for stepMs. */
    sweepRates: number[];
    stepMs: number;
    /** A sweep step passes when ack p99 stays at or below this. */
    p99LimitMs: number;
  };
  churn: {
    /** Arrival rates of the capacity sweep (users/s, ascending; it stops at the first that misses). */
    arrivalRates: number[];
    /** How long users arrive at each rate (their visits then run to their end). */
    stepMs: number;
    messagesPerUser: number;
    /** Between a user's messages. */
    thinkMs: number;
    /** Distinct users the arrivals take in turn. */
    users: number;
    /** A step passes when message ack p99 and session:start p99 stay at or below these. */
    p99LimitMs: number;
    startP99LimitMs: number;
  };
  meter: {
    sessions: number;
    /** Sessions per user (MAX_OPEN_SESSIONS is set to at least this). */
    perUser: number;
    windowMs: number;
    tickMs: number;
    /** Share of users whose credits run out during the window. */
    exhaustingShare: number;
  };
  settle: {
    sessions: number;
    messages: number;
    perUser: number;
  };
  fanout: {
    users: number;
    /** Actions per second over all users. */
    rate: number;
    durationMs: number;
  };
}

const FULL_SWEEP = [50, 100, 175, 250, 375, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000, 32000];

export function defaultOptions(quick: boolean): BenchOptions {
  if (quick) {
    return {
      scenarios: [...SCENARIOS],
      quick,
      cluster: false,
      jsonPath: 'bench-results.json',
      profile: false,
      profileDir: '.tollgate/bench-profiles',
      settings: {},
      idle: { connections: 300, concurrency: 100, holdMs: 500, sourceAddresses: 4 },
      chat: { sessions: 20, rate: 100, durationMs: 2000, sweepRates: [100, 200], stepMs: 1000, p99LimitMs: 50 },
      churn: { arrivalRates: [2, 4], stepMs: 2000, messagesPerUser: 3, thinkMs: 200, users: 40, p99LimitMs: 50, startP99LimitMs: 100 },
      meter: { sessions: 120, perUser: 5, windowMs: 4000, tickMs: 1000, exhaustingShare: 0.25 },
      settle: { sessions: 20, messages: 3, perUser: 5 },
      fanout: { users: 10, rate: 20, durationMs: 2500 },
    };
  }
  return {
    scenarios: [...SCENARIOS],
    quick,
    cluster: false,
    jsonPath: 'bench-results.json',
    profile: false,
    profileDir: '.tollgate/bench-profiles',
    settings: {},
    idle: { connections: 20_000, concurrency: 200, holdMs: 5000, sourceAddresses: 4 },
    chat: { sessions: 200, rate: 2000, durationMs: 30_000, sweepRates: FULL_SWEEP, stepMs: 5000, p99LimitMs: 50 },
    // the visit: 20 messages 0.5 s apart; 25 users/s ≈ 500 msg/s, 75 ≈ 1,500
    churn: { arrivalRates: [5, 10, 15, 25, 40, 60, 75, 100, 150], stepMs: 20_000, messagesPerUser: 20, thinkMs: 500, users: 4000, p99LimitMs: 50, startP99LimitMs: 100 },
    meter: { sessions: 10_000, perUser: 10, windowMs: 30_000, tickMs: 1000, exhaustingShare: 0.1 },
    settle: { sessions: 1000, messages: 10, perUser: 10 },
    fanout: { users: 200, rate: 60, durationMs: 20_000 },
  };
}

export const USAGE = `npm run bench -- [options]

  --scenario a,b       scenarios to run (${SCENARIOS.join(', ')}; default all)
  --quick              small sizes, the whole run in under a minute
  --cluster            on a private Redis Cluster (3 masters + 3 replicas) beside a private single Redis: churn and
                       meter by default, churn again with acks waiting for a replica; Redis time per shard
  --json <file>        where to write the results (default bench-results.json)
  --profile            run gateways and billing workers with --cpu-prof (profiles in .tollgate/bench-profiles)
  --set KEY=VALUE      a setting for every gateway and billing worker (repeatable), e.g. --set RELAY_LINGER_MS=50
  --connections <n>    idle: connections to hold (default 20000)
  --sessions <n>       sessions of chat, meter and settle, users of fanout (each unless set below)
  --chat-sessions <n>  --meter-sessions <n>  --settle-sessions <n>  --fanout-users <n>
  --rate <n>           chat: messages per second (default 2000)
  --churn-rates a,b    churn: the arrival rates (users/s) of its sweep (default 5,10,15,25,40,60,75,100,150)
  --duration <s>       chat: seconds at that rate (default 30)
  --step <s>           chat: seconds per capacity sweep step (default 5)
  --window <s>         meter: measured seconds (default 30)
  --per-user <n>       meter and settle: sessions per user (default 10)
  --messages <n>       settle: messages per session (default 10)
  --fanout-rate <n>    fanout: actions per second (default 60)
`;

/** Parses argv (without node and the script); throws with the usage on a bad flag. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const options = defaultOptions(quick);
  let sessions: number | undefined;
  const specific: Partial<Record<'chat' | 'meter' | 'settle' | 'fanout', number>> = {};
  const args = [...argv];
  const positive = (flag: string, raw: string | undefined): number => {
    const value = Number(raw);
    if (raw === undefined || !Number.isFinite(value) || value <= 0) throw new Error(`${flag} needs a positive number\n\n${USAGE}`);
    return value;
  };
  while (args.length > 0) {
    const flag = args.shift()!;
    switch (flag) {
      case '--quick':
        break;
      case '--cluster':
        options.cluster = true;
        break;
      case '--profile':
        options.profile = true;
        break;
      case '--set': {
        const setting = args.shift() ?? '';
        const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(setting);
        if (!match) throw new Error(`--set needs KEY=VALUE, got ${JSON.stringify(setting)}\n\n${USAGE}`);
        options.settings[match[1]!] = match[2]!;
        break;
      }
      case '--scenario':
      case '--scenarios': {
        const names = (args.shift() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        for (const name of names) {
          if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario ${name}\n\n${USAGE}`);
        }
        if (names.length === 0) throw new Error(`--scenario needs a list\n\n${USAGE}`);
        options.scenarios = SCENARIOS.filter((s) => names.includes(s));
        break;
      }
      case '--json': {
        const file = args.shift();
        if (!file) throw new Error(`--json needs a file\n\n${USAGE}`);
        options.jsonPath = file;
        break;
      }
      case '--connections':
        options.idle.connections = Math.floor(positive(flag, args.shift()));
        break;
      case '--sessions':
        sessions = Math.floor(positive(flag, args.shift()));
        break;
      case '--chat-sessions':
        specific.chat = Math.floor(positive(flag, args.shift()));
        break;
      case '--meter-sessions':
        specific.meter = Math.floor(positive(flag, args.shift()));
        break;
      case '--settle-sessions':
        specific.settle = Math.floor(positive(flag, args.shift()));
        break;
      case '--fanout-users':
        specific.fanout = Math.floor(positive(flag, args.shift()));
        break;
      case '--rate':
        options.chat.rate = positive(flag, args.shift());
        break;
      case '--churn-rates': {
        const rates = (args.shift() ?? '').split(',').filter(Boolean).map((r) => positive(flag, r));
        if (rates.length === 0) throw new Error(`--churn-rates needs a list\n\n${USAGE}`);
        options.churn.arrivalRates = rates.sort((x, y) => x - y);
        break;
      }
      case '--duration':
        options.chat.durationMs = positive(flag, args.shift()) * 1000;
        break;
      case '--step':
        options.chat.stepMs = positive(flag, args.shift()) * 1000;
        break;
      case '--window':
        options.meter.windowMs = positive(flag, args.shift()) * 1000;
        break;
      case '--per-user': {
        const perUser = Math.floor(positive(flag, args.shift()));
        options.meter.perUser = perUser;
        options.settle.perUser = perUser;
        break;
      }
      case '--messages':
        options.settle.messages = Math.floor(positive(flag, args.shift()));
        break;
      case '--fanout-rate':
        options.fanout.rate = positive(flag, args.shift());
        break;
      case '--help':
      case '-h':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown option ${flag}\n\n${USAGE}`);
    }
  }
  if (options.cluster && !argv.some((flag) => flag === '--scenario' || flag === '--scenarios')) options.scenarios = ['churn', 'meter'];
  options.chat.sessions = specific.chat ?? sessions ?? options.chat.sessions;
  options.meter.sessions = specific.meter ?? sessions ?? options.meter.sessions;
  options.settle.sessions = specific.settle ?? sessions ?? options.settle.sessions;
  options.fanout.users = specific.fanout ?? sessions ?? options.fanout.users;
  return options;
}
