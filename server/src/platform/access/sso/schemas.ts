import { Type } from 'typebox';
import { SSO_RETURN_TO_MAX_LENGTH } from './service.ts';

const DateTime = () => Type.String({ format: 'date-time', examples: ['2026-11-21T12:00:00.000Z'] });

const JitRoleSchema = Type.Union(
  [Type.Literal('admin'), Type.Literal('developer'), Type.Literal('billing'), Type.Literal('viewer')],
  {
    description: 'The role a person gets when their first SSO sign-in adds them to the org (never owner).',
    examples: ['developer'],
  },
);

/** Domains one connection may admit people from. */
export const MAX_SSO_EMAIL_DOMAINS = 20;

const EmailDomains = Type.Array(Type.String({ minLength: 1, maxLength: 253, examples: ['acme.example'] }), {
  minItems: 1,
  maxItems: MAX_SSO_EMAIL_DOMAINS,
  description:
    'People not yet in the org join on their first SSO sign-in only with a verified email at one of these domains.',
  examples: [['acme.example']],
});

export const SsoConnectionSchema = Type.Object(
  {
    id: Type.String({ examples: ['sso_01jd7x8m3q9f2k5v6w7y8z9a0b'] }),
    issuer: Type.String({ examples: ['https://login.acme.example'] }),
    clientId: Type.String({ examples: ['keel-prod'] }),
    clientSecretSet: Type.Literal(true, {
      description: 'The client secret is stored sealed and never returned.',
    }),
    emailDomains: EmailDomains,
    defaultRole: JitRoleSchema,
    redirectUri: Type.String({
      description: 'Register this redirect URI for the client at the identity provider.',
      examples: ['https://keel.example.com/v1/auth/sso/callback'],
    }),
    signInUrl: Type.String({
      description: 'Send people here to sign in to this org with SSO.',
      examples: ['https://keel.example.com/v1/auth/sso/start?orgId=org_01jd7x8m3q9f2k5v6w7y8z9a0b'],
    }),
    createdAt: DateTime(),
    updatedAt: DateTime(),
  },
  { $id: 'SsoConnection', title: 'SsoConnection' },
);

export const PutSsoConnectionBody = Type.Object({
  issuer: Type.String({
    minLength: 1,
    maxLength: 500,
    description:
      'The provider’s issuer URL; its discovery document is read from `<issuer>/.well-known/openid-configuration`. HTTPS (HTTP only on this machine).',
    examples: ['https://login.acme.example'],
  }),
  clientId: Type.String({ minLength: 1, maxLength: 500, examples: ['keel-prod'] }),
  clientSecret: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 2_000,
      description: 'Required when creating; leave it out of an update to keep the stored one.',
      examples: ['s3cr3t-from-the-idp'],
    }),
  ),
  emailDomains: EmailDomains,
  defaultRole: Type.Optional(JitRoleSchema),
});

export const SsoStartQuery = Type.Object({
  orgId: Type.String({
    maxLength: 100,
    description: 'The org to sign in to.',
    examples: ['org_01jd7x8m3q9f2k5v6w7y8z9a0b'],
  }),
  returnTo: Type.Optional(
    Type.String({
      maxLength: SSO_RETURN_TO_MAX_LENGTH,
      description: 'A path on this server to land on after signing in (default `/`).',
      examples: ['/dashboard'],
    }),
  ),
});

export const SsoCallbackQuery = Type.Object(
  {
    state: Type.Optional(Type.String({ maxLength: 500 })),
    code: Type.Optional(Type.String({ maxLength: 4_000 })),
    error: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: true },
);
