import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** How long `waitForMail` waits for a message before the test fails. */
export const MAIL_WAIT_TIMEOUT_MS = 5_000;
/** Messages larger than this are refused, as a real server would. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface ReceivedMail {
  /** Envelope sender (MAIL FROM) and recipients (RCPT TO), as the server saw them. */
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
  /** The From header, as `Name <address>` text. */
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string | undefined;
  /** The SMTP user that authenticated the session, if any. */
  readonly user: string | undefined;
}

export interface TestSmtpServer {
  /** `smtp://user:pass@127.0.0.1:<port>`, ready for SMTP_URL. */
  readonly url: string;
  readonly messages: readonly ReceivedMail[];
  /**
   * Resolves with the first message not yet taken that matches (a recipient address or a
   * predicate), waiting for it to arrive; the message is then taken, so a second wait for the
   * same recipient gets the next message.
   */
  waitForMail(match: string | ((mail: ReceivedMail) => boolean), timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

/**
 * A real SMTP server on 127.0.0.1 that accepts mail for anyone after AUTH PLAIN/LOGIN with the
 * given credentials and keeps every message, parsed. It offers no STARTTLS, so nodemailer speaks
 * plain SMTP to it; everything else is the same conversation a production server has.
 */
export async function startTestSmtpServer(
  credentials: { username: string; password: string } = { username: 'keel', password: 'smtp-test-password' },
): Promise<TestSmtpServer> {
  const messages: ReceivedMail[] = [];
  const untaken: ReceivedMail[] = [];
  const waiters = new Set<{
    match: (mail: ReceivedMail) => boolean;
    resolve: (mail: ReceivedMail) => void;
  }>();
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    size: MAX_MESSAGE_BYTES,
    onAuth(auth, _session, callback) {
      if (auth.username === credentials.username && auth.password === credentials.password) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error('Invalid username or password'));
      }
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const to = Array.isArray(parsed.to) ? parsed.to.map((a) => a.text).join(', ') : parsed.to?.text;
          const mail: ReceivedMail = {
            envelope: {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            },
            from: parsed.from?.text ?? '',
            to: to ?? '',
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: parsed.html === false ? undefined : parsed.html,
            user: typeof session.user === 'string' ? session.user : undefined,
          };
          messages.push(mail);
          const waiter = [...waiters].find((candidate) => candidate.match(mail));
          if (waiter) {
            waiters.delete(waiter);
            waiter.resolve(mail);
          } else {
            untaken.push(mail);
          }
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  const user = encodeURIComponent(credentials.username);
  const password = encodeURIComponent(credentials.password);
  return {
    url: `smtp://${user}:${password}@127.0.0.1:${port}`,
    messages,
    waitForMail(match, timeoutMs = MAIL_WAIT_TIMEOUT_MS) {
      const predicate =
        typeof match === 'string'
          ? (mail: ReceivedMail) => mail.envelope.to.some((to) => to.toLowerCase() === match.toLowerCase())
          : match;
      const index = untaken.findIndex(predicate);
      if (index >= 0) return Promise.resolve(untaken.splice(index, 1)[0]!);
      return new Promise<ReceivedMail>((resolve, reject) => {
        const waiter = { match: predicate, resolve };
        waiters.add(waiter);
        setTimeout(() => {
          if (!waiters.delete(waiter)) return;
          reject(new Error(`no mail matching ${String(match)} arrived within ${timeoutMs} ms`));
        }, timeoutMs).unref();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
