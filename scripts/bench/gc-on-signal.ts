/**
 * Preloaded into every bench server process (with `--expose-gc`): SIGUSR2 runs a full garbage collection, so memory
 * per connection is measured on what the connections keep, not on whatever garbage the ramp left uncollected (which
 * varied by 10+ KiB per connection between runs of the same code). Bench only; servers never run with it otherwise.
 */
const collect = (globalThis as { gc?: () => void }).gc;
if (collect) process.on('SIGUSR2', () => collect());
