import type { KeelModule } from '../../../infra/module.ts';
import type { Runtime } from '../../../infra/runtime.ts';
import type { EventsService } from '../../../platform/events/index.ts';
import type { VerdictSource } from '../index.ts';
import { ATTESTATION_ERRORS } from './errors.ts';
import { ATTESTATION_EVENTS } from './events.ts';
import { ATTESTATION_IDS } from './ids.ts';
import { attestationsRoutes } from './routes.ts';
import { type AttestationsService, createAttestationsService } from './service.ts';
import { createTracker, type Tracker } from './tracker.ts';

export { REGISTRY_ABI, REGISTRY_NAME } from './contract.ts';
export { COMMITMENT_DOMAIN, commitmentOf, type Opening } from './domain/commitment.ts';
export { CONFIRMATIONS_BY_CHAIN, confirmationsRequired } from './domain/tracking.ts';
export { ATTESTATION_CONFIRMED, ATTESTATION_FAILED, ATTESTATION_REVOKED } from './events.ts';
export type { AttestationsService } from './service.ts';
export { WITHDRAWING_EVENTS } from './tracker.ts';

/** How often the tracker runs a pass when nothing wakes it. */
export const TRACKER_INTERVAL_MS = 1_000;

export interface IdentityAttestationsModule extends KeelModule {
  readonly service: AttestationsService;
  readonly tracker: Tracker;
}

/**
 * On-chain attestations of verified verdicts (docs/identity.md#attestations): routes to attest,
 * list and revoke, and a background tracker that signs, sends and confirms the transactions.
 */
export function createIdentityAttestationsModule(
  runtime: Runtime,
  deps: { events: Pick<EventsService, 'emit' | 'readAll'>; verdicts: Pick<VerdictSource, 'getVerdict'> },
): IdentityAttestationsModule {
  let wake: (() => void) | undefined;
  const service = createAttestationsService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    chains: runtime.chains,
    secretBox: runtime.secretBox,
    verdicts: deps.verdicts,
    onQueued: () => wake?.(),
  });
  const tracker = createTracker({
    database: runtime.database,
    clock: runtime.clock,
    chains: runtime.chains,
    log: runtime.log,
    events: deps.events,
    service,
  });
  let running: Promise<void> | undefined;
  let stopping = false;
  const log = runtime.log.child({ component: 'identity-attestations' });

  async function loop() {
    while (!stopping) {
      try {
        await tracker.tick();
      } catch (error) {
        log.error({ err: error }, 'attestation tracker pass failed; retrying');
      }
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, TRACKER_INTERVAL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  }

  return {
    name: 'identity-attestations',
    vocabulary: { errors: ATTESTATION_ERRORS, idPrefixes: ATTESTATION_IDS, events: ATTESTATION_EVENTS },
    service,
    tracker,
    routes: attestationsRoutes(service),
    background: {
      async start() {
        stopping = false;
        running = loop();
      },
      async stop() {
        stopping = true;
        wake?.();
        await running;
      },
    },
  };
}
