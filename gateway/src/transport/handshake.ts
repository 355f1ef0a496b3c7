/**
 * The Socket.IO handshake (`io.use`): the access token verified (HS256 or a Supabase signing key, `aud`, `exp`, a
 * user that exists — their last_login recorded, batched), then, while the gateway is overloaded, only users with an
 * open session admitted (they are coming back to it), then a connection slot taken for MAX_CONNECTIONS_PER_USER across
 * gateways. A refused handshake's `connect_error` says why in its message: `unauthorized`, `too_many_connections`,
 * `overloaded` or `unavailable` (Redis, Postgres or the signing keys' endpoint not answering), the last two with
 * `data: { code, retryAfterMs }`.
 */
import type { Socket } from 'socket.io';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { SocketData } from '#shared/contract/socket-events.ts';
import { AppError, toWireError } from '#shared/errors/app-error.ts';
import type { ThrottledWarnings } from '#shared/observability/throttled-warnings.ts';
import type { ConnectionSlots } from './connection-slots.ts';
import type { LoginRecorder } from './login-recorder.ts';

export interface HandshakeOptions {
  verifier: TokenVerifier;
  logins: LoginRecorder;
  slots: ConnectionSlots;
  /** Whether the gateway takes new users now (AdmissionControl), and the hint a refused one is given. */
  admission: { readonly overloaded: boolean; admit(what: 'handshake'): void };
  /** Whether the user has an active or paused session (a user coming back to it is admitted even when overloaded). */
  hasOpenSession(userId: string): Promise<boolean>;
  /** Refusals for a dependency not answering, logged at most once per interval. */
  warnings: ThrottledWarnings;
}

/** A refusal the client can act on: `connect_error` with the code as its message and the wire error as its data. */
function refusal(error: unknown): Error {
  const wire = toWireError(error);
  return Object.assign(new Error(wire.code), { data: wire });
}

export function handshake(options: HandshakeOptions) {
  const { verifier, logins, slots, admission, warnings } = options;
  return async (socket: Socket<never, never, never, SocketData>, next: (error?: Error) => void): Promise<void> => {
    let user: { userId: string; expiresAt: number };
    try {
      user = await verifier.verifyUser(socket.handshake.auth?.token);
    } catch (error) {
      // the signing keys could not be fetched: the token may be good, so the client waits the hint and tries again
      if (error instanceof AppError && error.code === 'unavailable') {
        warnings.warn('unavailable:signing-keys', { err: error }, 'handshake refused: the signing keys are not answering');
        return next(refusal(error));
      }
      return next(new Error('unauthorized'));
    }
    try {
      // refused before any Postgres work: an overloaded gateway's refusals must cost it little
      if (admission.overloaded && !(await options.hasOpenSession(user.userId))) admission.admit('handshake');
      // batched with other handshakes, last_login rewritten at most once a minute (LoginRecorder)
      if (!(await logins.record(user.userId))) return next(new Error('unauthorized'));
      if (!(await slots.take(user.userId, socket.id))) return next(new Error('too_many_connections'));
    } catch (error) {
      if (!(error instanceof AppError)) warnings.warn('unavailable:handshake', { err: error, userId: user.userId }, 'handshake refused: a dependency is not answering');
      return next(refusal(error));
    }
    socket.data.userId = user.userId;
    socket.data.tokenExpiresAt = user.expiresAt;
    next();
  };
}
