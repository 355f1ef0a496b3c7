/**
 * The cap on one user's open sockets (MAX_CONNECTIONS_PER_USER), across every gateway: each socket holds a slot, a
 * member of the user's sorted set in Redis (connectionsKey) scored by when its lease ends. The handshake takes a slot
 * atomically (refused at the cap), a disconnect gives it back, and the gateway holding the socket renews its lease
 * every third of `leaseMs`; the slots of a gateway that died lapse with their leases, without anyone cleaning up.
 */
import type { RedisClient } from '#shared/live-state/redis-client.ts';
import type { Logger } from 'pino';
import { connectionsKey } from '#shared/live-state/keys.ts';
import { runScript } from '#shared/live-state/lua-scripts.ts';

export interface ConnectionSlotsOptions {
  /** Auto-pipelined: a renewal's many scripts go out in one write per Redis node (a pipeline cannot span nodes). */
  redis: RedisClient;
  /** REDIS_PREFIX. */
  prefix: string;
  /** Most sockets one user may hold (MAX_CONNECTIONS_PER_USER). */
  max: number;
  /**
   * How long a slot outlives its gateway's last renewal (CONNECTION_LEASE_MS). Renewing costs one script call per
   * connected user every third of it: a lease of seconds meant thousands of calls a second, and memory, for idle sockets.
   */
  leaseMs: number;
  logger: Logger;
}

/** Users whose leases are renewed at once (then the next batch). */
const RENEW_BATCH = 500;

export class ConnectionSlots {
  /** userId → ids of the user's sockets on this gateway (their leases are renewed here). */
  private readonly held = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;

  constructor(private readonly options: ConnectionSlotsOptions) {
  }

  /** Takes a slot for a connecting socket; false when the user already holds `max` sockets (on any gateway). */
  async take(userId: string, socketId: string): Promise<boolean> {
    const { prefix, max, leaseMs } = this.options;
    return (await runScript(this.options.redis, 'connection-take', [connectionsKey(prefix, userId)], [socketId, max, leaseMs])) === 1;
  }

  /** The socket is connected to this gateway: its lease is renewed until `release`. */
  hold(userId: string, socketId: string): void {
    const sockets = this.held.get(userId) ?? new Set();
    sockets.add(socketId);
    this.held.set(userId, sockets);
  }

  /** The socket is gone: its slot is free again. */
  async release(userId: string, socketId: string): Promise<void> {
    const sockets = this.held.get(userId);
    sockets?.delete(socketId);
    if (sockets?.size === 0) this.held.delete(userId);
    await this.options.redis.zrem(connectionsKey(this.options.prefix, userId), socketId);
  }

  /** Renews this gateway's leases every third of the lease. */
  start(): void {
    const everyMs = Math.max(20, Math.floor(this.options.leaseMs / 3));
    this.timer = setInterval(() => {
      this.renewing ??= this.renew()
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'connection lease renewal failed'))
        .finally(() => (this.renewing = undefined));
    }, everyMs);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
  }

  private async renew(): Promise<void> {
    const { prefix, leaseMs } = this.options;
    // the socket ids are read now, so a release sent after this cannot be undone by it
    const users = [...this.held.entries()];
    // RENEW_BATCH users at a time, one batch after another: every user at once would build tens of thousands of
    // commands at once (measured: +10 KiB of RSS per idle connection at 20 000)
    for (let i = 0; i < users.length; i += RENEW_BATCH) {
      await Promise.all(users.slice(i, i + RENEW_BATCH).map(([userId, sockets]) =>
        runScript(this.options.redis, 'connection-renew', [connectionsKey(prefix, userId)], [leaseMs, ...sockets])));
    }
  }
}
