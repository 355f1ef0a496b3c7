/**
 * The kysely types of the database: the product's Supabase schema (names kept as the product team wrote them)
 * plus what Tollgate adds (ledger_entries, settlement and versioning columns).
 * numeric and bigint columns come back from pg as strings: money stays a decimal string until `parseMoney`.
 */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** numeric(14,4) money: read as a decimal string, written as a decimal string. */
type Money = ColumnType<string, string | undefined, string>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json = ColumnType<unknown, string | undefined, string>;

export type UserRole = 'user' | 'creator' | 'admin';
export type SubscriptionTier = 'free' | 'pro' | 'enterprise';
export type SessionType = 'chat' | 'voice' | 'video';
export type SessionStatus = 'active' | 'paused' | 'ended';
export type SenderType = 'user' | 'ai';
export type ProcessingStatus = 'pending' | 'processing' | 'completed' | 'failed';
export type LedgerAccountKind = 'user' | 'creator' | 'platform';
export type LedgerEntryKind = 'session_charge' | 'creator_earning' | 'platform_fee' | 'adjustment';
export type SessionEventKind = 'started' | 'paused' | 'resumed' | 'ended';

export interface UserProfilesTable {
  id: Generated<string>;
  email: string;
  full_name: string | null;
  role: ColumnType<UserRole, UserRole | undefined, UserRole>;
  subscription_tier: ColumnType<SubscriptionTier, SubscriptionTier | undefined, SubscriptionTier>;
  /** numeric(14,4), default 100, CHECK >= 0. */
  credits_remaining: Money;
  /** bigint bumped by a trigger whenever credits_remaining changes: orders balance snapshots. */
  credits_version: ColumnType<string, never, never>;
  total_spent: Money;
  preferences: Json;
  timezone: string | null;
  language: string | null;
  avatar_url: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_login: Date | null;
  /** Set when the person was deleted (tollgate_forget_user): the profile is anonymised, the money records stay. */
  deleted_at: Date | null;
}

export interface ClonesTable {
  id: Generated<string>;
  creator_id: string;
  name: string;
  description: string | null;
  bio: string | null;
  avatar_url: string | null;
  category: string | null;
  expertise_areas: ColumnType<string[], string[] | undefined, string[]>;
  /** Per-minute rate, numeric(14,4). */
  base_price: Money;
  personality_traits: Json;
  is_published: ColumnType<boolean, boolean | undefined, boolean>;
  is_active: ColumnType<boolean, boolean | undefined, boolean>;
  total_sessions: Money;
  total_earnings: Money;
  /** numeric(3,2), 0..5. */
  average_rating: Money;
  total_ratings: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  clone_id: string;
  session_type: SessionType;
  status: SessionStatus;
  start_time: Timestamp;
  end_time: Date | null;
  duration_minutes: ColumnType<number, number | undefined, number>;
  rate_per_minute: Money;
  total_cost: Money;
  message_count: ColumnType<number, number | undefined, number>;
  user_rating: number | null;
  user_feedback: string | null;
  /** Tollgate: monotonic version of the live state last written; older jobs never overwrite newer state. */
  state_version: ColumnType<number, number | undefined, number>;
  /** Tollgate: milliseconds of active (billed) time. */
  active_ms: ColumnType<string, string | number | undefined, string | number>;
  /** Tollgate: why the session ended (user, credits_exhausted, idle_timeout, ...). */
  end_reason: string | null;
  /** Tollgate: when the billing worker settled the session; set exactly once. */
  settled_at: Date | null;
  /** Tollgate: the instant of the last checkpoint (billed state of the open session), and its cost. */
  checkpoint_at: Date | null;
  checkpoint_cost: Money;
  /** Tollgate: the user's credits_version right after this session's debit (bigint as string). */
  settled_credits_version: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MessagesTable {
  id: string;
  session_id: string;
  sender_type: SenderType;
  content: string;
  cost_increment: Money;
  tokens_used: ColumnType<number, number | undefined, number>;
  /** Tollgate: the client's idempotency key for user messages (unique per session). */
  client_message_id: string | null;
  /** Tollgate: null for user messages; an AI message's sources, `[{ documentId, title, chunkIndex }]` (jsonb). */
  citations: ColumnType<unknown | null, string | null | undefined, string | null>;
  created_at: Timestamp;
}

export interface DocumentsTable {
  id: Generated<string>;
  clone_id: string;
  title: string;
  file_name: string;
  file_path: string;
  file_type: string;
  file_size_bytes: number;
  processing_status: ColumnType<ProcessingStatus, ProcessingStatus | undefined, ProcessingStatus>;
  chunk_count: ColumnType<number, number | undefined, number>;
  /** Tollgate: why the last ingestion failed; null unless processing_status is 'failed'. */
  failure_reason: string | null;
  /** Tollgate: the embedder model of the chunks ('local-hash-v1', 'text-embedding-3-small', …); null until ingested. */
  embedding_model: string | null;
  /** Tollgate: the length of the chunks' embeddings; only chunks of the same model and length are compared. */
  embedding_dimensions: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DocumentChunksTable {
  id: Generated<string>;
  document_id: string;
  content: string;
  chunk_index: number;
  /** pgvector `vector` where the extension exists, otherwise real[]; written as a '[1,2,3]' / '{1,2,3}' literal. */
  embedding: ColumnType<unknown, string | null | undefined, string | null>;
  doc_metadata: Json;
  created_at: Timestamp;
}

export interface UserAnalyticsTable {
  user_id: string;
  date: ColumnType<string, string, string>;
  sessions_count: ColumnType<number, number | undefined, number>;
  messages_sent: ColumnType<number, number | undefined, number>;
  total_duration_minutes: ColumnType<number, number | undefined, number>;
  total_spent: Money;
  documents_uploaded: ColumnType<number, number | undefined, number>;
}

export interface CreatorAnalyticsTable {
  creator_id: string;
  clone_id: string;
  date: ColumnType<string, string, string>;
  total_earnings: Money;
  sessions_count: ColumnType<number, number | undefined, number>;
  average_rating: Money;
  user_retention_rate: Money;
}

export interface LedgerEntriesTable {
  id: Generated<string>;
  session_id: string;
  account_kind: LedgerAccountKind;
  account_id: string | null;
  /** Signed numeric(14,4); the entries of one session sum to exactly 0. */
  amount: string;
  kind: LedgerEntryKind;
  /** The adjustment this entry belongs to; null for a session's settlement entries. */
  adjustment_id: string | null;
  created_at: Timestamp;
}

/** Append-only: one row per state version of a session. */
export interface SessionEventsTable {
  id: Generated<string>;
  session_id: string;
  version: number;
  kind: SessionEventKind;
  at: Timestamp;
  /** Active ms of the session up to `at` (bigint, read as a string). */
  active_ms: ColumnType<string, string | number, never>;
  reason: string | null;
  created_at: Timestamp;
}

/** Append-only: a compensating transaction by an admin, idempotent by its client key. */
export interface LedgerAdjustmentsTable {
  id: Generated<string>;
  idempotency_key: string;
  request_hash: string;
  session_id: string;
  user_id: string;
  creator_id: string;
  /** Signed numeric(14,4): positive gives credits back to the user. */
  amount: string;
  reason: string;
  author_id: string;
  created_at: Timestamp;
}

export type MoneyMovementKind = 'opening_balance' | 'purchase' | 'card_refund' | 'dispute' | 'grant' | 'payout' | 'payout_reversal';
export type MovementAccountKind = 'user' | 'creator' | 'cash' | 'platform';
export type MovementEntryKind = MoneyMovementKind | 'platform_loss';
export type CreditPurchaseStatus = 'pending' | 'paid' | 'refunded' | 'disputed';

/** Append-only: money entering or leaving other than through a session (0013). Its entries sum to zero. */
export interface MoneyMovementsTable {
  id: Generated<string>;
  kind: MoneyMovementKind;
  user_id: string;
  /** What happened in the world, once: `opening:<user>`, `purchase:<purchase>`, `refund:<charge>:<refunded so far>`, … */
  reference: string;
  /** Credits on the person's account: positive in, negative out. */
  credits: string;
  /** Cash that moved with it (minor units, bigint as string). */
  amount_minor: ColumnType<string, string | number | bigint | undefined, never>;
  currency: string | null;
  created_at: Timestamp;
}

/** Append-only: a movement's entries (0013). */
export interface MovementEntriesTable {
  id: Generated<string>;
  movement_id: string;
  account_kind: MovementAccountKind;
  /** The person for `user` entries; null for the platform's `cash` and `platform` accounts. */
  account_id: string | null;
  amount: string;
  kind: MovementEntryKind;
  created_at: Timestamp;
}

/** A credit pack bought through Stripe Checkout, from its session to paid, refunded or disputed (0013). */
export interface CreditPurchasesTable {
  id: Generated<string>;
  user_id: string;
  pack_id: string;
  request_key: string;
  checkout_session_id: string;
  checkout_url: string | null;
  payment_intent_id: string | null;
  amount_minor: ColumnType<string, string | number | bigint, never>;
  currency: string;
  credits: string;
  status: ColumnType<CreditPurchaseStatus, CreditPurchaseStatus | undefined, CreditPurchaseStatus>;
  /** Cash given back or taken by disputes so far (minor units, bigint as string). */
  reversed_minor: ColumnType<string, string | number | bigint | undefined, string | number | bigint>;
  created_at: Timestamp;
  paid_at: Date | null;
}

/** A Stripe subscription, as its newest event said (0014). */
export interface SubscriptionsTable {
  stripe_subscription_id: string;
  user_id: string;
  tier: 'pro' | 'enterprise';
  status: string;
  current_period_end: Date | null;
  event_created: ColumnType<string, string | number, string | number>;
  updated_at: Timestamp;
}

/** Where a creator is paid: their Stripe Connect account (0015). */
export interface PayoutAccountsTable {
  creator_id: string;
  stripe_account_id: string;
  updated_at: Timestamp;
}

export type PayoutStatus = 'pending' | 'paid' | 'failed' | 'reversed';

/** One payout per creator and period, from pending to paid, failed or reversed (0015). */
export interface PayoutsTable {
  id: Generated<string>;
  creator_id: string;
  period: string;
  credits: string;
  amount_minor: ColumnType<string, string | number | bigint, never>;
  currency: string;
  stripe_account_id: string;
  status: ColumnType<PayoutStatus, PayoutStatus | undefined, PayoutStatus>;
  transfer_id: string | null;
  failure: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Every Stripe webhook event applied, by its id (0013). */
export interface StripeEventsTable {
  id: string;
  type: string;
  received_at: Timestamp;
}

export interface Database {
  user_profiles: UserProfilesTable;
  clones: ClonesTable;
  sessions: SessionsTable;
  messages: MessagesTable;
  documents: DocumentsTable;
  document_chunks: DocumentChunksTable;
  user_analytics: UserAnalyticsTable;
  creator_analytics: CreatorAnalyticsTable;
  ledger_entries: LedgerEntriesTable;
  session_events: SessionEventsTable;
  ledger_adjustments: LedgerAdjustmentsTable;
  money_movements: MoneyMovementsTable;
  movement_entries: MovementEntriesTable;
  credit_purchases: CreditPurchasesTable;
  stripe_events: StripeEventsTable;
  subscriptions: SubscriptionsTable;
  payout_accounts: PayoutAccountsTable;
  payouts: PayoutsTable;
}

export type UserProfile = Selectable<UserProfilesTable>;
export type Clone = Selectable<ClonesTable>;
export type SessionRow = Selectable<SessionsTable>;
export type MessageRow = Selectable<MessagesTable>;
export type NewUserProfile = Insertable<UserProfilesTable>;
export type NewClone = Insertable<ClonesTable>;
export type SessionUpdate = Updateable<SessionsTable>;
