import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EvidenceOutcome } from '../providers/types.ts';
import { decide, defaultPolicy, type EvidenceFacts, type Policy } from './policy.ts';

const now = new Date('2026-11-24T12:00:00Z');
const DAY_MS = 86_400_000;
const evidence = (
  provider: EvidenceFacts['provider'],
  outcome: EvidenceOutcome,
  fields: Partial<EvidenceFacts> = {},
): EvidenceFacts => ({ provider, outcome, score: null, observedAt: now, providerExpiresAt: null, ...fields });

const policy: Policy = {
  providers: {
    world_id: { weight: 2, required: true, maxEvidenceAgeSeconds: 30 * 86_400 },
    passport: { weight: 1, minScore: 20, required: false, maxEvidenceAgeSeconds: 7 * 86_400 },
    brightid: { weight: 1, required: false, maxEvidenceAgeSeconds: 30 * 86_400 },
  },
  minSources: 2,
  minTotalWeight: 3,
  duplicateOutcome: 'needs_review',
};

describe('verdict policy', () => {
  test('should verify when every required provider passes and sources and weight suffice', () => {
    const decision = decide(
      policy,
      [evidence('world_id', 'passed'), evidence('passport', 'passed', { score: 25 })],
      now,
      {
        duplicateOf: null,
      },
    );
    assert.equal(decision.outcome, 'verified');
    assert.equal(decision.totalWeight, 3);
    assert.deepEqual(decision.reasons, []);
  });

  test('should not verify without a required provider, however many others pass', () => {
    const decision = decide(
      policy,
      [
        evidence('world_id', 'failed'),
        evidence('passport', 'passed', { score: 40 }),
        evidence('brightid', 'passed'),
      ],
      now,
      { duplicateOf: null },
    );
    assert.equal(decision.outcome, 'not_verified');
    assert.ok(decision.reasons.includes('required_provider_not_passed:world_id'));
  });

  test('should apply the minimum score to the score, not to the provider’s own pass flag', () => {
    const decision = decide(
      policy,
      [evidence('world_id', 'passed'), evidence('passport', 'passed', { score: 19.9 })],
      now,
      {
        duplicateOf: null,
      },
    );
    assert.equal(decision.outcome, 'not_verified');
    assert.equal(decision.assessments.find((a) => a.provider === 'passport')?.rejection, 'below_min_score');
  });

  test('should ask for review when an inconclusive provider could have made the verdict', () => {
    const decision = decide(policy, [evidence('world_id', 'passed'), evidence('passport', 'timeout')], now, {
      duplicateOf: null,
    });
    assert.equal(decision.outcome, 'needs_review');
    assert.ok(decision.reasons.includes('inconclusive:passport'));
  });

  test('should not count evidence older than the provider’s maximum age', () => {
    const old = new Date(now.getTime() - 8 * DAY_MS);
    const decision = decide(
      policy,
      [evidence('world_id', 'passed'), evidence('passport', 'passed', { score: 30, observedAt: old })],
      now,
      { duplicateOf: null },
    );
    assert.equal(decision.outcome, 'not_verified');
    assert.equal(decision.assessments.find((a) => a.provider === 'passport')?.rejection, 'too_old');
  });

  test('should expire the verdict when its first piece of evidence stops counting', () => {
    const lapses = new Date(now.getTime() + 3 * DAY_MS);
    const decision = decide(
      policy,
      [
        evidence('world_id', 'passed'),
        evidence('passport', 'passed', { score: 30, providerExpiresAt: lapses }),
      ],
      now,
      { duplicateOf: null },
    );
    assert.equal(decision.expiresAt?.toISOString(), lapses.toISOString());
  });

  test('should hold back a duplicate with the policy’s duplicate outcome', () => {
    const decision = decide(policy, [evidence('world_id', 'passed'), evidence('brightid', 'passed')], now, {
      duplicateOf: 'sbj_first',
    });
    assert.equal(decision.outcome, 'needs_review');
    assert.ok(decision.reasons.includes('duplicate'));
    const strict = decide(
      { ...policy, duplicateOutcome: 'not_verified' },
      [evidence('world_id', 'passed'), evidence('brightid', 'passed')],
      now,
      {
        duplicateOf: 'sbj_first',
      },
    );
    assert.equal(strict.outcome, 'not_verified');
  });

  test('should verify on any one enabled provider under the default policy', () => {
    const decision = decide(
      defaultPolicy(['passport', 'brightid']),
      [evidence('passport', 'failed'), evidence('brightid', 'passed')],
      now,
      {
        duplicateOf: null,
      },
    );
    assert.equal(decision.outcome, 'verified');
  });
});
