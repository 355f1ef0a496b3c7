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

const shape = z.tuple([z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/), z.guid()]);

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
