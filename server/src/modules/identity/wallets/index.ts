import type { KeelModule } from '../../../infra/module.ts';
import type { Runtime } from '../../../infra/runtime.ts';
import type { EventsService } from '../../../platform/events/index.ts';
import type { SubjectsService, WalletDirectory } from '../index.ts';
import { IDENTITY_WALLET_ERRORS } from './errors.ts';
import { IDENTITY_WALLET_EVENTS } from './events.ts';
import { IDENTITY_WALLET_IDS } from './ids.ts';
import { walletsRoutes } from './routes.ts';
import { createWalletsService, type WalletsService } from './service.ts';

export { NAMESPACES, type Namespace, parseAccount, type WalletKind } from './domain/caip10.ts';
export { WALLET_LINKED, WALLET_UNLINKED } from './events.ts';
export {
  MAX_WALLETS_PER_SUBJECT,
  WALLET_CHALLENGE_TTL_MS,
  type Wallet,
  type WalletsService,
} from './service.ts';

export const WALLET_CHALLENGE_PRUNE_JOB = 'identity.wallets.prune-challenges';

export interface IdentityWalletsModule extends KeelModule {
  readonly service: WalletsService;
  /** The port the identity core reads linked accounts through. */
  readonly directory: WalletDirectory;
}

/** Wallets linked to subjects by signed challenge (SIWE, SIWS, ADR-036); docs/identity.md#wallets. */
export function createIdentityWalletsModule(
  runtime: Runtime,
  deps: { events: Pick<EventsService, 'emit'>; subjects: Pick<SubjectsService, 'require'> },
): IdentityWalletsModule {
  const service = createWalletsService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    chains: runtime.chains,
    events: deps.events,
    subjects: deps.subjects,
    publicUrl: runtime.config.http.publicUrl,
  });
  return {
    name: 'identity-wallets',
    vocabulary: {
      errors: IDENTITY_WALLET_ERRORS,
      idPrefixes: IDENTITY_WALLET_IDS,
      events: IDENTITY_WALLET_EVENTS,
    },
    service,
    directory: service.directory,
    routes: walletsRoutes(service),
    jobs: [
      {
        name: WALLET_CHALLENGE_PRUNE_JOB,
        cron: '23 * * * *',
        handler: async (_payload, context) => {
          const pruned = await service.pruneChallenges();
          if (pruned > 0) context.log.debug({ pruned }, 'expired wallet challenges deleted');
        },
      },
    ],
  };
}
