import nodemailer from 'nodemailer';
import type { Logger } from '../observability/logger.ts';

/** Longest wait for the SMTP server to accept the TCP (and TLS) connection. */
export const SMTP_CONNECTION_TIMEOUT_MS = 10_000;
/** Longest wait for the server's greeting once connected. */
export const SMTP_GREETING_TIMEOUT_MS = 10_000;
/** Longest a connection may sit idle mid-conversation before the send fails. */
export const SMTP_SOCKET_TIMEOUT_MS = 30_000;
/** Subjects longer than this are a programming error, not something to send. */
export const MAIL_SUBJECT_MAX_LENGTH = 200;

export interface MailMessage {
  /** One recipient address. */
  readonly to: string;
  readonly subject: string;
  /** The plain-text body; every mail has one, so any client can read it. */
  readonly text: string;
  /** An optional HTML alternative of the same content. */
  readonly html?: string;
}

/**
 * How Keel sends mail: verification, password reset, invitations. `send` resolves once the
 * SMTP server has accepted the message and rejects when it did not; callers decide whether a
 * failure is theirs to report.
 */
export interface Mailer {
  readonly kind: 'smtp' | 'log';
  send(message: MailMessage): Promise<void>;
}

function assertSendable(message: MailMessage): void {
  // Addresses and subjects come from validated input; a line break here would be a bug upstream.
  if (/[\r\n]/.test(message.to) || /[\r\n]/.test(message.subject)) {
    throw new Error('mail recipient and subject must be single lines');
  }
  if (message.subject.length > MAIL_SUBJECT_MAX_LENGTH) {
    throw new Error(`mail subject is longer than ${MAIL_SUBJECT_MAX_LENGTH} characters`);
  }
}

/**
 * Sends through the SMTP server at `url`: `smtp://user:pass@host:587` upgrades with STARTTLS
 * when the server offers it, `smtps://user:pass@host:465` speaks TLS from the start. One
 * connection per message: Keel's mail is transactional and low in volume.
 */
export function createSmtpMailer(options: { url: string; from: string; log: Logger }): Mailer {
  const transport = nodemailer.createTransport({
    url: options.url,
    connectionTimeout: SMTP_CONNECTION_TIMEOUT_MS,
    greetingTimeout: SMTP_GREETING_TIMEOUT_MS,
    socketTimeout: SMTP_SOCKET_TIMEOUT_MS,
  });
  const log = options.log.child({ component: 'mail' });
  return {
    kind: 'smtp',
    async send(message) {
      assertSendable(message);
      const info = await transport.sendMail({
        from: options.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html === undefined ? {} : { html: message.html }),
      });
      log.info({ messageId: info.messageId, subject: message.subject }, 'mail sent');
    },
  };
}

/**
 * The embedded default when SMTP_URL is unset: nothing is sent, and each message (recipient,
 * subject and text, links included) is written to the log at `warn`, so a developer can follow a
 * verification or reset link from the console. Production must set SMTP_URL.
 */
export function createLogMailer(options: { from: string; log: Logger }): Mailer {
  const log = options.log.child({ component: 'mail' });
  log.warn('SMTP_URL is not set: mail is written to the log and not sent');
  return {
    kind: 'log',
    async send(message) {
      assertSendable(message);
      log.warn(
        { mail: { from: options.from, to: message.to, subject: message.subject, text: message.text } },
        'mail not sent (SMTP_URL is unset); its content is logged instead',
      );
    },
  };
}

export function createMailer(mail: { smtpUrl: string | undefined; from: string }, log: Logger): Mailer {
  return mail.smtpUrl
    ? createSmtpMailer({ url: mail.smtpUrl, from: mail.from, log })
    : createLogMailer({ from: mail.from, log });
}
