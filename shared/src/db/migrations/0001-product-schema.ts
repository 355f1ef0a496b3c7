/**
 * The product's eight tables (product-schema.md), with the types Tollgate needs for exact money:
 * numeric(14,4) amounts, CHECKs for every enumeration, and foreign keys that cascade only where the
 * child cannot live without its parent (messages, documents, chunks, analytics). Sessions are billing
 * records: deleting a user or clone that has sessions is refused.
 */
import { sql, type Kysely } from 'kysely';

const uuidDefault = sql`gen_random_uuid()`;
const money = sql`numeric(14,4)`;

/** pgvector where the server has it and we may create it; otherwise real[] (same literal shape, no index). */
async function embeddingType(db: Kysely<any>): Promise<'vector' | 'real[]'> {
  const { rows } = await sql<{ available: boolean }>`
    SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS available
  `.execute(db);
  if (!rows[0]?.available) return 'real[]';
  // A failed CREATE EXTENSION (no privilege) must not abort the migration's transaction.
  const savepoint = db.isTransaction;
  if (savepoint) await sql`SAVEPOINT tollgate_vector`.execute(db);
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS vector`.execute(db);
    if (savepoint) await sql`RELEASE SAVEPOINT tollgate_vector`.execute(db);
    return 'vector';
  } catch {
    if (savepoint) await sql`ROLLBACK TO SAVEPOINT tollgate_vector`.execute(db);
    return 'real[]';
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('user_profiles')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(uuidDefault))
    .addColumn('email', 'varchar(255)', (c) => c.notNull())
    .addColumn('full_name', 'varchar(255)')
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('user'))
    .addColumn('subscription_tier', 'text', (c) => c.notNull().defaultTo('free'))
    .addColumn('credits_remaining', money, (c) => c.notNull().defaultTo(100))
    .addColumn('total_spent', money, (c) => c.notNull().defaultTo(0))
    .addColumn('preferences', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('timezone', 'varchar(64)', (c) => c.defaultTo('UTC'))
    .addColumn('language', 'varchar(16)', (c) => c.defaultTo('en'))
    .addColumn('avatar_url', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_login', 'timestamptz')
    .addUniqueConstraint('user_profiles_email_key', ['email'])
    .addCheckConstraint('user_profiles_role_check', sql`role IN ('user', 'creator', 'admin')`)
    .addCheckConstraint(
      'user_profiles_subscription_tier_check',
      sql`subscription_tier IN ('free', 'pro', 'enterprise')`,
    )
    .addCheckConstraint('user_profiles_credits_remaining_check', sql`credits_remaining >= 0`)
    .addCheckConstraint('user_profiles_total_spent_check', sql`total_spent >= 0`)
    .execute();

  await db.schema
    .createTable('clones')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(uuidDefault))
    .addColumn('creator_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('cascade'))
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', 'varchar(1000)')
    .addColumn('bio', 'text')
    .addColumn('avatar_url', 'text')
    .addColumn('category', 'varchar(100)')
    .addColumn('expertise_areas', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('base_price', money, (c) => c.notNull().defaultTo(0))
    .addColumn('personality_traits', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('is_published', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('is_active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('total_sessions', sql`numeric(14,0)`, (c) => c.notNull().defaultTo(0))
    .addColumn('total_earnings', money, (c) => c.notNull().defaultTo(0))
    .addColumn('average_rating', sql`numeric(3,2)`, (c) => c.notNull().defaultTo(0))
    .addColumn('total_ratings', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('clones_base_price_check', sql`base_price >= 0`)
    .addCheckConstraint('clones_average_rating_check', sql`average_rating BETWEEN 0 AND 5`)
    .addCheckConstraint('clones_totals_check', sql`total_sessions >= 0 AND total_ratings >= 0`)
    .execute();
  await db.schema.createIndex('clones_creator_id_idx').on('clones').column('creator_id').execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('restrict'))
    .addColumn('clone_id', 'uuid', (c) => c.notNull().references('clones.id').onDelete('restrict'))
    .addColumn('session_type', 'text', (c) => c.notNull().defaultTo('chat'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('start_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('end_time', 'timestamptz')
    .addColumn('duration_minutes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rate_per_minute', money, (c) => c.notNull().defaultTo(0))
    .addColumn('total_cost', money, (c) => c.notNull().defaultTo(0))
    .addColumn('message_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('user_rating', 'integer')
    .addColumn('user_feedback', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('sessions_session_type_check', sql`session_type IN ('chat', 'voice', 'video')`)
    .addCheckConstraint('sessions_status_check', sql`status IN ('active', 'paused', 'ended')`)
    .addCheckConstraint('sessions_user_rating_check', sql`user_rating BETWEEN 1 AND 5`)
    .addCheckConstraint(
      'sessions_amounts_check',
      sql`rate_per_minute >= 0 AND total_cost >= 0 AND duration_minutes >= 0 AND message_count >= 0`,
    )
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('session_id', 'uuid', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('sender_type', 'text', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('cost_increment', money, (c) => c.notNull().defaultTo(0))
    .addColumn('tokens_used', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('messages_sender_type_check', sql`sender_type IN ('user', 'ai')`)
    .addCheckConstraint('messages_amounts_check', sql`cost_increment >= 0 AND tokens_used >= 0`)
    .execute();

  await db.schema
    .createTable('documents')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(uuidDefault))
    .addColumn('clone_id', 'uuid', (c) => c.notNull().references('clones.id').onDelete('cascade'))
    .addColumn('title', 'varchar(255)', (c) => c.notNull())
    .addColumn('file_name', 'varchar(255)', (c) => c.notNull())
    .addColumn('file_path', 'varchar(1024)', (c) => c.notNull())
    .addColumn('file_type', 'varchar(100)', (c) => c.notNull())
    .addColumn('file_size_bytes', 'integer', (c) => c.notNull())
    .addColumn('processing_status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('chunk_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint(
      'documents_processing_status_check',
      sql`processing_status IN ('pending', 'processing', 'completed', 'failed')`,
    )
    .addCheckConstraint('documents_sizes_check', sql`file_size_bytes >= 0 AND chunk_count >= 0`)
    .execute();
  await db.schema.createIndex('documents_clone_id_idx').on('documents').column('clone_id').execute();

  const embedding = await embeddingType(db);
  await db.schema
    .createTable('document_chunks')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(uuidDefault))
    .addColumn('document_id', 'uuid', (c) => c.notNull().references('documents.id').onDelete('cascade'))
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('chunk_index', 'integer', (c) => c.notNull())
    .addColumn('embedding', sql.raw(embedding))
    .addColumn('doc_metadata', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('document_chunks_document_id_chunk_index_key', ['document_id', 'chunk_index'])
    .addCheckConstraint('document_chunks_chunk_index_check', sql`chunk_index >= 0`)
    .execute();

  await db.schema
    .createTable('user_analytics')
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('cascade'))
    .addColumn('date', 'date', (c) => c.notNull())
    .addColumn('sessions_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('messages_sent', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('total_duration_minutes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('total_spent', money, (c) => c.notNull().defaultTo(0))
    .addColumn('documents_uploaded', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('user_analytics_pkey', ['user_id', 'date'])
    .execute();

  await db.schema
    .createTable('creator_analytics')
    .addColumn('creator_id', 'uuid', (c) => c.notNull().references('user_profiles.id').onDelete('cascade'))
    .addColumn('clone_id', 'uuid', (c) => c.notNull().references('clones.id').onDelete('cascade'))
    .addColumn('date', 'date', (c) => c.notNull())
    .addColumn('total_earnings', money, (c) => c.notNull().defaultTo(0))
    .addColumn('sessions_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('average_rating', sql`numeric(3,2)`, (c) => c.notNull().defaultTo(0))
    .addColumn('user_retention_rate', money, (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('creator_analytics_pkey', ['creator_id', 'clone_id', 'date'])
    .addCheckConstraint('creator_analytics_average_rating_check', sql`average_rating BETWEEN 0 AND 5`)
    .addCheckConstraint(
      'creator_analytics_user_retention_rate_check',
      sql`user_retention_rate BETWEEN 0 AND 1`,
    )
    .execute();
  await db.schema
    .createIndex('creator_analytics_clone_id_date_idx')
    .on('creator_analytics')
    .columns(['clone_id', 'date'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'creator_analytics',
    'user_analytics',
    'document_chunks',
    'documents',
    'messages',
    'sessions',
    'clones',
    'user_profiles',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
