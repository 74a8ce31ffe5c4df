import { Type } from 'typebox';
import { Email, Password } from '../schemas.ts';

const Token = (example: string) =>
  Type.String({
    minLength: 1,
    maxLength: 200,
    description: 'The token from the mailed link.',
    examples: [example],
  });

export const EmailBody = Type.Object({ email: Email });

export const ConfirmVerificationBody = Type.Object({
  token: Token('keel_ev_4fQ2mVx8Lr0bTq7WcYk3Hn9Zp1Ds6Ea5Gu2Jo8Xi'),
});

export const EmailVerifiedSchema = Type.Object(
  {
    email: Type.String({ examples: ['ada@example.com'] }),
    verified: Type.Literal(true),
  },
  { $id: 'EmailVerified', title: 'EmailVerified' },
);

export const ConfirmPasswordResetBody = Type.Object({
  token: Token('keel_pr_4fQ2mVx8Lr0bTq7WcYk3Hn9Zp1Ds6Ea5Gu2Jo8Xi'),
  newPassword: Password,
});

export const Accepted = Type.Object(
  { status: Type.Literal('accepted') },
  {
    description: 'The same answer whether or not the address has an account.',
    examples: [{ status: 'accepted' }],
  },
);
