import type { KeelModule } from '../../../infra/module.ts';
import type { Runtime } from '../../../infra/runtime.ts';
import { cookieSettings } from '../hooks.ts';
import type { AccessService } from '../service.ts';
import { WALLET_SIGN_IN_ERRORS } from './errors.ts';
import { WALLET_SIGN_IN_IDS } from './ids.ts';
import { walletRoutes } from './routes.ts';
import { createWalletService, type WalletService } from './service.ts';

export { createWalletService, type WalletService } from './service.ts';

export const WALLET_NONCE_PRUNE_JOB = 'access.wallet.prune-nonces';

/**
 * The web origins a SIWE message may name: PUBLIC_URL's, and each browser origin allowed by
 * CORS_ORIGINS (a dashboard or dApp served elsewhere).
 */
export function siweOrigins(config: Runtime['config']): string[] {
  const origins = [new URL(config.http.publicUrl).origin];
  for (const origin of config.http.corsOrigins)
    if (origin !== '*' && !origins.includes(origin)) origins.push(origin);
  return origins;
}

/** Sign-in with Ethereum and the wallets linked to users. */
export function createWalletModule(
  runtime: Runtime,
  deps: { access: AccessService },
): KeelModule & { service: WalletService } {
  const { access } = deps;
  const service = createWalletService({
    database: runtime.database,
    clock: runtime.clock,
    newId: runtime.newId,
    chains: runtime.chains,
    origins: siweOrigins(runtime.config),
    access,
  });
  return {
    name: 'access-wallet',
    vocabulary: { errors: WALLET_SIGN_IN_ERRORS, idPrefixes: WALLET_SIGN_IN_IDS },
    service,
    routes: walletRoutes({
      service,
      access,
      cookies: cookieSettings(runtime.config),
      publicUrl: runtime.config.http.publicUrl,
    }),
    jobs: [
      {
        name: WALLET_NONCE_PRUNE_JOB,
        cron: '*/15 * * * *',
        handler: async (_payload, context) => {
          const pruned = await service.pruneNonces();
          if (pruned > 0) context.log.debug({ pruned }, 'expired SIWE nonces deleted');
        },
      },
    ],
  };
}
