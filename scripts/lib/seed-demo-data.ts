/**
 * Demo data for local runs and end-to-end tests: fixed ids, inserted with ON CONFLICT DO NOTHING, so
 * seeding twice (or seeding a database that already has these rows, changed) leaves existing rows alone.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#shared/db/schema.ts';

/** A user with the default 100 credits. */
export const DEMO_USER_ID = '00000000-0000-4000-8000-000000000001';
/** A user with too few credits for a long session (0.5000). */
export const DEMO_LOW_CREDIT_USER_ID = '00000000-0000-4000-8000-000000000002';
/** The creator who owns every demo clone. */
export const DEMO_CREATOR_ID = '00000000-0000-4000-8000-000000000003';
export const DEMO_ADMIN_ID = '00000000-0000-4000-8000-000000000004';

/** Published, active, 1.5000 per minute. */
export const DEMO_CLONE_ID = '00000000-0000-4000-8000-000000000101';
/** Published, active, 0.7500 per minute. */
export const DEMO_CHEAP_CLONE_ID = '00000000-0000-4000-8000-000000000102';
/** Published, active, 3.0000 per minute. */
export const DEMO_PREMIUM_CLONE_ID = '00000000-0000-4000-8000-000000000103';
/** Not published: sessions with it must be refused. */
export const DEMO_UNPUBLISHED_CLONE_ID = '00000000-0000-4000-8000-000000000104';

export const DEMO_DOCUMENT_IDS = [
  '00000000-0000-4000-8000-000000000201',
  '00000000-0000-4000-8000-000000000202',
  '00000000-0000-4000-8000-000000000203',
] as const;

export const DEMO_IDS = Object.freeze({
  user: DEMO_USER_ID,
  lowCreditUser: DEMO_LOW_CREDIT_USER_ID,
  creator: DEMO_CREATOR_ID,
  admin: DEMO_ADMIN_ID,
  clone: DEMO_CLONE_ID,
  cheapClone: DEMO_CHEAP_CLONE_ID,
  premiumClone: DEMO_PREMIUM_CLONE_ID,
  unpublishedClone: DEMO_UNPUBLISHED_CLONE_ID,
  documents: DEMO_DOCUMENT_IDS,
});

const json = (value: unknown) => JSON.stringify(value);

/** Inserts the demo rows that are missing, in one transaction. */
export async function seedDemoData(db: Kysely<Database>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('user_profiles')
      .values([
        {
          id: DEMO_USER_ID,
          email: 'ada@demo.tollgate.test',
          full_name: 'Ada Demo',
          role: 'user',
          subscription_tier: 'pro',
          credits_remaining: '100.0000',
          preferences: json({ theme: 'dark' }),
        },
        {
          id: DEMO_LOW_CREDIT_USER_ID,
          email: 'lin@demo.tollgate.test',
          full_name: 'Lin Lowbalance',
          role: 'user',
          subscription_tier: 'free',
          credits_remaining: '0.5000',
          preferences: json({}),
        },
        {
          id: DEMO_CREATOR_ID,
          email: 'grace@demo.tollgate.test',
          full_name: 'Grace Creator',
          role: 'creator',
          subscription_tier: 'pro',
          credits_remaining: '100.0000',
          preferences: json({}),
        },
        {
          id: DEMO_ADMIN_ID,
          email: 'admin@demo.tollgate.test',
          full_name: 'Alan Admin',
          role: 'admin',
          subscription_tier: 'enterprise',
          credits_remaining: '100.0000',
          preferences: json({}),
        },
      ])
      .onConflict((oc) => oc.doNothing())
      .execute();

    await trx
      .insertInto('clones')
      .values([
        {
          id: DEMO_CLONE_ID,
          creator_id: DEMO_CREATOR_ID,
          name: 'Dr. Ada Lovelace',
          description: 'Mathematician and first programmer; patient explainer of algorithms.',
          bio: 'Worked on the Analytical Engine and wrote the first published algorithm. Loves turning hard ideas into small steps.',
          category: 'technology',
          expertise_areas: ['algorithms', 'mathematics', 'computing history'],
          base_price: '1.5000',
          personality_traits: json({ tone: 'warm', style: 'socratic', verbosity: 'medium' }),
          is_published: true,
          is_active: true,
        },
        {
          id: DEMO_CHEAP_CLONE_ID,
          creator_id: DEMO_CREATOR_ID,
          name: 'Coach Sam',
          description: 'Friendly fitness and habit coach.',
          bio: 'Ten years of coaching beginners. Believes in tiny habits and honest progress logs.',
          category: 'health',
          expertise_areas: ['fitness', 'habits', 'nutrition basics'],
          base_price: '0.7500',
          personality_traits: json({ tone: 'upbeat', style: 'direct', verbosity: 'short' }),
          is_published: true,
          is_active: true,
        },
        {
          id: DEMO_PREMIUM_CLONE_ID,
          creator_id: DEMO_CREATOR_ID,
          name: 'Counsel Morgan',
          description: 'Startup legal and contracts advisor (not legal advice).',
          bio: 'Former startup counsel. Reads term sheets for fun and explains clauses in plain words.',
          category: 'business',
          expertise_areas: ['contracts', 'fundraising', 'intellectual property'],
          base_price: '3.0000',
          personality_traits: json({ tone: 'precise', style: 'structured', verbosity: 'long' }),
          is_published: true,
          is_active: true,
        },
        {
          id: DEMO_UNPUBLISHED_CLONE_ID,
          creator_id: DEMO_CREATOR_ID,
          name: 'Chef Draft',
          description: 'A cooking clone still being trained.',
          bio: 'Not ready yet.',
          category: 'food',
          expertise_areas: ['cooking'],
          base_price: '1.0000',
          personality_traits: json({ tone: 'playful' }),
          is_published: false,
          is_active: true,
        },
      ])
      .onConflict((oc) => oc.doNothing())
      .execute();

    const [algorithms, habits, contracts] = DEMO_DOCUMENT_IDS;
    const documents = [
      {
        id: algorithms,
        clone_id: DEMO_CLONE_ID,
        title: 'Notes on the Analytical Engine',
        file_name: 'analytical-engine-notes.md',
        file_path: `clones/${DEMO_CLONE_ID}/analytical-engine-notes.md`,
        file_type: 'text/markdown',
        chunks: [
          'The engine separates the store (memory) from the mill (processing).',
          'Note G describes computing Bernoulli numbers step by step.',
        ],
      },
      {
        id: habits,
        clone_id: DEMO_CHEAP_CLONE_ID,
        title: 'Tiny habits handbook',
        file_name: 'tiny-habits.pdf',
        file_path: `clones/${DEMO_CHEAP_CLONE_ID}/tiny-habits.pdf`,
        file_type: 'application/pdf',
        chunks: ['Anchor a new habit to an existing one.', 'Celebrate right after the behaviour.'],
      },
      {
        id: contracts,
        clone_id: DEMO_PREMIUM_CLONE_ID,
        title: 'Term sheet glossary',
        file_name: 'term-sheet-glossary.txt',
        file_path: `clones/${DEMO_PREMIUM_CLONE_ID}/term-sheet-glossary.txt`,
        file_type: 'text/plain',
        chunks: [
          'Liquidation preference: who is paid first, and how much, when the company is sold.',
          'Pro rata right: the right to keep one’s ownership share in later rounds.',
          'Vesting: shares earned over time, usually four years with a one-year cliff.',
        ],
      },
    ];

    await trx
      .insertInto('documents')
      .values(
        documents.map(({ chunks, ...doc }) => ({
          ...doc,
          file_size_bytes: chunks.reduce((n, c) => n + Buffer.byteLength(c), 0),
          processing_status: 'completed' as const,
          chunk_count: chunks.length,
        })),
      )
      .onConflict((oc) => oc.doNothing())
      .execute();

    await trx
      .insertInto('document_chunks')
      .values(
        documents.flatMap((doc) =>
          doc.chunks.map((content, chunkIndex) => ({
            document_id: doc.id,
            content,
            chunk_index: chunkIndex,
            embedding: null,
            doc_metadata: json({ source: doc.file_name }),
          })),
        ),
      )
      .onConflict((oc) => oc.doNothing())
      .execute();
  });
}
