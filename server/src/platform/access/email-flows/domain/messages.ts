import type { MailMessage } from '../../../../infra/mail/index.ts';

/** The mail of each flow: plain text for every client, and the same as simple HTML. */

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

function html(paragraphs: readonly string[], link: { href: string; label: string }): string {
  return [
    ...paragraphs.map((text) => `<p>${escapeHtml(text)}</p>`),
    `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>`,
  ].join('\n');
}

export function verificationMail(to: string, link: string, expiresAt: Date): MailMessage {
  const lines = [
    'Confirm that this is your email address for Keel.',
    `The link works once and expires at ${expiresAt.toISOString()}.`,
    'If you did not ask for this, ignore this mail.',
  ];
  return {
    to,
    subject: 'Verify your email address',
    text: `${lines[0]}\n\n${link}\n\n${lines[1]}\n${lines[2]}\n`,
    html: html(lines, { href: link, label: 'Verify your email address' }),
  };
}

export function passwordResetMail(to: string, link: string, expiresAt: Date): MailMessage {
  const lines = [
    'Someone asked to reset the password of your Keel account.',
    `Choose a new password with this link; it works once and expires at ${expiresAt.toISOString()}. Resetting signs you out everywhere.`,
    'If you did not ask for this, ignore this mail: your password stays as it is.',
  ];
  return {
    to,
    subject: 'Reset your password',
    text: `${lines[0]}\n\n${link}\n\n${lines[1]}\n${lines[2]}\n`,
    html: html(lines, { href: link, label: 'Choose a new password' }),
  };
}
