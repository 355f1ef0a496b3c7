/**
 * Sockets outlive the access tokens they were opened with: every TOKEN_RECHECK_MS the gateway disconnects its
 * sockets whose token has expired and those whose user no longer exists, telling each why first (`auth:expired`).
 * The client reconnects with a fresh token, checked at the handshake as always. One pass costs a walk over this
 * gateway's sockets and one indexed query per 500 distinct users.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AuthExpiredReason } from '#shared/contract/socket-events.ts';
import type { Database } from '#shared/db/schema.ts';
import type { GatewaySocket } from './client-events.ts';

export interface TokenRecheckOptions {
  /** This gateway's connected sockets of the default namespace. */
  sockets(): Iterable<GatewaySocket>;
  db: Kysely<Database>;
  /** TOKEN_RECHECK_MS. */
  intervalMs: number;
  logger: Logger;
}

/** Users looked up per query. */
const USERS_PER_QUERY = 500;

export class TokenRecheck {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly options: TokenRecheckOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.check()
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'token recheck failed'))
        .finally(() => (this.running = undefined));
    }, this.options.intervalMs);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; returns how many sockets it disconnected. */
  async check(now = Date.now()): Promise<number> {
    let cut = 0;
    const byUser = new Map<string, GatewaySocket[]>();
    for (const socket of this.options.sockets()) {
      const { userId, tokenExpiresAt } = socket.data;
      if (!(tokenExpiresAt > now)) {
        disconnect(socket, 'token_expired');
        cut += 1;
        continue;
      }
      const sockets = byUser.get(userId) ?? [];
      sockets.push(socket);
      byUser.set(userId, sockets);
    }
    const userIds = [...byUser.keys()];
    for (let i = 0; i < userIds.length; i += USERS_PER_QUERY) {
      const batch = userIds.slice(i, i + USERS_PER_QUERY);
      // a forgotten person (tollgate_forget_user) no longer exists for the gateway
      const rows = await this.options.db.selectFrom('user_profiles').select('id').where('id', 'in', batch).where('deleted_at', 'is', null).execute();
      const existing = new Set(rows.map((row) => row.id));
      for (const userId of batch) {
        if (existing.has(userId)) continue;
        for (const socket of byUser.get(userId) ?? []) {
          if (!socket.connected) continue;
          disconnect(socket, 'unauthorized');
          cut += 1;
        }
      }
    }
    return cut;
  }
}

function disconnect(socket: GatewaySocket, reason: AuthExpiredReason): void {
  // Written to this socket's transport at once (a plain socket.emit goes through the adapter's stream first, for
  // connection state recovery, and would come after the close); the transport flushes it before closing.
  socket.nsp.local.to(socket.id).emit('auth:expired', { reason });
  socket.disconnect(true);
}
