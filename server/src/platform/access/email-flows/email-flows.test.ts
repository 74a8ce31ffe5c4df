import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { bearer, createUserSession, FIXTURE_PASSWORD, uniqueEmail } from '../../../../test/fixtures.ts';
import {
  buildTestApp,
  createTestDatabase,
  type TestApp,
  type TestDatabase,
} from '../../../../test/harness.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../../../../test/smtp.ts';
import { assembleModules } from '../../../app.ts';
import { manualClock } from '../../../infra/clock.ts';
import type { EmailFlowsService } from './index.ts';
import {
  MAILS_PER_ADDRESS_PER_WINDOW,
  PASSWORD_RESET_TOKEN_TTL_MS,
  VERIFICATION_TOKEN_TTL_MS,
} from './service.ts';

const NEW_PASSWORD = 'a brand new passphrase';

describe('email verification and password reset', () => {
  let database: TestDatabase;
  let keel: TestApp;
  let smtp: TestSmtpServer;
  let flows: EmailFlowsService;
  const clock = manualClock('2026-11-21T12:00:00Z');

  before(async () => {
    database = await createTestDatabase();
    smtp = await startTestSmtpServer();
    keel = await buildTestApp(database, {
      clock,
      config: { mail: { smtpUrl: smtp.url, from: 'Keel <keel@example.com>' } },
    });
    const module = assembleModules(keel.runtime).find((candidate) => candidate.name === 'access-email-flows');
    flows = (module as unknown as { service: EmailFlowsService }).service;
  });
  after(async () => {
    await keel.close();
    await smtp.close();
    await database.drop();
  });

  const inject = (options: InjectOptions) => keel.app.inject(options);
  const post = (url: string, payload: object) => inject({ method: 'POST', url, payload });
  /** The token in the link of a mail that arrived at the local SMTP server. */
  const tokenIn = (text: string, page: string) => {
    const match = new RegExp(`http://localhost:8080/${page}\\?token=(keel_[a-z]+_[0-9A-Za-z]+)`).exec(text);
    assert.ok(match, `the mail links to /${page}: ${text}`);
    return match[1]!;
  };

  test('a verification mail carries a single-use link that verifies the address', async () => {
    const user = await createUserSession(keel.app);
    const bystander = await createUserSession(keel.app);
    const asked = await post('/v1/auth/email-verification', { email: user.email.toUpperCase() });
    assert.equal(asked.statusCode, 202);
    const mail = await smtp.waitForMail(user.email);
    assert.equal(mail.subject, 'Verify your email address');
    assert.equal(mail.from, '"Keel" <keel@example.com>');
    const token = tokenIn(mail.text, 'verify-email');
    assert.match(mail.html ?? '', new RegExp(`href="http://localhost:8080/verify-email\\?token=${token}"`));

    const confirmed = await post('/v1/auth/email-verification/confirm', { token });
    assert.equal(confirmed.statusCode, 200);
    assert.deepEqual(confirmed.json(), { email: user.email, verified: true });
    const me = await inject({ method: 'GET', url: '/v1/me', headers: user.headers });
    assert.equal(me.json().user.emailVerifiedAt, clock.now().toISOString());
    const other = await inject({ method: 'GET', url: '/v1/me', headers: bystander.headers });
    assert.equal(other.json().user.emailVerifiedAt, null, 'only the user the token was mailed to');

    const again = await post('/v1/auth/email-verification/confirm', { token });
    assert.equal(again.statusCode, 400);
    assert.equal(again.json().code, 'EMAIL_TOKEN_INVALID');
    const stored = await keel.runtime.database.db.selectFrom('email_tokens').selectAll().execute();
    assert.ok(
      stored.every((row) => !row.token_hash.toString('utf8').includes(token)),
      'tokens are stored hashed',
    );
  });

  test('an unknown or already verified address gets the same answer and no mail', async () => {
    const verified = await createUserSession(keel.app);
    await keel.runtime.database.db
      .updateTable('users')
      .set({ email_verified_at: clock.now() })
      .where('id', '=', verified.userId)
      .execute();
    const before = smtp.messages.length;
    const unknown = await post('/v1/auth/email-verification', { email: uniqueEmail('nobody') });
    const known = await post('/v1/auth/email-verification', { email: verified.email });
    const reset = await post('/v1/auth/password-reset', { email: uniqueEmail('nobody') });
    for (const response of [unknown, known, reset]) {
      assert.equal(response.statusCode, 202);
      assert.deepEqual(response.json(), { status: 'accepted' });
    }
    await flows.drain();
    assert.equal(smtp.messages.length, before);
  });

  test('a verification link expires after 24 hours, and only the newest link works', async () => {
    const user = await createUserSession(keel.app);
    await post('/v1/auth/email-verification', { email: user.email });
    const first = tokenIn((await smtp.waitForMail(user.email)).text, 'verify-email');
    await post('/v1/auth/email-verification', { email: user.email });
    const second = tokenIn((await smtp.waitForMail(user.email)).text, 'verify-email');
    assert.equal((await post('/v1/auth/email-verification/confirm', { token: first })).statusCode, 400);
    clock.advance(VERIFICATION_TOKEN_TTL_MS + 1);
    const expired = await post('/v1/auth/email-verification/confirm', { token: second });
    assert.equal(expired.statusCode, 400);
    assert.equal(expired.json().code, 'EMAIL_TOKEN_INVALID');
  });

  test('a password reset link sets the new password and signs the account out everywhere', async () => {
    const user = await createUserSession(keel.app);
    const otherDevice = await post('/v1/auth/login', { email: user.email, password: FIXTURE_PASSWORD });
    assert.equal(otherDevice.statusCode, 200);
    assert.equal((await post('/v1/auth/password-reset', { email: user.email })).statusCode, 202);
    const mail = await smtp.waitForMail(user.email);
    assert.equal(mail.subject, 'Reset your password');
    const token = tokenIn(mail.text, 'reset-password');

    const reset = await post('/v1/auth/password-reset/confirm', { token, newPassword: NEW_PASSWORD });
    assert.equal(reset.statusCode, 204);
    for (const headers of [user.headers, bearer(otherDevice.json().token)]) {
      const me = await inject({ method: 'GET', url: '/v1/me', headers });
      assert.equal(me.statusCode, 401, 'every earlier session is revoked');
    }
    const old = await post('/v1/auth/login', { email: user.email, password: FIXTURE_PASSWORD });
    assert.equal(old.statusCode, 401);
    const fresh = await post('/v1/auth/login', { email: user.email, password: NEW_PASSWORD });
    assert.equal(fresh.statusCode, 200);
    assert.notEqual(fresh.json().user.emailVerifiedAt, null, 'the mailed link also proved the address');

    const again = await post('/v1/auth/password-reset/confirm', {
      token,
      newPassword: 'yet another passphrase',
    });
    assert.equal(again.statusCode, 400, 'the link works once');
  });

  test('a reset link expires after an hour', async () => {
    const user = await createUserSession(keel.app);
    await post('/v1/auth/password-reset', { email: user.email });
    const token = tokenIn((await smtp.waitForMail(user.email)).text, 'reset-password');
    clock.advance(PASSWORD_RESET_TOKEN_TTL_MS + 1);
    const late = await post('/v1/auth/password-reset/confirm', { token, newPassword: NEW_PASSWORD });
    assert.equal(late.statusCode, 400);
    assert.equal(
      (await post('/v1/auth/login', { email: user.email, password: FIXTURE_PASSWORD })).statusCode,
      200,
    );
  });

  test('a verification token cannot reset a password, nor a reset token verify', async () => {
    const user = await createUserSession(keel.app);
    await post('/v1/auth/email-verification', { email: user.email });
    const verifyToken = tokenIn((await smtp.waitForMail(user.email)).text, 'verify-email');
    const misused = await post('/v1/auth/password-reset/confirm', {
      token: verifyToken,
      newPassword: NEW_PASSWORD,
    });
    assert.equal(misused.statusCode, 400);
    await post('/v1/auth/password-reset', { email: user.email });
    const resetToken = tokenIn((await smtp.waitForMail(user.email)).text, 'reset-password');
    assert.equal((await post('/v1/auth/email-verification/confirm', { token: resetToken })).statusCode, 400);
    assert.equal((await post('/v1/auth/email-verification/confirm', { token: verifyToken })).statusCode, 200);
  });

  test(`at most ${MAILS_PER_ADDRESS_PER_WINDOW} mails of a kind reach one address per hour`, async () => {
    const user = await createUserSession(keel.app);
    for (let request = 0; request < MAILS_PER_ADDRESS_PER_WINDOW + 2; request += 1) {
      assert.equal((await post('/v1/auth/password-reset', { email: user.email })).statusCode, 202);
    }
    await flows.drain();
    const received = smtp.messages.filter((mail) => mail.envelope.to.includes(user.email));
    assert.equal(received.length, MAILS_PER_ADDRESS_PER_WINDOW);
    for (let taken = 0; taken < received.length; taken += 1) await smtp.waitForMail(user.email);
  });

  test('bad input answers 400 naming each field', async () => {
    const email = await post('/v1/auth/password-reset', { email: 'not-an-email' });
    assert.equal(email.statusCode, 400);
    assert.equal(email.json().errors[0].path, '/email');
    const confirm = await post('/v1/auth/password-reset/confirm', { token: '', newPassword: 'short' });
    assert.equal(confirm.statusCode, 400);
    assert.deepEqual(
      confirm
        .json()
        .errors.map((e: { path: string }) => e.path)
        .sort(),
      ['/newPassword', '/token'],
    );
    const unknown = await post('/v1/auth/email-verification/confirm', { token: 'keel_ev_nothing' });
    assert.equal(unknown.json().code, 'EMAIL_TOKEN_INVALID');
  });
});
