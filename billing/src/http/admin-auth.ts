/**
 * The billing API's guard: `Authorization: Bearer <token>` verified as the gateway verifies its tokens, and the
 * user it names must exist with role `admin`. No or a bad token: `unauthorized`; another role: `forbidden`.
 * The admin's id is left on `request.adminId`.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Kysely } from 'kysely';
import type { TokenVerifier } from '#shared/auth/token-verifier.ts';
import type { Database } from '#shared/db/schema.ts';
import { AppError } from '#shared/errors/app-error.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The admin making the request (set by adminAuth; empty before it ran). */
    adminId: string;
  }
}

const BEARER = /^Bearer +([^ ]+) *$/i;

export function bearerToken(request: FastifyRequest): string {
  const match = BEARER.exec(request.headers.authorization ?? '');
  if (!match?.[1]) throw new AppError('unauthorized', 'missing bearer token');
  return match[1];
}

export function adminAuth(db: Kysely<Database>, verifier: TokenVerifier): onRequestAsyncHookHandler {
  return async (request) => {
    const userId = await verifier.verify(bearerToken(request));
    // a forgotten person (tollgate_forget_user) is no one, admins included
    const user = await db.selectFrom('user_profiles').select('role').where('id', '=', userId).where('deleted_at', 'is', null).executeTakeFirst();
    if (!user) throw new AppError('unauthorized', 'unknown user');
    if (user.role !== 'admin') throw new AppError('forbidden', 'the billing API is for admins only');
    request.adminId = userId;
  };
}
