/**
 * `CloneProfiles`: the parts of a clone that shape its replies, read from Postgres at most once per `ttlMs` per
 * clone (a reply used to cost a `SELECT … FROM clones`). A profile edited by its creator reaches replies within
 * `ttlMs`; concurrent replies of a clone not yet cached share one query.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';
import type { CloneProfile } from './reply-generator.ts';

export class CloneProfiles {
  private readonly cache = new Map<string, { until: number; profile: Promise<CloneProfile> }>();

  /**
   * @param ttlMs how long a profile read is reused (default 10 s)
   * @param maxEntries most clones kept (the oldest reads go first)
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ttlMs = 10_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The clone's profile; rejects (and caches nothing) when the clone does not exist or the query fails. */
  get(cloneId: string, now = Date.now()): Promise<CloneProfile> {
    const cached = this.cache.get(cloneId);
    if (cached && cached.until > now) return cached.profile;
    const profile = this.load(cloneId);
    this.cache.delete(cloneId);
    this.cache.set(cloneId, { until: now + this.ttlMs, profile });
    profile.catch(() => {
      if (this.cache.get(cloneId)?.profile === profile) this.cache.delete(cloneId);
    });
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return profile;
  }

  private async load(cloneId: string): Promise<CloneProfile> {
    const clone = await this.db
      .selectFrom('clones')
      .select(['name', 'bio', 'description', 'expertise_areas', 'personality_traits'])
      .where('id', '=', cloneId)
      .executeTakeFirstOrThrow();
    return {
      name: clone.name,
      bio: clone.bio,
      description: clone.description,
      expertiseAreas: clone.expertise_areas ?? [],
      personalityTraits: clone.personality_traits,
    };
  }
}
