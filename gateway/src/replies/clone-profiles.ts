/**
 * `CloneProfiles`: what the gateway needs of a clone — the parts that shape its replies, and its offer (the rate a
 * new session freezes, whether it may start) — read from Postgres at most once per `ttlMs` per clone (a reply used
 * to cost a `SELECT … FROM clones`, and so did every session start). A creator's edit, a new price or an unpublished
 * clone reaches new replies and new sessions within `ttlMs`; concurrent reads of a clone not yet cached share one
 * query. A clone that does not exist is not cached.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';
import { parseMoney, type Units } from '#shared/money/money.ts';
import type { CloneProfile } from './reply-generator.ts';

/** What a session start needs of its clone. */
export interface CloneOffer {
  cloneId: string;
  /** base_price: units per minute. */
  ratePerMinute: Units;
  /** Published and active. */
  available: boolean;
}

interface CloneRecord {
  profile: CloneProfile;
  offer: CloneOffer;
}

export class CloneProfiles {
  private readonly cache = new Map<string, { until: number; record: Promise<CloneRecord> }>();

  /**
   * @param ttlMs how long a read is reused (default 10 s)
   * @param maxEntries most clones kept (the oldest reads go first)
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ttlMs = 10_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The clone's profile (the same object while cached); rejects with `not_found` when the clone does not exist. */
  async get(cloneId: string, now = Date.now()): Promise<CloneProfile> {
    return (await this.read(cloneId, now)).profile;
  }

  /** The clone's price and availability; rejects with `not_found` when the clone does not exist. */
  async offer(cloneId: string, now = Date.now()): Promise<CloneOffer> {
    return (await this.read(cloneId, now)).offer;
  }

  private read(cloneId: string, now: number): Promise<CloneRecord> {
    const cached = this.cache.get(cloneId);
    if (cached && cached.until > now) return cached.record;
    const record = this.load(cloneId);
    this.cache.delete(cloneId);
    this.cache.set(cloneId, { until: now + this.ttlMs, record });
    record.catch(() => {
      if (this.cache.get(cloneId)?.record === record) this.cache.delete(cloneId);
    });
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return record;
  }

  private async load(cloneId: string): Promise<CloneRecord> {
    const clone = await this.db
      .selectFrom('clones')
      .select(['id', 'name', 'bio', 'description', 'expertise_areas', 'personality_traits', 'base_price', 'is_published', 'is_active'])
      .where('id', '=', cloneId)
      .executeTakeFirst();
    if (!clone) throw new AppError('not_found', 'no such clone', { cloneId });
    return {
      profile: {
        name: clone.name,
        bio: clone.bio,
        description: clone.description,
        expertiseAreas: clone.expertise_areas ?? [],
        personalityTraits: clone.personality_traits,
      },
      offer: { cloneId: clone.id, ratePerMinute: parseMoney(clone.base_price), available: clone.is_published && clone.is_active },
    };
  }
}
