/**
 * `GatewayMetricsWindow`: what a gateway says about itself over a window, from its GET /metrics (prom-client
 * default metrics): event-loop delay (prom-client resets that histogram at every scrape, so the window starts with a
 * scrape), time in garbage collection, heap in use. How long the event loop stalls is what every socket waits behind.
 */

export interface GatewayWindow {
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Seconds spent in GC during the window, and as a share of it. */
  gcSeconds: number;
  gcShare: number;
  heapUsedBytes: number;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const gcSum = (values: Map<string, number>) =>
  [...values.entries()].filter(([name]) => name.startsWith('nodejs_gc_duration_seconds_sum')).reduce((sum, [, v]) => sum + v, 0);

export class GatewayMetricsWindow {
  private gcBefore = 0;
  private startedAt = performance.now();

  constructor(private readonly url: string) {}

  async start(): Promise<void> {
    this.gcBefore = gcSum(await scrape(this.url));
    this.startedAt = performance.now();
  }

  async stop(): Promise<GatewayWindow> {
    const values = await scrape(this.url);
    const seconds = (performance.now() - this.startedAt) / 1000;
    const gcSeconds = gcSum(values) - this.gcBefore;
    const ms = (name: string) => (values.get(name) ?? Number.NaN) * 1000;
    return {
      eventLoopDelayMs: { p50: ms('nodejs_eventloop_lag_p50_seconds'), p99: ms('nodejs_eventloop_lag_p99_seconds'), max: ms('nodejs_eventloop_lag_max_seconds') },
      gcSeconds,
      gcShare: gcSeconds / seconds,
      heapUsedBytes: values.get('nodejs_heap_size_used_bytes') ?? Number.NaN,
    };
  }
}
