/**
 * The opaque keyset cursor of the session list: the last row's (end_time to the microsecond, id), base64url JSON.
 * A cursor that does not decode is `invalid_payload`.
 */
import { z } from 'zod';
import { AppError } from '#shared/errors/app-error.ts';

export interface SessionCursor {
  /** end_time as 'YYYY-MM-DDTHH:MM:SS.ffffffZ'. */
  endTime: string;
  id: string;
}

const END_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;

/** A real instant in years 0001–9999 (what Postgres compares it with): no month 99, no 29 February 2021. */
function isEndTime(text: string): boolean {
  const parts = END_TIME.exec(text);
  if (!parts) return false;
  const [year, month, day, hour, minute, second] = parts.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second);
  return (
    year >= 1 &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}

const shape = z.tuple([z.string().refine(isEndTime), z.guid()]);

export function encodeSessionCursor(cursor: SessionCursor): string {
  return Buffer.from(JSON.stringify([cursor.endTime, cursor.id]), 'utf8').toString('base64url');
}

export function decodeSessionCursor(text: string): SessionCursor {
  try {
    const [endTime, id] = shape.parse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    return { endTime, id };
  } catch {
    throw new AppError('invalid_payload', 'cursor: not a cursor of this list');
  }
}
