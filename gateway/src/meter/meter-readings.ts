/**
 * `MeterReadings`: the last meter reading of each user this gateway ticks — the open sessions and budget some
 * live-state script answered, at which account revision, and when (this process's clock). Every script answer for
 * the user that passes through this gateway replaces it (`record`), so the reading follows the user's own
 * messages, replies, starts and ends without asking Redis; a meter tick only asks whether the revision moved
 * (`SessionStore.revision`, one HGET) and otherwise projects the reading forward (`readingAt`).
 */
import type { MeterReading } from '#shared/live-state/live-session.ts';
import type { Outcome } from '#shared/live-state/session-store.ts';
import type { Units } from '#shared/money/money.ts';

export interface Reading {
  rev: number;
  /** Redis time the script read the state at, ms. */
  now: number;
  /** This process's Date.now() when the answer arrived. */
  receivedAt: number;
  budget: Units;
  open: MeterReading[];
  /** Redis time an event is next due (Outcome.eventDue): the reading projects no further than that. */
  eventDue: number | null;
}

export class MeterReadings {
  private readonly readings = new Map<string, Reading>();

  /** Starts following the user (their tick took a full reading). */
  follow(userId: string, outcome: Outcome, receivedAt = Date.now()): void {
    this.readings.set(userId, this.readingOf(outcome, receivedAt));
  }

  /** A script answered for the user: a newer reading replaces the one held (only for users followed). */
  record(userId: string, outcome: Outcome, receivedAt = Date.now()): void {
    const held = this.readings.get(userId);
    if (!held || !outcome.reading) return;
    // answers may arrive out of order: the higher revision wins, and of one revision the later read
    if (outcome.rev < held.rev || (outcome.rev === held.rev && outcome.now <= held.now)) return;
    this.readings.set(userId, this.readingOf(outcome, receivedAt));
  }

  get(userId: string): Reading | undefined {
    return this.readings.get(userId);
  }

  /**
   * The user's reading if it can be projected to `at` (this process's Date.now()): held, younger than `maxAgeMs`,
   * and not past the instant an event is due (there the state must be read: the event may pause or end sessions).
   * Returns it with how far to project it.
   */
  projectable(userId: string, at: number, maxAgeMs: number): { reading: Reading; elapsedMs: number } | undefined {
    const reading = this.readings.get(userId);
    if (!reading) return undefined;
    const elapsedMs = at - reading.receivedAt;
    if (elapsedMs >= maxAgeMs) return undefined;
    if (reading.eventDue !== null && reading.now + elapsedMs >= reading.eventDue) return undefined;
    return { reading, elapsedMs };
  }

  /** The low-balance warning of the session went out (or had gone out): later projections say so. */
  noteLowSent(userId: string, sessionId: string): void {
    const session = this.readings.get(userId)?.open.find((s) => s.id === sessionId);
    if (session) session.lowSent = true;
  }

  forget(userId: string): void {
    this.readings.delete(userId);
  }

  get size(): number {
    return this.readings.size;
  }

  private readingOf(outcome: Outcome, receivedAt: number): Reading {
    return {
      rev: outcome.rev,
      now: outcome.now,
      receivedAt,
      budget: outcome.budget,
      open: outcome.open.map((s) => ({ ...s })),
      eventDue: outcome.eventDue,
    };
  }
}
