import type { EntryPayload, PersonalData } from './chain.ts';

/** One entry as exported: the exact hashed payload, its hash, and the personal data kept beside it. */
export interface ExportedEntry {
  readonly seq: number;
  readonly hash: string;
  readonly payload: EntryPayload;
  readonly personalData: PersonalData | null;
}

/** One JSON object per line (JSON Lines): `payload` is what `hash` covers, byte for byte once canonical. */
export function jsonlLine(entry: ExportedEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

export const CSV_COLUMNS = [
  'seq',
  'occurred_at',
  'actor_kind',
  'actor_id',
  'action',
  'target',
  'outcome',
  'status',
  'request_id',
  'details',
  'ip',
  'user_agent',
  'actor_email',
  'prev_hash',
  'hash',
] as const;

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One CSV record (RFC 4180: CRLF, fields quoted when needed, quotes doubled). */
export function csvRow(entry: ExportedEntry): string {
  const { payload, personalData } = entry;
  const fields: Array<string | number | null> = [
    entry.seq,
    payload.occurredAt,
    payload.actor.kind,
    payload.actor.id,
    payload.action,
    payload.target && JSON.stringify(payload.target),
    payload.outcome,
    payload.status,
    payload.requestId,
    payload.details && JSON.stringify(payload.details),
    personalData?.ip ?? null,
    personalData?.userAgent ?? null,
    personalData?.actorEmail ?? null,
    payload.prevHash,
    entry.hash,
  ];
  return `${fields.map(csvField).join(',')}\r\n`;
}

// A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection);
// it is prefixed with a quote, so CSV is for reading. JSONL is the faithful, verifiable export.
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
