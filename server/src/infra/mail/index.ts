export {
  createLogMailer,
  createMailer,
  createSmtpMailer,
  MAIL_SUBJECT_MAX_LENGTH,
  type Mailer,
  type MailMessage,
} from './mailer.ts';
