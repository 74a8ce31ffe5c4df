import type { Clock } from '../../infra/clock.ts';
import type { Db } from '../../infra/db/database.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { IdGenerator } from '../../infra/ids.ts';
import type { Page, Subject, SubjectsService, WalletDirectory } from './contracts.ts';
import {
  findSubject,
  findSubjectByExternalId,
  insertSubject,
  listSubjects,
  type SubjectRow,
} from './store.ts';

export function toSubject(row: SubjectRow): Subject {
  return {
    id: row.id,
    orgId: row.org_id,
    externalId: row.external_id,
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function page<T>(rows: T[], limit: number, cursorOf: (row: T) => string): Page<T> {
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, nextCursor: more ? cursorOf(data.at(-1)!) : null };
}

export function createSubjectsService(deps: {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
  /** Read at call time: wallet linking is assembled after this service exists. */
  wallets: () => WalletDirectory;
}): SubjectsService {
  const { db, clock, newId } = deps;

  const get = async (orgId: string, id: string) => {
    const row = await findSubject(db, orgId, id);
    return row ? toSubject(row) : undefined;
  };

  return {
    async create(orgId, input = {}) {
      const now = clock.now();
      const inserted = await insertSubject(db, {
        org_id: orgId,
        id: newId('sbj'),
        external_id: input.externalId ?? null,
        metadata: { ...input.metadata },
        created_at: now,
        updated_at: now,
      });
      if (inserted) return { subject: toSubject(inserted), created: true };
      // Only a taken external id makes the insert do nothing.
      const existing = await findSubjectByExternalId(db, orgId, input.externalId!);
      if (!existing) throw new Error('subject insert conflicted but no subject has the external id');
      return { subject: toSubject(existing), created: false };
    },
    get,
    async require(orgId, id) {
      const subject = await get(orgId, id);
      if (!subject) throw new KeelError('SUBJECT_NOT_FOUND', `No subject ${id}`);
      return subject;
    },
    async findByAccount(orgId, caip10) {
      const subjectId = await deps.wallets().subjectOf(orgId, caip10);
      return subjectId ? get(orgId, subjectId) : undefined;
    },
    async list(orgId, options) {
      const rows = await listSubjects(db, orgId, options);
      return page(rows.map(toSubject), options.limit, (subject) => subject.id);
    },
  };
}
