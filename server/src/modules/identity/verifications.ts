import { sql } from 'kysely';
import { getAddress, isAddress } from 'viem';
import type { Clock } from '../../infra/clock.ts';
import type { Database, Tx } from '../../infra/db/database.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { Logger } from '../../infra/observability/logger.ts';
import type { EventsService, NewEvent } from '../../platform/events/index.ts';
import type { ConfigurationService } from './configuration.ts';
import type {
  Outcome,
  Page,
  ProviderName,
  SubjectsService,
  Verdict,
  VerdictSource,
  WalletDirectory,
} from './contracts.ts';
import { decide } from './domain/policy.ts';
import { HUMAN_DUPLICATE_DETECTED, VERIFICATION_COMPLETED, VERIFICATION_EXPIRED } from './events.ts';
import type { Evidence, ProviderRunner } from './providers/runner.ts';
import {
  type AddressInput,
  type BrightIdInput,
  type EvidenceOutcome,
  finding,
  type ProviderAdapter,
  type ResolvedConfig,
  type WorldIdInput,
} from './providers/types.ts';
import {
  bindIdentifiers,
  dueVerifications,
  type EvidenceRow,
  evidenceOf,
  findVerification,
  hasNewerVerification,
  insertVerification,
  latestVerification,
  listVerifications,
  markExpired,
  type NewEvidence,
  type StoredRequest,
  type VerificationRow,
} from './store.ts';
import { page } from './subjects.ts';
import { parseAccount } from './wallets/index.ts';

/** Providers run in parallel; one that has not answered by then counts as `timeout` evidence. */
export const VERIFICATION_DEADLINE_MS = 2_000;
/** EVM addresses of one subject checked per address-based provider (Passport, Proof of Humanity). */
export const MAX_ADDRESSES_PER_VERIFICATION = 5;
/** Expired verdicts the re-verification job handles per run. */
export const EXPIRY_BATCH_SIZE = 100;
/** Expired verdicts re-verified at once by one job run. */
export const REVERIFY_CONCURRENCY = 8;

export interface VerificationRequest {
  readonly subjectId?: string;
  /** CAIP-10, or a bare EVM address (taken as `eip155:1:<address>`). */
  readonly account?: string;
  readonly worldId?: Omit<WorldIdInput, 'signal'> & { readonly signal?: string };
  readonly brightId?: { readonly appUserId?: string };
  /** Run only these of the policy's providers. */
  readonly providers?: readonly ProviderName[];
}

export interface EvidenceView {
  readonly provider: ProviderName;
  readonly outcome: EvidenceOutcome;
  readonly accepted: boolean;
  readonly score: number | null;
  readonly identifier: string | null;
  readonly chainId: number | null;
  readonly errorCode: string | null;
  readonly cached: boolean;
  readonly latencyMs: number;
  readonly observedAt: Date;
  readonly providerExpiresAt: Date | null;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface VerificationView {
  readonly id: string;
  readonly subjectId: string;
  readonly account: string | null;
  readonly outcome: Outcome;
  readonly duplicateOf: string | null;
  readonly reasons: readonly string[];
  readonly totalWeight: number;
  readonly passedProviders: readonly ProviderName[];
  readonly evidence: readonly EvidenceView[];
  readonly expiresAt: Date | null;
  readonly expiredAt: Date | null;
  readonly supersedes: string | null;
  readonly createdAt: Date;
}

export interface Adapters {
  readonly world_id: ProviderAdapter<unknown, WorldIdInput>;
  readonly passport: ProviderAdapter<unknown, AddressInput>;
  readonly proof_of_humanity: ProviderAdapter<unknown, AddressInput>;
  readonly brightid: ProviderAdapter<unknown, BrightIdInput>;
}

/** Thrown inside the transaction when another worker re-verified the same expired verdict first. */
class AlreadyHandled extends Error {}

const toEvidenceView = (row: EvidenceRow): EvidenceView => ({
  provider: row.provider,
  outcome: row.outcome,
  accepted: row.accepted,
  score: row.score,
  identifier: row.identifier,
  chainId: row.chain_id,
  errorCode: row.error_code,
  cached: row.cached,
  latencyMs: row.latency_ms,
  observedAt: row.observed_at,
  providerExpiresAt: row.provider_expires_at,
  detail: row.detail,
});

function toView(row: VerificationRow, evidence: readonly EvidenceRow[]): VerificationView {
  const views = evidence.map(toEvidenceView);
  return {
    id: row.id,
    subjectId: row.subject_id,
    account: row.account,
    outcome: row.outcome,
    duplicateOf: row.duplicate_of,
    reasons: row.reasons,
    totalWeight: row.total_weight,
    passedProviders: views.filter((item) => item.accepted).map((item) => item.provider),
    evidence: views,
    expiresAt: row.expires_at,
    expiredAt: row.expired_at,
    supersedes: row.supersedes,
    createdAt: row.created_at,
  };
}

const toVerdict = (orgId: string, view: VerificationView): Verdict => ({
  verificationId: view.id,
  orgId,
  subjectId: view.subjectId,
  outcome: view.outcome,
  duplicateOf: view.duplicateOf,
  passedProviders: view.passedProviders,
  totalWeight: view.totalWeight,
  decidedAt: view.createdAt,
  expiresAt: view.expiresAt,
  expiredAt: view.expiredAt,
});

/** Best first: a pass beats a no, a no beats not knowing. */
const OUTCOME_RANK: Record<EvidenceOutcome, number> = {
  passed: 0,
  failed: 1,
  not_found: 2,
  error: 3,
  unavailable: 4,
  timeout: 5,
  skipped: 6,
};

function normaliseAccount(raw: string): string {
  if (isAddress(raw, { strict: false })) return `eip155:1:${getAddress(raw)}`;
  const parsed = parseAccount(raw);
  if (!parsed.ok)
    throw new KeelError('VALIDATION_FAILED', `body/account ${parsed.detail}`, {
      errors: [{ path: '/account', in: 'body', message: parsed.detail }],
    });
  const { namespace, reference, address } = parsed.value;
  return `${namespace}:${reference}:${address}`;
}

const evmAddressOf = (caip10: string) => {
  const [namespace, , address] = caip10.split(':');
  return namespace === 'eip155' && address ? address.toLowerCase() : undefined;
};

/**
 * Verification: runs the org's providers in parallel under a deadline, decides the verdict
 * with the org's policy, binds provider identifiers so one human counts once, and writes the
 * verdict, its evidence and its events in one transaction.
 */
export function createVerificationsService(deps: {
  database: Database;
  clock: Clock;
  newId: IdGenerator;
  log: Logger;
  events: Pick<EventsService, 'emit'>;
  configuration: ConfigurationService;
  runner: ProviderRunner;
  adapters: Adapters;
  subjects: SubjectsService;
  wallets: () => WalletDirectory;
}) {
  const { database, clock, newId, log, events, configuration, runner, adapters, subjects } = deps;
  const { db } = database;

  async function load(orgId: string, id: string): Promise<VerificationView | undefined> {
    const row = await findVerification(db, orgId, id);
    if (!row) return undefined;
    return toView(row, await evidenceOf(db, orgId, [row.id]));
  }

  /** Runs one provider for several inputs (one per address) and keeps the best answer. */
  async function runBest<Input>(
    adapter: ProviderAdapter<unknown, Input>,
    config: ResolvedConfig<unknown>,
    inputs: readonly Input[],
    deadline: AbortSignal,
  ): Promise<Evidence> {
    const results = await Promise.all(inputs.map((input) => runner.run(adapter, config, input, deadline)));
    return results.sort((a, b) => OUTCOME_RANK[a.outcome] - OUTCOME_RANK[b.outcome])[0]!;
  }

  /** Resolves with `timeout` evidence if the provider has not answered when the deadline fires. */
  function underDeadline(
    work: Promise<Evidence>,
    deadline: AbortSignal,
    startedAt: number,
  ): Promise<Evidence> {
    return new Promise<Evidence>((resolve, reject) => {
      const onAbort = () =>
        resolve({
          ...finding(clock.now(), { outcome: 'timeout', errorCode: 'deadline_exceeded' }),
          cached: false,
          latencyMs: Math.round(performance.now() - startedAt),
        });
      if (deadline.aborted) return onAbort();
      deadline.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => deadline.removeEventListener('abort', onAbort));
    });
  }

  async function verify(
    orgId: string,
    request: VerificationRequest,
    options: { supersedes?: VerificationRow } = {},
  ): Promise<VerificationView> {
    if (!request.subjectId && !request.account)
      throw new KeelError('VALIDATION_FAILED', 'body must name a subjectId or an account', {
        errors: [{ path: '', in: 'body', message: 'must have subjectId or account' }],
      });
    const account = request.account ? normaliseAccount(request.account) : undefined;
    const wallets = deps.wallets();
    // 1. Who is asking, and which accounts speak for them.
    let subjectId = request.subjectId;
    if (subjectId) await subjects.require(orgId, subjectId);
    else if (account) subjectId = await wallets.subjectOf(orgId, account);
    const accounts = new Set<string>(subjectId ? await wallets.accountsOf(orgId, subjectId) : []);
    if (account) accounts.add(account);
    const addresses = [
      ...new Set([...accounts].map(evmAddressOf).filter((a): a is string => a !== undefined)),
    ].slice(0, MAX_ADDRESSES_PER_VERIFICATION);

    // 2. What to run: the policy's providers that are configured and enabled.
    const setup = await configuration.setup(orgId);
    const wanted = (Object.keys(setup.policy.providers) as ProviderName[]).filter(
      (provider) =>
        setup.configs.has(provider) && (!request.providers || request.providers.includes(provider)),
    );
    const previous = options.supersedes ? await evidenceOf(db, orgId, [options.supersedes.id]) : [];
    const startedAt = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), VERIFICATION_DEADLINE_MS);
    const deadline = controller.signal;
    const skipped = (errorCode: string): Promise<Evidence> =>
      Promise.resolve({
        ...finding(clock.now(), { outcome: 'skipped', errorCode }),
        cached: false,
        latencyMs: 0,
      });
    const plan = (provider: ProviderName): Promise<Evidence> => {
      const config = setup.configs.get(provider)!;
      switch (provider) {
        case 'world_id': {
          if (request.worldId) {
            const input = { ...request.worldId, signal: request.worldId.signal ?? '' };
            return runner.run(adapters.world_id, config, input, deadline);
          }
          // A proof is single-use: a re-verification carries the earlier evidence forward as it was.
          const earlier = previous.find((row) => row.provider === 'world_id' && row.outcome !== 'skipped');
          if (!earlier) return skipped('no_proof');
          return Promise.resolve({
            ...finding(earlier.observed_at, {
              outcome: earlier.outcome,
              score: earlier.score,
              identifier: earlier.identifier,
              chainId: earlier.chain_id,
              errorCode: earlier.error_code,
              detail: { ...earlier.detail, carriedFrom: earlier.verification_id },
              providerExpiresAt: earlier.provider_expires_at,
            }),
            cached: true,
            latencyMs: 0,
          });
        }
        case 'passport':
        case 'proof_of_humanity':
          if (addresses.length === 0) return skipped('no_evm_address');
          return runBest(
            adapters[provider],
            config,
            addresses.map((address) => ({ address })),
            deadline,
          );
        case 'brightid': {
          const appUserId = request.brightId?.appUserId ?? addresses[0];
          if (!appUserId) return skipped('no_app_user_id');
          return runner.run(adapters.brightid, config, { appUserId }, deadline);
        }
        default:
          throw new Error(`no adapter for provider ${provider satisfies never}`);
      }
    };
    const plans = wanted.map((provider): [ProviderName, Promise<Evidence>] => [provider, plan(provider)]);
    let evidence: [ProviderName, Evidence][];
    try {
      evidence = await Promise.all(
        plans.map(
          async ([provider, work]) =>
            [provider, await underDeadline(work, deadline, startedAt)] as [ProviderName, Evidence],
        ),
      );
    } finally {
      clearTimeout(timer);
    }
    if (evidence.every(([, item]) => item.outcome === 'skipped'))
      throw new KeelError(
        'NO_IDENTITY_PROVIDERS',
        wanted.length === 0
          ? 'No provider of the policy is configured and enabled for this org'
          : `No enabled provider can check this request (${evidence.map(([p, e]) => `${p}: ${e.errorCode}`).join(', ')})`,
      );

    // 3. One transaction: the subject, identifier bindings, the verdict, its evidence, its events.
    const id = newId('vrf');
    return database.transaction(async (tx) => {
      const now = clock.now();
      if (options.supersedes && !(await markExpired(tx, orgId, options.supersedes.id, now)))
        throw new AlreadyHandled();
      const presented = evidence
        .filter(([, item]) => item.outcome === 'passed' && item.identifier)
        .map(([provider, item]) => ({
          provider,
          identifier: item.identifier!,
          chainIds: item.chainIds ?? (item.chainId ? [item.chainId] : []),
        }));
      const binding = { orgId, verificationId: id, now };
      let bound: Map<ProviderName, string>;
      if (subjectId)
        ({ bound } = await bindIdentifiers(tx, { ...binding, subject: { id: subjectId } }, presented));
      else ({ subjectId, bound } = await bindToAccountSubject(tx, binding, account!, presented));
      const duplicates = presented
        .map((item) => item.provider)
        .filter((provider) => bound.get(provider) !== subjectId);
      const duplicateOf = duplicates.length > 0 ? bound.get(duplicates[0]!)! : null;
      const decision = decide(
        setup.policy,
        evidence.map(([provider, item]) => ({ provider, ...item })),
        now,
        { duplicateOf },
      );
      const accepted = new Map(
        decision.assessments.map((assessment) => [assessment.provider, assessment.accepted]),
      );
      const rows: NewEvidence[] = evidence.map(([provider, item]) => ({
        org_id: orgId,
        verification_id: id,
        provider,
        outcome: item.outcome,
        accepted: accepted.get(provider) ?? false,
        score: item.score,
        identifier: item.identifier,
        chain_id: item.chainId,
        error_code: item.errorCode,
        detail:
          item.chainIds && item.chainIds.length > 1
            ? { ...item.detail, chainIds: item.chainIds }
            : item.detail,
        cached: item.cached,
        latency_ms: item.latencyMs,
        observed_at: item.observedAt,
        provider_expires_at: item.providerExpiresAt,
        created_at: now,
      }));
      const storedRequest: StoredRequest = {
        subjectId,
        ...(account ? { account } : {}),
        ...(request.brightId?.appUserId ? { brightIdAppUserId: request.brightId.appUserId } : {}),
        ...(request.providers ? { providers: request.providers } : {}),
      };
      const row: VerificationRow = {
        org_id: orgId,
        id,
        subject_id: subjectId,
        account: account ?? null,
        outcome: decision.outcome,
        reasons: decision.reasons,
        total_weight: decision.totalWeight,
        duplicate_of: duplicateOf,
        policy: setup.policy,
        request: storedRequest,
        supersedes: options.supersedes?.id ?? null,
        expires_at: decision.expiresAt,
        expired_at: null,
        created_at: now,
      };
      await insertVerification(tx, row, rows);
      const emitted: NewEvent[] = [
        {
          type: VERIFICATION_COMPLETED.type,
          payload: {
            verificationId: id,
            subjectId,
            outcome: decision.outcome,
            duplicateOf,
            passedProviders: decision.passedProviders,
            evidence: rows.map((item) => ({
              provider: item.provider,
              outcome: item.outcome,
              errorCode: item.error_code,
            })),
            expiresAt: decision.expiresAt?.toISOString() ?? null,
            supersedes: options.supersedes?.id ?? null,
          },
        },
      ];
      for (const provider of duplicates)
        emitted.push({
          type: HUMAN_DUPLICATE_DETECTED.type,
          payload: { subjectId, duplicateOf: duplicateOf!, provider, verificationId: id },
        });
      if (options.supersedes)
        emitted.push({
          type: VERIFICATION_EXPIRED.type,
          payload: {
            verificationId: options.supersedes.id,
            subjectId: options.supersedes.subject_id,
            previousOutcome: options.supersedes.outcome,
            expiresAt: options.supersedes.expires_at!.toISOString(),
            reverificationId: id,
            newOutcome: decision.outcome,
          },
        });
      await events.emit(tx, orgId, emitted);
      return toView(
        row,
        rows.map((item) => ({ ...item, detail: { ...item.detail } })),
      );
    });
  }

  /**
   * Binds the identifiers of a verification asked by an account nobody linked to its subject:
   * the subject an identifier it presented is bound to (the same PoH humanity or World ID
   * nullifier, maybe seen on another chain, is the same human), else the subject of earlier
   * verifications of the account, else a new subject. Finding (or creating) and binding is one
   * statement. A lock on (org, account), taken only when nobody is found, keeps two concurrent
   * first verifications of one account from creating two subjects.
   */
  async function bindToAccountSubject(
    tx: Tx,
    binding: { orgId: string; verificationId: string; now: Date },
    account: string,
    presented: Parameters<typeof bindIdentifiers>[2],
  ): Promise<{ subjectId: string; bound: Map<ProviderName, string> }> {
    const { orgId } = binding;
    const known = await bindIdentifiers(tx, { ...binding, subject: { account } }, presented);
    if (known.subjectId) return { subjectId: known.subjectId, bound: known.bound };
    // Only a first verification creates a subject: lock, then look again under the lock (in a
    // statement of its own, which sees what the verification that held the lock committed),
    // creating the subject and binding to it in that same statement.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`identity:${orgId}:${account}`}, 0))`.execute(
      tx,
    );
    const orCreate = { id: newId('sbj'), metadata: { createdBy: 'verification', account } };
    const settled = await bindIdentifiers(tx, { ...binding, subject: { account, orCreate } }, presented);
    return { subjectId: settled.subjectId!, bound: settled.bound };
  }

  const verdicts: VerdictSource = {
    async getVerdict(orgId, verificationId) {
      const view = await load(orgId, verificationId);
      return view ? toVerdict(orgId, view) : undefined;
    },
    async latestVerdict(orgId, subjectId) {
      const row = await latestVerification(db, orgId, subjectId);
      if (!row) return undefined;
      return toVerdict(orgId, toView(row, await evidenceOf(db, orgId, [row.id])));
    },
  };

  return {
    ...verdicts,
    verify: (orgId: string, request: VerificationRequest) => verify(orgId, request),

    async get(orgId: string, id: string): Promise<VerificationView> {
      const view = await load(orgId, id);
      if (!view) throw new KeelError('VERIFICATION_NOT_FOUND', `No verification ${id}`);
      return view;
    },

    async list(
      orgId: string,
      options: { cursor?: string; limit: number; subjectId?: string; outcome?: Outcome },
    ): Promise<Page<VerificationView>> {
      const rows = await listVerifications(db, orgId, options);
      const more = rows.length > options.limit;
      const pageRows = more ? rows.slice(0, options.limit) : rows;
      const evidence = await evidenceOf(
        db,
        orgId,
        pageRows.map((row) => row.id),
      );
      const views = pageRows.map((row) =>
        toView(
          row,
          evidence.filter((item) => item.verification_id === row.id),
        ),
      );
      return {
        ...page(views, options.limit, (view) => view.id),
        nextCursor: more ? pageRows.at(-1)!.id : null,
      };
    },

    /**
     * The re-verification job: every verdict whose evidence stopped counting is verified again
     * with the inputs it was asked with (a World ID proof cannot be reused: its evidence is
     * carried forward as it was), and `verification.expired` is emitted with the new verdict.
     * A verdict a newer verification already replaced is only marked expired. Returns how many
     * verdicts it re-verified.
     */
    async expireDue(limit = EXPIRY_BATCH_SIZE): Promise<number> {
      const due = await dueVerifications(db, clock.now(), limit);
      let reverified = 0;
      let next = 0;
      // A few at a time: each may wait up to the deadline on its providers.
      const worker = async () => {
        while (next < due.length) {
          const row = due[next++]!;
          if (await reverify(row)) reverified += 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(REVERIFY_CONCURRENCY, due.length) }, worker));
      return reverified;
    },
  };

  /** Re-verifies one expired verdict; false when there was nothing (more) to do. */
  async function reverify(row: VerificationRow): Promise<boolean> {
    if (await hasNewerVerification(db, row.org_id, row.subject_id, row.id)) {
      await database.transaction((tx) => markExpired(tx, row.org_id, row.id, clock.now()));
      return false;
    }
    const stored = row.request;
    try {
      await verify(
        row.org_id,
        {
          subjectId: row.subject_id,
          ...(stored.account ? { account: stored.account } : {}),
          ...(stored.brightIdAppUserId ? { brightId: { appUserId: stored.brightIdAppUserId } } : {}),
          ...(stored.providers ? { providers: stored.providers } : {}),
        },
        { supersedes: row },
      );
      return true;
    } catch (error) {
      if (error instanceof AlreadyHandled) return false;
      if (!(error instanceof KeelError)) throw error;
      // Nothing can re-verify it any more (the org removed its providers): the verdict lapses
      // without a new one.
      await database.transaction(async (tx) => {
        const now = clock.now();
        if (!(await markExpired(tx, row.org_id, row.id, now))) return;
        await events.emit(tx, row.org_id, [
          {
            type: VERIFICATION_EXPIRED.type,
            payload: {
              verificationId: row.id,
              subjectId: row.subject_id,
              previousOutcome: row.outcome,
              expiresAt: row.expires_at!.toISOString(),
              reverificationId: null,
              newOutcome: null,
            },
          },
        ]);
      });
      log.warn(
        { orgId: row.org_id, verificationId: row.id, code: error.code },
        'expired verdict could not be re-verified',
      );
      return false;
    }
  }
}

export type VerificationsService = ReturnType<typeof createVerificationsService>;
