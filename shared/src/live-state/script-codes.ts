/**
 * The status codes the live-state scripts return (see shared/src/live-state/lua/includes/live-state.lua), and the one
 * function that turns a failing code into an error.
 */
import { AppError } from '#shared/errors/app-error.ts';

export const ScriptCode = {
  ok: 0,
  notFound: 1,
  invalidState: 2,
  insufficientCredits: 3,
  /** The same request was seen before; the answer is the first one. */
  duplicate: 4,
  tooManySessions: 5,
  messageRate: 6,
} as const;
export type ScriptCode = (typeof ScriptCode)[keyof typeof ScriptCode];

/** Throws the AppError of a failing code; returns for ok and duplicate. */
export function assertScriptOk(code: number, context: Record<string, unknown>): void {
  switch (code) {
    case ScriptCode.ok:
    case ScriptCode.duplicate:
      return;
    case ScriptCode.notFound:
      throw new AppError('not_found', 'no such session', context);
    case ScriptCode.invalidState:
      throw new AppError('invalid_state', `not allowed while the session is ${String(context.status ?? 'in this state')}`, context);
    case ScriptCode.insufficientCredits:
      throw new AppError('insufficient_credits', 'not enough credits', context);
    case ScriptCode.tooManySessions:
      throw new AppError('rate_limited', 'too many open sessions; end one first', context);
    case ScriptCode.messageRate:
      throw new AppError('rate_limited', 'too many messages this minute; wait a little', context);
    default:
      throw new Error(`unknown script code ${code}`);
  }
}
