/**
 * The bench's load process: holds socket.io clients in named pools and runs the commands the bench sends over
 * IPC (scripts/bench/load-protocol.ts), one reply per command, progress lines in between. It exits when the bench
 * disconnects or ends it; Ctrl-C in the terminal is left to the bench, which closes it in order.
 */
import { randomUUID } from 'node:crypto';
import { readFdUsage } from './proc-stats.ts';
import type { ChildMessage, LoadCommandName, LoadCommands, ParentMessage } from './load-protocol.ts';
import { chatRun } from './load/chat-run.ts';
import { churnRun } from './load/churn-run.ts';
import { ClientPool } from './load/client-pool.ts';
import { endSessions } from './load/end-sessions.ts';
import { fanoutRun } from './load/fanout-run.ts';
import { meterWindow } from './load/meter-window.ts';
import { sendMessages } from './load/send-messages.ts';
import { startSessions } from './load/start-sessions.ts';

const pools = new Map<string, ClientPool>();
const pool = (name: string) => {
  const found = pools.get(name);
  if (!found) throw new Error(`no pool ${name}`);
  return found;
};

type Handlers = { [C in LoadCommandName]: (params: LoadCommands[C]['params']) => Promise<LoadCommands[C]['result']> };

const handlers: Handlers = {
  async connect(params) {
    const created = pools.get(params.pool) ?? new ClientPool(params.pool);
    pools.set(params.pool, created);
    return created.connect(params);
  },
  async disconnect({ pool: name }) {
    const found = pools.get(name);
    pools.delete(name);
    return found ? found.close() : { closed: 0, durationMs: 0 };
  },
  async poolStats({ pool: name }) {
    const found = pool(name);
    return { connected: found.clients.filter((c) => c.socket.connected).length, disconnects: found.disconnects };
  },
  startSessions: async (params) => startSessions(pool(params.pool), params),
  async fakeSessions({ pool: name, perClient }) {
    const found = pool(name);
    for (const client of found.clients) {
      for (let k = 0; k < perClient; k++) {
        found.sessions.push({ sessionId: randomUUID(), userId: client.userId, client: client.index, startTime: Date.now() });
      }
    }
    return { sessions: found.sessions.length };
  },
  chatRun: async (params) => chatRun(pool(params.pool), params),
  churnRun: async (params) => churnRun(params),
  meterWindow: async (params) => meterWindow(pool(params.pool), params),
  endedSessions: async ({ pool: name }) => ({ ended: pool(name).ended, paused: [...pool(name).paused] }),
  sendMessages: async (params) => sendMessages(pool(params.pool), params),
  endSessions: async ({ pool: name }) => endSessions(pool(name)),
  fanoutRun: async (params) => fanoutRun(pool(params.acting), pool(params.observer), params),
  fdUsage: async () => readFdUsage(process.pid),
};

const reply = (message: ChildMessage) => {
  if (process.connected) process.send?.(message);
};

process.on('message', (message: ParentMessage) => {
  const handler = handlers[message.command] as (params: unknown) => Promise<unknown>;
  handler(message.params).then(
    (result) => reply({ kind: 'result', id: message.id, result }),
    (error: unknown) => reply({ kind: 'error', id: message.id, message: error instanceof Error ? error.stack ?? error.message : String(error) }),
  );
});

const shutdown = () => {
  for (const found of pools.values()) void found.close();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('disconnect', shutdown);
process.on('SIGTERM', shutdown);
// the terminal's Ctrl-C reaches the whole process group; the bench decides when this process goes
process.on('SIGINT', () => undefined);
