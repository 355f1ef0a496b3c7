/**
 * `Progress`: what the bench is doing, on stderr. On a terminal the latest progress line is rewritten in place;
 * otherwise (CI, a test) a progress line is printed at most every few seconds, so logs stay short.
 */
const PLAIN_INTERVAL_MS = 3000;

export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPlain = 0;
  private open = false;

  constructor(private readonly quiet = false) {}

  /** A line that stays (a phase starting, a result). */
  note(text: string): void {
    if (this.quiet) return;
    this.clear();
    process.stderr.write(`${text}\n`);
  }

  /** A transient progress line. */
  update(text: string): void {
    if (this.quiet) return;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K  … ${text}`);
      this.open = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain < PLAIN_INTERVAL_MS) return;
    this.lastPlain = now;
    process.stderr.write(`  … ${text}\n`);
  }

  private clear(): void {
    if (this.tty && this.open) process.stderr.write('\r\x1b[2K');
    this.open = false;
  }
}
