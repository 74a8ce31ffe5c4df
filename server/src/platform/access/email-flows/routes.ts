import { Type } from 'typebox';
import type { App } from '../../../infra/http/pipeline.ts';
import { unwrap } from '../present.ts';
import {
  Accepted,
  ConfirmPasswordResetBody,
  ConfirmVerificationBody,
  EmailBody,
  EmailVerifiedSchema,
} from './schemas.ts';
import type { EmailFlowsService } from './service.ts';

const NoContent = Type.Null({ description: 'No content.' });

export function emailFlowRoutes(deps: { service: EmailFlowsService }) {
  const { service } = deps;
  return async (app: App) => {
    app.post(
      '/v1/auth/email-verification',
      {
        schema: {
          operationId: 'requestEmailVerification',
          summary: 'Mail a link that verifies an account’s email address',
          description:
            'Answers 202 for any address: a mail is sent only when it belongs to an account not verified yet ' +
            '(at most 5 an hour per address). The link (`/verify-email?token=…` on PUBLIC_URL) works once, for 24 ' +
            'hours. Public: limited per address.',
          tags: ['auth'],
          body: EmailBody,
          response: { 202: Accepted },
        },
      },
      async (request, reply) => {
        await service.requestVerification(request.body.email);
        return reply.code(202).send({ status: 'accepted' as const });
      },
    );

    app.post(
      '/v1/auth/email-verification/confirm',
      {
        schema: {
          operationId: 'confirmEmailVerification',
          summary: 'Verify an email address with the mailed token',
          description: 'An invalid, used or expired token answers 400 `EMAIL_TOKEN_INVALID`. Public.',
          tags: ['auth'],
          body: ConfirmVerificationBody,
          response: { 200: EmailVerifiedSchema },
        },
      },
      async (request) => {
        const result = unwrap(await service.confirmVerification(request.body.token));
        return { email: result.email, verified: true as const };
      },
    );

    app.post(
      '/v1/auth/password-reset',
      {
        schema: {
          operationId: 'requestPasswordReset',
          summary: 'Mail a link to choose a new password',
          description:
            'Answers 202 for any address: a mail is sent only when it belongs to an account (at most 5 an hour per ' +
            'address). The link (`/reset-password?token=…` on PUBLIC_URL) works once, for 1 hour. Public: limited ' +
            'per address.',
          tags: ['auth'],
          body: EmailBody,
          response: { 202: Accepted },
        },
      },
      async (request, reply) => {
        await service.requestPasswordReset(request.body.email);
        return reply.code(202).send({ status: 'accepted' as const });
      },
    );

    app.post(
      '/v1/auth/password-reset/confirm',
      {
        schema: {
          operationId: 'confirmPasswordReset',
          summary: 'Set a new password with the mailed token',
          description:
            'Sets the password and signs the account out everywhere (every session is revoked). Two-factor ' +
            'authentication stays as it was. An invalid, used or expired token answers 400 `EMAIL_TOKEN_INVALID`. ' +
            'Public.',
          tags: ['auth'],
          body: ConfirmPasswordResetBody,
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        unwrap(await service.confirmPasswordReset(request.body.token, request.body.newPassword));
        return reply.code(204).send(null);
      },
    );
  };
}
