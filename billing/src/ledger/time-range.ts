/** The ranges the ledger queries filter on; `to` is exclusive, a missing bound is open. */

/** Instants (sessions by end_time). */
export interface TimeRange {
  from?: Date | undefined;
  to?: Date | undefined;
}

/** Calendar dates 'YYYY-MM-DD' (the analytics `date` column). */
export interface DateRange {
  from?: string | undefined;
  to?: string | undefined;
}
