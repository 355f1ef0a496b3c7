/**
 * Whether an error says Redis or Postgres did not answer — refused, dropped, restarting, loading, read-only after a
 * failover — rather than that the request was wrong or the code is: such a request did nothing and may be retried.
 * Read from the error's class, code and the drivers' fixed messages (ioredis, pg, pg-pool).
 */

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN', 'NR_CLOSED']);

/** ioredis's own errors when the connection is gone, and Redis's answers while it cannot serve. */
const REDIS_MESSAGES = [
  /^Connection is closed\.?$/,
  /^Stream isn't writeable/,
  /^Reached the max retries per request limit/,
  /^LOADING /,
  /^READONLY /,
  /^MASTERDOWN /,
  /^CLUSTERDOWN /,
  /^TRYAGAIN /,
  // a node that stopped serving the slot (a failover) and a client that could not follow it in time
  /^MOVED /,
  /^ASK /,
  // too few replicas confirmed a write in time (confirmReplicated; Redis's own min-replicas refusal)
  /^NOREPLICAS /,
  // ioredis's cluster client when no node serves the slot (a failover longer than its retries) or none answers
  /^Too many Cluster redirections/,
  /^Failed to refresh slots cache/,
  /^None of startup nodes is available/,
  /^Cluster isn't ready/,
  /^BUSY /,
  /^Command timed out$/,
  // auto-pipelined commands in flight when the connection closed (Redis died): they may or may not have run
  /^Command aborted due to connection close$/,
];

/** PostgreSQL SQLSTATEs of a server shutting down, starting or unreachable (class 08 and 57P0x). */
const POSTGRES_STATES = /^(08\d{3}|57P0[1-4]|53300)$/;
const POSTGRES_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Cannot use a pool after calling end on the pool$/,
  /^Client was closed and is not queryable$/,
];

export function dependencyFailure(error: unknown): 'redis' | 'postgres' | undefined {
  if (!(error instanceof Error)) return undefined;
  const { name, message } = error;
  const code = (error as { code?: unknown }).code;
  if (name === 'MaxRetriesPerRequestError' || REDIS_MESSAGES.some((pattern) => pattern.test(message))) return 'redis';
  // pg's DatabaseError is named 'error': its SQLSTATE says it all
  if (typeof code === 'string' && POSTGRES_STATES.test(code)) return 'postgres';
  if (POSTGRES_MESSAGES.some((pattern) => pattern.test(message))) return 'postgres';
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    // a socket error from either driver: which one, from the stack it was raised through
    return /ioredis/.test(error.stack ?? '') ? 'redis' : 'postgres';
  }
  return undefined;
}
