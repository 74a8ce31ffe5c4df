import client from 'prom-client';
import type { KeelModule } from '../../infra/module.ts';
import type { Runtime } from '../../infra/runtime.ts';
import { AUDIT_ERRORS } from './errors.ts';
import { auditHooks } from './hook.ts';
import { AUDIT_IDS } from './ids.ts';
import { auditJobs } from './jobs.ts';
import { AUDIT_PERMISSIONS } from './permissions.ts';
import { auditRoutes } from './routes.ts';
import { type AuditService, createAuditService } from './service.ts';

export type { AuditActor, ChainVerification, Outcome } from './domain/chain.ts';
export { AUDITED_METHODS, auditActorOf, auditContextOf } from './hook.ts';
export { AUDIT_CHECKPOINT_JOB, AUDIT_PRUNE_JOB } from './jobs.ts';
export {
  AUDIT_RETENTION_MS,
  type AuditEntry,
  type AuditRecord,
  type AuditService,
  type CheckpointExport,
  createAuditService,
  type RecordedEntry,
} from './service.ts';

/**
 * The audit log (docs/audit.md): a hash chain per org of every mutating API call (recorded by a
 * root hook) and every security event (recorded by the module that owns it, through
 * `service.record`), with signed checkpoints, verification, export and retention.
 */
export function createAuditModule(
  runtime: Runtime,
  deps: { retentionMs?: number } = {},
): KeelModule & { service: AuditService; idle(): Promise<void> } {
  const log = runtime.log.child({ module: 'audit' });
  const service = createAuditService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    log,
    secretBox: runtime.secretBox,
    retentionMs: deps.retentionMs,
  });
  const writeFailures = new client.Counter({
    name: 'keel_audit_write_failures_total',
    help: 'Mutating API calls whose audit entry could not be written.',
    registers: [runtime.metrics.registry],
  });
  const brokenChains = new client.Counter({
    name: 'keel_audit_broken_chains_total',
    help: 'Checkpoint runs that found an org’s audit chain broken and signed nothing.',
    registers: [runtime.metrics.registry],
  });
  const http = auditHooks({ service, log, onFailure: () => writeFailures.inc() });
  return {
    name: 'audit',
    vocabulary: { errors: AUDIT_ERRORS, idPrefixes: AUDIT_IDS, permissions: AUDIT_PERMISSIONS },
    service,
    hooks: http.hooks,
    routes: auditRoutes(service),
    jobs: auditJobs(service, { onBrokenChain: () => brokenChains.inc() }),
    idle: http.idle,
    close: http.idle,
  };
}
