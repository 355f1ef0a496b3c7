/**
 * Preloaded into the test process by scripts/run-tests.ts (every test file runs in that one process): a promise
 * rejected with nobody handling it no longer kills the process mid-file, hiding which file and which call it was —
 * it is printed with its stack and the run still fails when the process exits.
 */
let unhandled = 0;
process.on('unhandledRejection', (reason) => {
  unhandled += 1;
  const error = reason instanceof Error ? reason : new Error(String(reason));
  const command = (error as Error & { command?: unknown }).command;
  process.stderr.write(`\nunhandled rejection (the run will fail): ${error.stack ?? error.message}${command ? `\ncommand: ${JSON.stringify(command)}` : ''}\n`);
});
// uvu sets the exit code itself when its files are done; this decides last
process.on('exit', () => {
  if (unhandled > 0) process.exitCode = 1;
});
