/**
 * Identity: proof of personhood (docs/identity.md).
 *
 * ── The contract between the parts of this module (kept stable; see contracts.ts) ──────────
 *
 *  subjects: SubjectsService
 *    create(orgId, { externalId?, metadata? }, tx?) → { subject, created }
 *    get(orgId, id) → Subject | undefined          require(orgId, id) → Subject (404 SUBJECT_NOT_FOUND)
 *    findByAccount(orgId, caip10) → Subject | undefined   (asks the WalletDirectory)
 *    Table `identity_subjects(org_id, id, external_id, metadata, created_at, updated_at)`,
 *    primary key (org_id, id), ids `sbj_…`. Migration version 202611240100 (modules/identity):
 *    a migration that references it must sort after it.
 *
 *  WalletDirectory (implemented by wallets/, passed in as `deps.wallets`)
 *    accountsOf(orgId, subjectId) → CAIP-10[]      subjectOf(orgId, caip10) → subjectId | undefined
 *
 *  verifications: VerdictSource (and more, see verifications.ts)
 *    getVerdict(orgId, verificationId) → Verdict | undefined
 *    latestVerdict(orgId, subjectId) → Verdict | undefined
 *    verify(orgId, { subjectId?, account?, worldId?, brightId?, providers? }) → VerificationView
 *
 *  Events (events.ts): verification.completed, verification.expired, human.duplicate_detected.
 *
 * Composition: `createIdentityModule(runtime, deps)` builds subjects and verifications. Wallet
 * linking and attestations are built after it (they need `subjects` and `verifications`), as
 * KeelModules of their own in app.ts; wallet linking hands its directory back through
 * `deps.wallets`, a function read at call time, so neither side needs the other first.
 */
import { createSsrfGuard } from '../../infra/http/ssrf.ts';
import type { KeelModule } from '../../infra/module.ts';
import type { Runtime } from '../../infra/runtime.ts';
import type { EventsService } from '../../platform/events/index.ts';
import { createAnalyticsService } from './analytics.ts';
import { type ConfigurationService, createConfigurationService } from './configuration.ts';
import { NO_WALLETS, type SubjectsService, type WalletDirectory } from './contracts.ts';
import { IDENTITY_ERRORS } from './errors.ts';
import { IDENTITY_EVENTS } from './events.ts';
import { IDENTITY_IDS } from './ids.ts';
import { identityJobs } from './jobs.ts';
import { IDENTITY_PERMISSIONS } from './permissions.ts';
import { createBrightIdAdapter } from './providers/brightid.ts';
import { createProviderHttp } from './providers/http.ts';
import { createPassportAdapter } from './providers/passport.ts';
import { createProofOfHumanityAdapter } from './providers/proof-of-humanity.ts';
import { createCircuitBreakers } from './providers/resilience.ts';
import { createProviderRunner } from './providers/runner.ts';
import { createWorldIdAdapter } from './providers/world-id.ts';
import { identityRoutes } from './routes.ts';
import { createSubjectsService } from './subjects.ts';
import { createVerificationsService, type VerificationsService } from './verifications.ts';

export type {
  Outcome,
  Page,
  ProviderName,
  Subject,
  SubjectInput,
  SubjectsService,
  Verdict,
  VerdictSource,
  WalletDirectory,
} from './contracts.ts';
export { NO_WALLETS, OUTCOMES, PROVIDERS } from './contracts.ts';
export { HUMAN_DUPLICATE_DETECTED, VERIFICATION_COMPLETED, VERIFICATION_EXPIRED } from './events.ts';
export { REVERIFY_EXPIRED_JOB } from './jobs.ts';
export {
  VERIFICATION_DEADLINE_MS,
  type VerificationRequest,
  type VerificationsService,
  type VerificationView,
} from './verifications.ts';

export interface IdentityModuleDeps {
  readonly events: Pick<EventsService, 'emit'>;
  /**
   * The wallet directory, read on every use. A function because wallet linking is built after
   * this module (it needs `subjects`); until it exists, no subject has linked accounts.
   */
  readonly wallets?: () => WalletDirectory | undefined;
}

export interface IdentityModule extends KeelModule {
  readonly subjects: SubjectsService;
  /** Verification; its `getVerdict`/`latestVerdict` are the VerdictSource attestations read. */
  readonly verifications: VerificationsService;
  readonly configuration: ConfigurationService;
}

export function createIdentityModule(runtime: Runtime, deps: IdentityModuleDeps): IdentityModule {
  const wallets = () => deps.wallets?.() ?? NO_WALLETS;
  const { db } = runtime.database;
  const subjects = createSubjectsService({ db, clock: runtime.clock, newId: runtime.newId, wallets });
  // Provider base URLs are tenant-supplied: the same SSRF rules as webhook endpoints.
  const guard = createSsrfGuard({ allow: runtime.config.webhooks.ssrfAllowlist });
  const http = createProviderHttp(guard);
  const configuration = createConfigurationService({
    db,
    clock: runtime.clock,
    secretBox: runtime.secretBox,
    guard,
    chains: runtime.chains,
  });
  const log = runtime.log.child({ module: 'identity' });
  const verifications = createVerificationsService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    log,
    events: deps.events,
    configuration,
    runner: createProviderRunner({
      kv: runtime.kv,
      clock: runtime.clock,
      breakers: createCircuitBreakers(runtime.clock),
      log,
    }),
    adapters: {
      world_id: createWorldIdAdapter({ http, chains: runtime.chains }),
      passport: createPassportAdapter({ http }),
      proof_of_humanity: createProofOfHumanityAdapter({ chains: runtime.chains }),
      brightid: createBrightIdAdapter({ http }),
    } as Parameters<typeof createVerificationsService>[0]['adapters'],
    subjects,
    wallets,
  });
  return {
    name: 'identity',
    vocabulary: {
      errors: IDENTITY_ERRORS,
      idPrefixes: IDENTITY_IDS,
      permissions: IDENTITY_PERMISSIONS,
      events: IDENTITY_EVENTS,
    },
    subjects,
    verifications,
    configuration,
    routes: identityRoutes({
      subjects,
      configuration,
      verifications,
      analytics: createAnalyticsService({ db }),
    }),
    jobs: identityJobs(verifications),
    close: async () => http.close(),
  };
}
