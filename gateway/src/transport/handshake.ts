/**
 * The Socket.IO handshake (`io.use`): the access token verified (HS256, `aud`, `exp`, a user that exists — their
 * last_login recorded, batched), then a connection slot taken for MAX_CONNECTIONS_PER_USER across gateways. A
 * refused handshake's `connect_error` says why: `unauthorized`, `too_many_connections`, or `internal`.
 */
import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { SocketData } from '#shared/contract/socket-events.ts';
import type { ConnectionSlots } from './connection-slots.ts';
import type { LoginRecorder } from './login-recorder.ts';

export interface HandshakeOptions {
  verifier: TokenVerifier;
  logins: LoginRecorder;
  slots: ConnectionSlots;
  logger: Logger;
}

export function handshake(options: HandshakeOptions) {
  const { verifier, logins, slots, logger } = options;
  return async (socket: Socket<never, never, never, SocketData>, next: (error?: Error) => void): Promise<void> => {
    let user: { userId: string; expiresAt: number };
    try {
      user = await verifier.verifyUser(socket.handshake.auth?.token);
      // batched with other handshakes, last_login rewritten at most once a minute (LoginRecorder)
      if (!(await logins.record(user.userId))) throw new Error('unknown user');
    } catch {
      return next(new Error('unauthorized'));
    }
    try {
      if (!(await slots.take(user.userId, socket.id))) return next(new Error('too_many_connections'));
    } catch (error) {
      logger.error({ err: error, userId: user.userId }, 'could not take a connection slot');
      return next(new Error('internal'));
    }
    socket.data.userId = user.userId;
    socket.data.tokenExpiresAt = user.expiresAt;
    next();
  };
}
