import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startTestSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';
import { createLogger } from '../observability/logger.ts';
import { createLogMailer, createMailer, createSmtpMailer } from './mailer.ts';

const silent = createLogger({ level: 'silent', pretty: false });

/** A logger whose lines are kept as parsed JSON, to read what the log mailer wrote. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('mailer', () => {
  let smtp: TestSmtpServer;

  before(async () => {
    smtp = await startTestSmtpServer();
  });
  after(async () => {
    await smtp.close();
  });

  test('the SMTP mailer delivers a message with text and HTML through an authenticated session', async () => {
    const mailer = createSmtpMailer({ url: smtp.url, from: 'Keel <keel@example.com>', log: silent });
    await mailer.send({
      to: 'ada@example.com',
      subject: 'Verify your email',
      text: 'Open https://keel.example.com/verify?token=abc',
      html: '<p>Open <a href="https://keel.example.com/verify?token=abc">this link</a></p>',
    });
    const mail = await smtp.waitForMail('ada@example.com');
    assert.equal(mail.user, 'keel', 'the session authenticated with the URL credentials');
    assert.deepEqual(mail.envelope.to, ['ada@example.com']);
    assert.equal(mail.envelope.from, 'keel@example.com');
    assert.equal(mail.from, '"Keel" <keel@example.com>');
    assert.equal(mail.subject, 'Verify your email');
    assert.equal(mail.text.trim(), 'Open https://keel.example.com/verify?token=abc');
    assert.match(mail.html ?? '', /<a href="https:\/\/keel.example.com\/verify\?token=abc">/);
  });

  test('non-ASCII subjects and bodies arrive intact', async () => {
    const mailer = createSmtpMailer({ url: smtp.url, from: 'keel@example.com', log: silent });
    await mailer.send({ to: 'zoë@example.com', subject: 'Bienvenue, Zoë — ✓', text: 'Grüße ✓' });
    const mail = await smtp.waitForMail((m) => m.subject.startsWith('Bienvenue'));
    assert.equal(mail.subject, 'Bienvenue, Zoë — ✓');
    assert.equal(mail.text.trim(), 'Grüße ✓');
    assert.equal(mail.html, undefined, 'a text-only message has no HTML part');
  });

  test('wrong SMTP credentials make send reject', async () => {
    const url = new URL(smtp.url);
    url.password = 'wrong';
    const mailer = createSmtpMailer({ url: url.toString(), from: 'keel@example.com', log: silent });
    await assert.rejects(mailer.send({ to: 'bob@example.com', subject: 'x', text: 'y' }), /Invalid/);
  });

  test('an unreachable SMTP server makes send reject instead of hanging', async () => {
    const mailer = createSmtpMailer({ url: 'smtp://127.0.0.1:1', from: 'keel@example.com', log: silent });
    await assert.rejects(mailer.send({ to: 'bob@example.com', subject: 'x', text: 'y' }), /ECONNREFUSED/);
  });

  test('a recipient or subject with a line break is refused before anything is sent', async () => {
    const mailer = createSmtpMailer({ url: smtp.url, from: 'keel@example.com', log: silent });
    await assert.rejects(
      mailer.send({ to: 'a@example.com\r\nBcc: victim@example.com', subject: 'x', text: 'y' }),
      /single lines/,
    );
    await assert.rejects(mailer.send({ to: 'a@example.com', subject: 'x\nBcc: v@example.com', text: 'y' }));
  });

  test('without SMTP_URL the mailer writes the message to the log at warn and sends nothing', async () => {
    const { log, lines } = capturingLogger();
    const mailer = createMailer({ smtpUrl: undefined, from: 'Keel <keel@localhost>' }, log);
    assert.equal(mailer.kind, 'log');
    const received = smtp.messages.length;
    await mailer.send({ to: 'dev@example.com', subject: 'Reset your password', text: 'token: t123' });
    assert.match(String(lines[0]?.msg), /SMTP_URL is not set/, 'the start-up warning says mail is not sent');
    const logged = lines.find((line) => line.mail !== undefined);
    assert.equal(logged?.level, 40, 'logged at warn');
    assert.deepEqual(logged?.mail, {
      from: 'Keel <keel@localhost>',
      to: 'dev@example.com',
      subject: 'Reset your password',
      text: 'token: t123',
    });
    assert.equal(smtp.messages.length, received);
  });

  test('createMailer picks SMTP when a URL is configured', () => {
    assert.equal(createMailer({ smtpUrl: smtp.url, from: 'keel@example.com' }, silent).kind, 'smtp');
    assert.equal(createLogMailer({ from: 'keel@example.com', log: silent }).kind, 'log');
  });
});
