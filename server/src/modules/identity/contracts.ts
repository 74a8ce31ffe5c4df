/**
 * The identity module's internal contracts: what the subjects and verifications parts offer,
 * and the port they need from the wallets part. index.ts re-exports them as the public surface;
 * they live here so the implementations can import them without importing index.ts.
 */

/** A subject is one human, as an org knows them. */
export interface Subject {
  readonly id: string;
  readonly orgId: string;
  /** The dApp's own id for this human, unique per org when set. */
  readonly externalId: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface SubjectInput {
  readonly externalId?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface SubjectsService {
  /**
   * Creates a subject. An `externalId` already used in the org answers the existing subject
   * with `created: false` rather than failing, so a dApp can call it on every sign-in.
   */
  create(orgId: string, input?: SubjectInput): Promise<{ subject: Subject; created: boolean }>;
  /** Another org's subject is `undefined`, like a missing one. */
  get(orgId: string, id: string): Promise<Subject | undefined>;
  /** Like `get`, but throws SUBJECT_NOT_FOUND (404). */
  require(orgId: string, id: string): Promise<Subject>;
  /** The subject a CAIP-10 account is linked to, through the wallet directory. */
  findByAccount(orgId: string, caip10: string): Promise<Subject | undefined>;
  list(orgId: string, options: { cursor?: string; limit: number }): Promise<Page<Subject>>;
}

/**
 * The port identity needs from wallet linking (implemented in `wallets/`). A wallet belongs to
 * at most one subject per org. Accounts are CAIP-10 strings; the directory decides how it
 * compares them (for `eip155`, an EOA is the same key on every EVM chain, so it may match the
 * address on any chain id).
 */
export interface WalletDirectory {
  /** The subject's linked accounts, CAIP-10, oldest first. */
  accountsOf(orgId: string, subjectId: string): Promise<string[]>;
  /** The subject an account is linked to, if any. */
  subjectOf(orgId: string, caip10: string): Promise<string | undefined>;
}

/** Until wallet linking is assembled: no subject has linked accounts. */
export const NO_WALLETS: WalletDirectory = {
  accountsOf: async () => [],
  subjectOf: async () => undefined,
};

export interface Page<T> {
  readonly data: T[];
  readonly nextCursor: string | null;
}

export const PROVIDERS = ['world_id', 'passport', 'proof_of_humanity', 'brightid'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export const OUTCOMES = ['verified', 'not_verified', 'needs_review'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * What a verification decided, in the shape an attestation needs. `outcome` is final for this
 * verification; a later verification of the same subject may decide otherwise.
 */
export interface Verdict {
  readonly verificationId: string;
  readonly orgId: string;
  readonly subjectId: string;
  readonly outcome: Outcome;
  /** Set when a provider identifier this subject presented is bound to another subject. */
  readonly duplicateOf: string | null;
  /** The providers whose evidence passed the policy. */
  readonly passedProviders: readonly ProviderName[];
  readonly totalWeight: number;
  readonly decidedAt: Date;
  /** When the evidence lapses (max evidence age or provider expiry); null when it does not. */
  readonly expiresAt: Date | null;
  /** Set once the re-verification job replaced this verdict. */
  readonly expiredAt: Date | null;
}

export interface VerdictSource {
  /** Another org's verification, or a missing one, is `undefined`. */
  getVerdict(orgId: string, verificationId: string): Promise<Verdict | undefined>;
  /** The subject's most recent verdict, if it was ever verified. */
  latestVerdict(orgId: string, subjectId: string): Promise<Verdict | undefined>;
}
