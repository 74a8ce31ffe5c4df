import { Type } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import type { AnalyticsService } from './analytics.ts';
import type { ConfigurationService, ProviderConfigInput, ProviderConfigView } from './configuration.ts';
import type { ProviderName, Subject, SubjectsService } from './contracts.ts';
import {
  AnalyticsQuery,
  AnalyticsSchema,
  BrightIdConfigBody,
  CreateSubjectBody,
  PageQuery,
  PassportConfigBody,
  PolicyBody,
  PolicySchema,
  ProofOfHumanityConfigBody,
  ProviderConfigSchema,
  ProviderParams,
  pageOf,
  SubjectParams,
  SubjectSchema,
  VerificationParams,
  VerificationSchema,
  VerificationsQuery,
  VerifyBody,
  WorldIdConfigBody,
} from './schemas.ts';
import type { VerificationsService, VerificationView } from './verifications.ts';

const iso = (date: Date | null) => (date ? date.toISOString() : null);

const presentSubject = (subject: Subject) => ({
  id: subject.id,
  externalId: subject.externalId,
  metadata: subject.metadata,
  createdAt: subject.createdAt.toISOString(),
  updatedAt: subject.updatedAt.toISOString(),
});

const presentConfig = (config: ProviderConfigView) => ({
  ...config,
  createdAt: config.createdAt.toISOString(),
  updatedAt: config.updatedAt.toISOString(),
});

export const presentVerification = (view: VerificationView) => ({
  id: view.id,
  subjectId: view.subjectId,
  account: view.account,
  outcome: view.outcome,
  duplicate: view.duplicateOf !== null,
  duplicateOf: view.duplicateOf,
  reasons: [...view.reasons],
  totalWeight: view.totalWeight,
  passedProviders: [...view.passedProviders],
  evidence: view.evidence.map((item) => ({
    ...item,
    observedAt: item.observedAt.toISOString(),
    providerExpiresAt: iso(item.providerExpiresAt),
  })),
  expiresAt: iso(view.expiresAt),
  expiredAt: iso(view.expiredAt),
  supersedes: view.supersedes,
  createdAt: view.createdAt.toISOString(),
});

const read = { permission: 'identity:read' } as const;
const write = { permission: 'identity:write' } as const;
const common = { tags: ['identity'], security: [{ bearer: [] }] };

/** The provider-specific fields of a configuration body: everything but the common ones. */
function splitConfig(body: Record<string, unknown>): ProviderConfigInput {
  const { enabled, baseUrl, apiKey, timeoutMs, retries, cacheTtlSeconds, ...settings } = body;
  return {
    enabled: enabled as boolean | undefined,
    baseUrl: baseUrl as string | null | undefined,
    apiKey: apiKey as string | null | undefined,
    timeoutMs: timeoutMs as number | undefined,
    retries: retries as number | undefined,
    cacheTtlSeconds: cacheTtlSeconds as number | undefined,
    settings,
  };
}

const PROVIDER_ROUTES = [
  {
    provider: 'world_id',
    body: WorldIdConfigBody,
    operationId: 'configureWorldId',
    summary: 'Configure World ID (cloud verify or on-chain router)',
  },
  {
    provider: 'passport',
    body: PassportConfigBody,
    operationId: 'configureHumanPassport',
    summary: 'Configure Human Passport (Stamps API v2)',
  },
  {
    provider: 'proof_of_humanity',
    body: ProofOfHumanityConfigBody,
    operationId: 'configureProofOfHumanity',
    summary: 'Configure Proof of Humanity registries (v1, v2, cross-chain)',
  },
  {
    provider: 'brightid',
    body: BrightIdConfigBody,
    operationId: 'configureBrightId',
    summary: 'Configure BrightID (node v6)',
  },
] as const;

export function identityRoutes(services: {
  subjects: SubjectsService;
  configuration: ConfigurationService;
  verifications: VerificationsService;
  analytics: AnalyticsService;
}) {
  const { subjects, configuration, verifications, analytics } = services;
  return async (app: App) => {
    // ── Subjects ──────────────────────────────────────────────────────────────────────────────
    app.post(
      '/v1/identity/subjects',
      {
        config: { ...write, idempotent: true },
        schema: {
          ...common,
          operationId: 'createIdentitySubject',
          summary: 'Create a subject (one human)',
          description: 'With an `externalId` already in use, answers 200 with the existing subject.',
          body: CreateSubjectBody,
          response: { 201: SubjectSchema, 200: SubjectSchema },
        },
      },
      async (request, reply) => {
        const { subject, created } = await subjects.create(requireOrgId(request), request.body);
        return reply.code(created ? 201 : 200).send(presentSubject(subject));
      },
    );

    app.get(
      '/v1/identity/subjects',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'listIdentitySubjects',
          summary: 'List subjects, newest first',
          querystring: PageQuery,
          response: { 200: pageOf(SubjectSchema) },
        },
      },
      async (request) => {
        const page = await subjects.list(requireOrgId(request), request.query);
        return { data: page.data.map(presentSubject), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/identity/subjects/:subjectId',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'getIdentitySubject',
          summary: 'Get a subject',
          params: SubjectParams,
          response: { 200: SubjectSchema },
        },
      },
      async (request) =>
        presentSubject(await subjects.require(requireOrgId(request), request.params.subjectId)),
    );

    // ── Provider configuration ────────────────────────────────────────────────────────────────
    for (const route of PROVIDER_ROUTES) {
      app.put(
        `/v1/identity/providers/${route.provider}`,
        {
          config: write,
          schema: {
            ...common,
            operationId: route.operationId,
            summary: route.summary,
            description:
              'Replaces the provider’s configuration. The API key is sealed at rest and never returned. See ' +
              'docs/identity.md for pointing it at the real service.',
            body: route.body,
            response: { 200: ProviderConfigSchema },
          },
        },
        async (request) =>
          presentConfig(
            await configuration.put(
              requireOrgId(request),
              route.provider as ProviderName,
              splitConfig(request.body as Record<string, unknown>),
            ),
          ),
      );
    }

    app.get(
      '/v1/identity/providers',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'listIdentityProviders',
          summary: 'List the configured providers',
          response: { 200: Type.Object({ data: Type.Array(ProviderConfigSchema) }) },
        },
      },
      async (request) => ({ data: (await configuration.list(requireOrgId(request))).map(presentConfig) }),
    );

    app.get(
      '/v1/identity/providers/:provider',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'getIdentityProvider',
          summary: 'Get a provider’s configuration',
          params: ProviderParams,
          response: { 200: ProviderConfigSchema },
        },
      },
      async (request) =>
        presentConfig(await configuration.get(requireOrgId(request), request.params.provider)),
    );

    app.delete(
      '/v1/identity/providers/:provider',
      {
        config: write,
        schema: {
          ...common,
          operationId: 'deleteIdentityProvider',
          summary: 'Remove a provider’s configuration and its API key',
          params: ProviderParams,
          response: { 204: Type.Null({ description: 'Removed.' }) },
        },
      },
      async (request, reply) => {
        await configuration.remove(requireOrgId(request), request.params.provider);
        return reply.code(204).send(null);
      },
    );

    // ── Policy ────────────────────────────────────────────────────────────────────────────────
    app.get(
      '/v1/identity/policy',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'getIdentityPolicy',
          summary: 'Get the verdict policy',
          response: { 200: PolicySchema },
        },
      },
      async (request) => {
        const { policy, isDefault, updatedAt } = await configuration.getPolicy(requireOrgId(request));
        return { ...policy, isDefault, updatedAt: iso(updatedAt) };
      },
    );

    app.put(
      '/v1/identity/policy',
      {
        config: write,
        schema: {
          ...common,
          operationId: 'setIdentityPolicy',
          summary: 'Set the verdict policy',
          description:
            '`verified` needs every required provider to pass, at least `minSources` passing providers and a total ' +
            'weight of at least `minTotalWeight`. Only the providers named here are run.',
          body: PolicyBody,
          response: { 200: PolicySchema },
        },
      },
      async (request) => {
        const { policy, updatedAt } = await configuration.putPolicy(requireOrgId(request), request.body);
        return { ...policy, isDefault: false, updatedAt: updatedAt.toISOString() };
      },
    );

    // ── Verifications ─────────────────────────────────────────────────────────────────────────
    app.post(
      '/v1/verifications',
      {
        // A verification is a domain record, kept immutable with its evidence in the verification
        // history and announced by its events; the per-org audit chain (one locked head per org)
        // is for administrative changes, and would serialise every verification of an org.
        config: { ...write, idempotent: true, auditAction: false },
        schema: {
          ...common,
          operationId: 'createVerification',
          summary: 'Verify that a subject or an account is a unique human',
          description:
            'Runs the policy’s providers in parallel under a 2 s deadline and answers the verdict with each ' +
            'provider’s evidence. Emits `verification.completed`, and `human.duplicate_detected` when an ' +
            'identifier belongs to another subject.',
          body: VerifyBody,
          response: { 201: VerificationSchema },
        },
      },
      async (request, reply) =>
        reply
          .code(201)
          .send(presentVerification(await verifications.verify(requireOrgId(request), request.body))),
    );

    app.get(
      '/v1/verifications',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'listVerifications',
          summary: 'List verifications (the verdict history), newest first',
          querystring: VerificationsQuery,
          response: { 200: pageOf(VerificationSchema) },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        if (request.query.subjectId) await subjects.require(orgId, request.query.subjectId);
        const page = await verifications.list(orgId, request.query);
        return { data: page.data.map(presentVerification), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/v1/verifications/:verificationId',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'getVerification',
          summary: 'Get a verification with its evidence',
          params: VerificationParams,
          response: { 200: VerificationSchema },
        },
      },
      async (request) =>
        presentVerification(await verifications.get(requireOrgId(request), request.params.verificationId)),
    );

    // ── Analytics ─────────────────────────────────────────────────────────────────────────────
    app.get(
      '/v1/identity/analytics',
      {
        config: read,
        schema: {
          ...common,
          operationId: 'getIdentityAnalytics',
          summary: 'Verification counts by outcome, provider and day (UTC)',
          querystring: AnalyticsQuery,
          response: { 200: AnalyticsSchema },
        },
      },
      async (request) => {
        const { from, to } = request.query;
        if (from > to)
          throw new KeelError('VALIDATION_FAILED', 'querystring/from must not be after to', {
            errors: [{ path: '/from', in: 'query', message: 'must not be after to' }],
          });
        return analytics.counts(requireOrgId(request), from, to);
      },
    );
  };
}
