import type { Outcome, ProviderName } from '../contracts.ts';
import { type EvidenceOutcome, INCONCLUSIVE_OUTCOMES } from '../providers/types.ts';

/** Evidence older than this does not count unless the policy says otherwise. */
export const DEFAULT_MAX_EVIDENCE_AGE_SECONDS = 30 * 24 * 3600;
export const MAX_EVIDENCE_AGE_SECONDS = 2 * 365 * 24 * 3600;
export const MAX_WEIGHT = 1_000;

export interface ProviderPolicy {
  /** What this provider's passing evidence adds to the total weight. */
  readonly weight: number;
  /** Passing needs a score at least this (only providers that report a score: Passport). */
  readonly minScore?: number;
  /** The verdict is never `verified` unless this provider's evidence passes. */
  readonly required: boolean;
  /** Evidence older than this (from when the provider observed it) no longer counts. */
  readonly maxEvidenceAgeSeconds: number;
}

/**
 * An org's verdict policy. Only the providers listed are run. `verified` needs every required
 * provider to pass, at least `minSources` passing providers and a total weight of at least
 * `minTotalWeight`.
 */
export interface Policy {
  readonly providers: Readonly<Partial<Record<ProviderName, ProviderPolicy>>>;
  readonly minSources: number;
  readonly minTotalWeight: number;
  /** What a would-be-verified subject gets when one of its identifiers belongs to another subject. */
  readonly duplicateOutcome: 'needs_review' | 'not_verified';
}

/** The policy of an org that set none: every enabled provider counts once, one source suffices. */
export function defaultPolicy(providers: readonly ProviderName[]): Policy {
  return {
    providers: Object.fromEntries(
      providers.map((provider) => [
        provider,
        { weight: 1, required: false, maxEvidenceAgeSeconds: DEFAULT_MAX_EVIDENCE_AGE_SECONDS },
      ]),
    ),
    minSources: 1,
    minTotalWeight: 0,
    duplicateOutcome: 'needs_review',
  };
}

export interface EvidenceFacts {
  readonly provider: ProviderName;
  readonly outcome: EvidenceOutcome;
  readonly score: number | null;
  readonly observedAt: Date;
  readonly providerExpiresAt: Date | null;
}

/** Why a piece of evidence does not count, when it does not. */
export type Rejection = 'not_passed' | 'below_min_score' | 'too_old' | 'lapsed_at_provider';

export interface Assessment {
  readonly provider: ProviderName;
  readonly accepted: boolean;
  readonly rejection: Rejection | null;
  /** When accepted evidence stops counting: its age limit or the provider's expiry. */
  readonly countsUntil: Date | null;
}

export interface Decision {
  readonly outcome: Outcome;
  /** Machine-readable reasons for anything but a clean `verified`. */
  readonly reasons: string[];
  readonly totalWeight: number;
  readonly passedProviders: ProviderName[];
  readonly assessments: Assessment[];
  /** When the verdict's evidence stops counting (only for `verified`): the re-verification time. */
  readonly expiresAt: Date | null;
}

/** Whether one piece of evidence counts under the policy at `now`. */
export function assess(policy: ProviderPolicy, evidence: EvidenceFacts, now: Date): Assessment {
  const reject = (rejection: Rejection): Assessment => ({
    provider: evidence.provider,
    accepted: false,
    rejection,
    countsUntil: null,
  });
  if (policy.minScore !== undefined) {
    if (
      evidence.score === null ||
      evidence.outcome === 'error' ||
      evidence.outcome === 'timeout' ||
      evidence.outcome === 'unavailable'
    )
      return reject('not_passed');
    if (evidence.score < policy.minScore) return reject('below_min_score');
  } else if (evidence.outcome !== 'passed') {
    return reject('not_passed');
  }
  const ageLimit = new Date(evidence.observedAt.getTime() + policy.maxEvidenceAgeSeconds * 1000);
  if (ageLimit <= now) return reject('too_old');
  if (evidence.providerExpiresAt && evidence.providerExpiresAt <= now) return reject('lapsed_at_provider');
  const countsUntil =
    evidence.providerExpiresAt && evidence.providerExpiresAt < ageLimit
      ? evidence.providerExpiresAt
      : ageLimit;
  return { provider: evidence.provider, accepted: true, rejection: null, countsUntil };
}

interface Tally {
  readonly weight: number;
  readonly sources: number;
  readonly missingRequired: ProviderName[];
}

function tally(policy: Policy, accepted: ReadonlySet<ProviderName>): Tally {
  let weight = 0;
  const missingRequired: ProviderName[] = [];
  for (const [provider, rule] of Object.entries(policy.providers) as [ProviderName, ProviderPolicy][]) {
    if (accepted.has(provider)) weight += rule.weight;
    else if (rule.required) missingRequired.push(provider);
  }
  return { weight, sources: accepted.size, missingRequired };
}

const meets = (policy: Policy, t: Tally) =>
  t.missingRequired.length === 0 && t.sources >= policy.minSources && t.weight >= policy.minTotalWeight;

/**
 * The verdict. Evidence that is inconclusive (the provider erred, timed out or was unavailable)
 * cannot make a subject verified; but when counting it as passing would have, the verdict is
 * `needs_review` rather than `not_verified`, so an outage does not turn humans away for good.
 * A subject whose identifier belongs to another subject gets the policy's `duplicateOutcome`
 * instead of `verified`.
 */
export function decide(
  policy: Policy,
  evidence: readonly EvidenceFacts[],
  now: Date,
  options: { duplicateOf: string | null },
): Decision {
  const assessments: Assessment[] = [];
  const accepted = new Set<ProviderName>();
  const inconclusive = new Set<ProviderName>();
  for (const item of evidence) {
    const rule = policy.providers[item.provider];
    if (!rule) continue;
    const assessment = assess(rule, item, now);
    assessments.push(assessment);
    if (assessment.accepted) accepted.add(item.provider);
    else if (INCONCLUSIVE_OUTCOMES.has(item.outcome)) inconclusive.add(item.provider);
  }
  const actual = tally(policy, accepted);
  const reasons: string[] = [];
  for (const provider of actual.missingRequired) reasons.push(`required_provider_not_passed:${provider}`);
  if (actual.sources < policy.minSources) reasons.push('too_few_sources');
  if (actual.weight < policy.minTotalWeight) reasons.push('insufficient_weight');

  let outcome: Outcome;
  if (meets(policy, actual)) {
    outcome = 'verified';
  } else if (inconclusive.size > 0 && meets(policy, tally(policy, new Set([...accepted, ...inconclusive])))) {
    outcome = 'needs_review';
    for (const provider of inconclusive) reasons.push(`inconclusive:${provider}`);
  } else {
    outcome = 'not_verified';
  }
  if (options.duplicateOf) {
    reasons.push('duplicate');
    if (outcome === 'verified') outcome = policy.duplicateOutcome;
  }
  const ends = assessments
    .filter((assessment) => assessment.accepted && assessment.countsUntil)
    .map((assessment) => assessment.countsUntil!.getTime());
  return {
    outcome,
    reasons,
    totalWeight: actual.weight,
    passedProviders: [...accepted],
    assessments,
    // The verdict holds while the evidence that made it holds: the first of them to lapse.
    expiresAt: outcome === 'verified' && ends.length > 0 ? new Date(Math.min(...ends)) : null,
  };
}
