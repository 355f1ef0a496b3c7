/**
 * `npm start`: applies pending migrations, then runs the gateway and the billing worker side by side with
 * prefixed logs. If either process exits, the other is stopped; Ctrl-C stops both.
 */
import { spawnSync } from 'node:child_process';
import { concurrently } from 'concurrently';

const tsx = 'node --import tsx';
const migrated = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], { stdio: 'inherit' });
if (migrated.status !== 0) process.exit(migrated.status ?? 1);

const { result } = concurrently(
  [
    { command: `${tsx} gateway/src/main.ts`, name: 'gateway', prefixColor: 'cyan' },
    { command: `${tsx} billing/src/main.ts`, name: 'billing', prefixColor: 'magenta' },
  ],
  { prefix: 'name', killOthersOn: ['failure', 'success'], killSignal: 'SIGTERM' },
);
// concurrently forwards SIGINT/SIGTERM to both processes; each closes in order and exits on its own.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (stopping = true));
result.then(
  () => process.exit(0),
  () => process.exit(stopping ? 0 : 1),
);
