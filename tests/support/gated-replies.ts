import { pino } from 'pino';
import { Gateway } from '#gateway/gateway.ts';
import type { Reply, ReplyGenerator, ReplyRequest } from '#gateway/replies/reply-generator.ts';
import type { Config } from '#shared/config/config.ts';
import type { TestSystem } from './system.ts';

/** Replies that wait at a gate the test opens, one at a time, in the order they started. */
export class GatedReplies implements ReplyGenerator {
  running = 0;
  mostAtOnce = 0;
  readonly started: string[] = [];
  private readonly gates: Array<() => void> = [];

  async generate(request: ReplyRequest, onDelta: (delta: string) => void): Promise<Reply> {
    const question = request.history.at(-1)?.content ?? '';
    this.started.push(question);
    this.running += 1;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    try {
      await new Promise<void>((resolve, reject) => {
        this.gates.push(resolve);
        request.signal?.addEventListener('abort', () => reject(request.signal!.reason), { once: true });
      });
      const content = `answer to ${question}`;
      onDelta(content);
      return { content, tokensUsed: 1 };
    } finally {
      this.running -= 1;
    }
  }

  /** Lets the oldest waiting reply finish. */
  open(): void {
    this.gates.shift()?.();
  }
}

/**
 * A gateway of its own on the system's database, Redis and queue, whose replies are `replies`, with at most
 * `maxRepliesInFlight` generating at once and `config` over the system's; started, with its URL.
 */
export async function startGatedGateway(
  system: TestSystem,
  replies: GatedReplies,
  options: { maxRepliesInFlight: number; config?: Partial<Config> },
): Promise<{ gateway: Gateway; url: string }> {
  const gateway = new Gateway({
    config: { ...system.config, ...options.config },
    db: system.database.db,
    redis: system.redis,
    queue: system.queue,
    replies,
    logger: pino({ level: 'silent' }),
    maxRepliesInFlight: options.maxRepliesInFlight,
  });
  return { gateway, url: `http://127.0.0.1:${await gateway.start()}` };
}
