import { Type } from 'typebox';
import { RECOVERY_CODE_COUNT } from './domain/recovery-codes.ts';

const DateTime = (description?: string) =>
  Type.String({
    format: 'date-time',
    examples: ['2026-11-21T12:00:00.000Z'],
    ...(description ? { description } : {}),
  });

/** A 6-digit TOTP code, or a recovery code (`abcde-fghjk`; case, spaces and the dash do not matter). */
export const SecondFactorCode = Type.String({
  minLength: 6,
  maxLength: 32,
  description: 'The 6-digit code from the authenticator app, or one of the recovery codes.',
  examples: ['492039'],
});

const TotpCode = Type.String({
  pattern: '^\\s*\\d{6}\\s*$',
  description: 'The 6-digit code the authenticator app shows now.',
  examples: ['492039'],
});

const RecoveryCodes = Type.Array(Type.String({ examples: ['k7m2p-x9qrt'] }), {
  minItems: RECOVERY_CODE_COUNT,
  maxItems: RECOVERY_CODE_COUNT,
  description: `${RECOVERY_CODE_COUNT} single-use codes for when the authenticator is lost. Shown this once: store them safely.`,
});

export const TwoFactorStatusSchema = Type.Object(
  {
    enabled: Type.Boolean({ description: 'Sign-in asks for a code after the first factor.' }),
    enabledAt: Type.Union([DateTime(), Type.Null()]),
    pending: Type.Boolean({ description: 'An enrolment was started and waits for its first code.' }),
    recoveryCodesRemaining: Type.Integer({ minimum: 0, examples: [10] }),
  },
  { $id: 'TwoFactorStatus', title: 'TwoFactorStatus' },
);

export const TotpEnrolmentSchema = Type.Object(
  {
    secret: Type.String({
      description: 'The base32 TOTP secret, shown this once, for apps that take it typed in.',
      examples: ['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'],
    }),
    otpauthUri: Type.String({
      description: 'Show it as a QR code for the authenticator app to scan.',
      examples: ['otpauth://totp/Keel:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Keel'],
    }),
  },
  { $id: 'TotpEnrolment', title: 'TotpEnrolment' },
);

export const ConfirmTotpBody = Type.Object({ code: TotpCode });

export const TwoFactorEnabledSchema = Type.Object(
  { enabledAt: DateTime(), recoveryCodes: RecoveryCodes },
  { $id: 'TwoFactorEnabled', title: 'TwoFactorEnabled' },
);

export const CodeBody = Type.Object({ code: SecondFactorCode });

export const RecoveryCodesSchema = Type.Object(
  { recoveryCodes: RecoveryCodes },
  { $id: 'RecoveryCodes', title: 'RecoveryCodes' },
);

export const CompleteSignInBody = Type.Object({
  mfaToken: Type.String({
    minLength: 1,
    maxLength: 200,
    description: 'The `mfaToken` of the `mfa_required` answer of a sign-in.',
    examples: ['keel_mfa_4fQ2mVx8Lr0bTq7WcYk3Hn9Zp1Ds6Ea5Gu2Jo8Xi'],
  }),
  code: SecondFactorCode,
});

export const TwoFactorPolicySchema = Type.Object(
  {
    requireForAdmins: Type.Boolean({
      description:
        'Owners and admins without two-factor authentication are refused (403 `TWO_FACTOR_REQUIRED`) on the org’s routes until they enrol.',
    }),
    updatedAt: Type.Union([DateTime(), Type.Null()]),
  },
  { $id: 'TwoFactorPolicy', title: 'TwoFactorPolicy' },
);

export const UpdateTwoFactorPolicyBody = Type.Object({
  requireForAdmins: Type.Boolean({ examples: [true] }),
});
