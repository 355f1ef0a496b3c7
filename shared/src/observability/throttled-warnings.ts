/**
 * Warnings that can repeat thousands of times a second — every request refused while Redis or Postgres is not
 * answering — without flooding the log: the first of each kind is logged at once, the next only after `intervalMs`,
 * carrying how many of that kind were left out since (`suppressed`). The metrics still count every one
 * (`gateway_events_total` by result).
 */
import type { Logger } from 'pino';

/** Default: at most one line per kind every 10 s. */
const DEFAULT_INTERVAL_MS = 10_000;

export class ThrottledWarnings {
  private readonly kinds = new Map<string, { quietUntil: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = DEFAULT_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `message` at warn level unless a warning of `kind` was logged less than `intervalMs` ago. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const at = this.now();
    const seen = this.kinds.get(kind);
    if (seen && at < seen.quietUntil) {
      seen.suppressed += 1;
      return;
    }
    this.kinds.set(kind, { quietUntil: at + this.intervalMs, suppressed: 0 });
    this.logger.warn(seen && seen.suppressed > 0 ? { ...fields, kind, suppressed: seen.suppressed } : { ...fields, kind }, message);
  }
}
