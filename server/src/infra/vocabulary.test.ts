import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defineErrors, type ErrorCode, errorEntry, problem } from './http/errors.ts';
import { unwrap } from './http/result.ts';
import { defineIdPrefixes, newId, registeredIdPrefixes } from './ids.ts';
import { fail, ok } from './result.ts';

describe('module vocabulary', () => {
  test('a module declares its codes; the problem renderer knows them', () => {
    defineErrors('vocabulary-probe', { VOCABULARY_PROBE: { status: 422, title: 'A probe' } });
    assert.equal(errorEntry('VOCABULARY_PROBE').owner, 'vocabulary-probe');
    const body = problem('VOCABULARY_PROBE' as ErrorCode, 'req_1');
    assert.equal(body.status, 422);
    assert.equal(body.type, 'urn:keel:problem:vocabulary-probe');
  });

  test('a code declared by another module, or malformed, is refused', () => {
    assert.throws(
      () => defineErrors('someone-else', { NOT_FOUND: { status: 404, title: 'Gone' } }),
      /declared by keel/,
    );
    assert.throws(() => defineErrors('probe', { 'not-upper': { status: 400, title: 'x' } }), /UPPER_SNAKE/);
  });

  test('id prefixes are owned by one module and must be TypeID prefixes', () => {
    defineIdPrefixes('vocabulary-probe', ['vocabulary_probe']);
    assert.equal(registeredIdPrefixes().get('vocabulary_probe'), 'vocabulary-probe');
    assert.match(newId('vocabulary_probe'), /^vocabulary_probe_[0-9a-z]{26}$/);
    assert.throws(() => defineIdPrefixes('someone-else', ['req']), /declared by keel/);
    assert.throws(() => defineIdPrefixes('probe', ['Bad-Prefix']), /must match/);
  });

  test('unwrap gives the value, or throws the failure as its problem with Retry-After', () => {
    assert.equal(unwrap(ok(7)), 7);
    assert.throws(
      () => unwrap(fail('RATE_LIMITED', 'slow down', { retryAfterMs: 1_500, members: { limit: 3 } })),
      (error: { code: string; status: number; extra: { headers: object; members: object } }) => {
        assert.equal(error.code, 'RATE_LIMITED');
        assert.equal(error.status, 429);
        assert.deepEqual(error.extra.headers, { 'retry-after': '2' });
        assert.deepEqual(error.extra.members, { limit: 3 });
        return true;
      },
    );
  });
});
