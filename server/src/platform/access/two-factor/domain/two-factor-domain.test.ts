import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classifySecondFactor,
  hashRecoveryCode,
  newRecoveryCodes,
  normalizeRecoveryCode,
  RECOVERY_CODE_COUNT,
} from './recovery-codes.ts';
import { checkTotp, newTotpSecret, TOTP_PERIOD_SECONDS, totpCodeAt, totpUri } from './totp.ts';

const STEP_MS = TOTP_PERIOD_SECONDS * 1000;
const at = (ms: number) => new Date(Date.UTC(2026, 10, 21, 12, 0, 0) + ms);

describe('TOTP (RFC 6238)', () => {
  test('matches the RFC 6238 SHA-1 test vector', async () => {
    // RFC 6238 appendix B: secret "12345678901234567890" (base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ),
    // T = 59 s gives 94287082 at 8 digits; the 6-digit code is its last six digits.
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    assert.equal(await totpCodeAt(secret, new Date(59_000)), '287082');
    assert.equal(await totpCodeAt(secret, new Date(1_111_111_109_000)), '081804');
  });

  test('a code is accepted one step either side of now, and not two', async () => {
    const secret = newTotpSecret();
    const code = await totpCodeAt(secret, at(0));
    for (const offset of [-STEP_MS, 0, STEP_MS]) {
      const check = await checkTotp({ secret, code, now: at(offset), lastUsedStep: null });
      assert.equal(check.valid, true, `accepted at ${offset} ms`);
    }
    for (const offset of [-2 * STEP_MS, 2 * STEP_MS]) {
      const check = await checkTotp({ secret, code, now: at(offset), lastUsedStep: null });
      assert.deepEqual(check, { valid: false, reason: 'wrong' }, `refused at ${offset} ms`);
    }
  });

  test('a code whose step is not after the last used step is a replay', async () => {
    const secret = newTotpSecret();
    const code = await totpCodeAt(secret, at(0));
    const first = await checkTotp({ secret, code, now: at(0), lastUsedStep: null });
    assert.ok(first.valid);
    assert.deepEqual(await checkTotp({ secret, code, now: at(1_000), lastUsedStep: first.step }), {
      valid: false,
      reason: 'replayed',
    });
    // An older code stays refused after a newer one was used.
    const older = await totpCodeAt(secret, at(-STEP_MS));
    assert.deepEqual(await checkTotp({ secret, code: older, now: at(0), lastUsedStep: first.step }), {
      valid: false,
      reason: 'replayed',
    });
    const next = await totpCodeAt(secret, at(STEP_MS));
    assert.equal(
      (await checkTotp({ secret, code: next, now: at(STEP_MS), lastUsedStep: first.step })).valid,
      true,
    );
  });

  test('a code that is not six digits is wrong without computing anything', async () => {
    const secret = newTotpSecret();
    for (const code of ['', '12345', '1234567', 'abcdef']) {
      assert.deepEqual(await checkTotp({ secret, code, now: at(0), lastUsedStep: null }), {
        valid: false,
        reason: 'wrong',
      });
    }
  });

  test('the otpauth URI names Keel and the account, and carries the secret', () => {
    const uri = new URL(totpUri('JBSWY3DPEHPK3PXP', 'ada@example.com'));
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    assert.equal(decodeURIComponent(uri.pathname), '/Keel:ada@example.com');
    assert.equal(uri.searchParams.get('secret'), 'JBSWY3DPEHPK3PXP');
    assert.equal(uri.searchParams.get('issuer'), 'Keel');
  });
});

describe('recovery codes', () => {
  test('ten distinct codes of two groups of five', () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, RECOVERY_CODE_COUNT);
    assert.equal(new Set(codes).size, RECOVERY_CODE_COUNT);
    for (const code of codes) assert.match(code, /^[2-9a-z]{5}-[2-9a-z]{5}$/);
  });

  test('case, spaces and the dash do not change a code or its hash', () => {
    const [code] = newRecoveryCodes();
    const typed = ` ${code!.toUpperCase().replace('-', ' ')} `;
    assert.equal(normalizeRecoveryCode(typed), code!.replace('-', ''));
    assert.deepEqual(hashRecoveryCode(typed), hashRecoveryCode(code!));
  });

  test('a submitted code is told apart as TOTP, recovery or neither', () => {
    assert.equal(classifySecondFactor('123456'), 'totp');
    assert.equal(classifySecondFactor('abcde-fghjk'), 'recovery');
    assert.equal(classifySecondFactor('12345'), 'invalid');
    assert.equal(classifySecondFactor('not a code at all'), 'invalid');
  });
});
