import { Type } from 'typebox';
import type { App } from '../../../infra/http/pipeline.ts';
import type { CookieSettings } from '../hooks.ts';
import { sessionOf, unwrap } from '../present.ts';
import { MfaRequiredSchema, SignedInSchema } from '../schemas.ts';
import type { AccessService } from '../service.ts';
import { mfaRequired, signedIn } from '../two-factor/signed-in.ts';
import { NonceSchema, SiweBody, WalletListSchema, WalletParams, WalletSchema } from './schemas.ts';
import type { Wallet, WalletService } from './service.ts';

const NoContent = Type.Null({ description: 'No content.' });

const presentWallet = (wallet: Wallet) => ({
  id: wallet.id,
  accountId: wallet.accountId,
  chainId: wallet.chainId,
  address: wallet.address,
  kind: wallet.kind,
  createdAt: wallet.createdAt.toISOString(),
  lastUsedAt: wallet.lastUsedAt.toISOString(),
});

export function walletRoutes(deps: {
  service: WalletService;
  access: AccessService;
  cookies: CookieSettings;
  publicUrl: string;
}) {
  const { service, access, cookies } = deps;
  const origin = new URL(deps.publicUrl);
  return async (app: App) => {
    app.post(
      '/v1/auth/wallet/nonce',
      {
        schema: {
          operationId: 'createSiweNonce',
          summary: 'Get a nonce for sign-in with Ethereum (EIP-4361)',
          description:
            'Returns a single-use nonce (10 minutes) and the `domain` and `URI` the message must name. Public: ' +
            'limited per address.',
          tags: ['auth'],
          response: { 201: NonceSchema },
        },
      },
      async (_request, reply) => {
        const issued = await service.issueNonce();
        return reply.code(201).send({
          nonce: issued.nonce,
          issuedAt: issued.issuedAt.toISOString(),
          expiresAt: issued.expiresAt.toISOString(),
          domain: origin.host,
          uri: origin.origin,
        });
      },
    );

    app.post(
      '/v1/auth/wallet/login',
      {
        schema: {
          operationId: 'logInWithWallet',
          summary: 'Sign in with Ethereum (EIP-4361)',
          description:
            'Checks the message (domain, URI, version, chain id, nonce, Issued At, Expiration Time, Not Before) and ' +
            'its signature: an EOA offline; a smart-contract account on its chain via ERC-1271, or ERC-6492 when it ' +
            'is not deployed yet (its chain needs an RPC URL in CHAIN_RPC_URLS). A wallet seen for the first time ' +
            'creates a user without email or password. Answers `mfa_required` when that user has 2FA on. Public: ' +
            'limited per address.',
          tags: ['auth'],
          body: SiweBody,
          response: { 200: Type.Union([SignedInSchema, MfaRequiredSchema]) },
        },
      },
      async (request, reply) => {
        const { outcome } = unwrap(
          await service.signIn(request.body.message, request.body.signature as `0x${string}`, {
            ip: request.ip,
            userAgent: request.headers['user-agent'],
          }),
        );
        if (outcome.status === 'mfa_required') return mfaRequired(outcome);
        return signedIn(reply, { access, cookies }, outcome);
      },
    );

    app.get(
      '/v1/me/wallets',
      {
        config: { permission: 'account:read' },
        schema: {
          operationId: 'listMyWallets',
          summary: 'The wallets that sign in to your account',
          tags: ['account'],
          response: { 200: WalletListSchema },
        },
      },
      async (request) => ({ data: (await service.list(sessionOf(request).userId)).map(presentWallet) }),
    );

    app.post(
      '/v1/me/wallets',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'linkWallet',
          summary: 'Link a wallet to your account',
          description:
            'Sign a SIWE message with a fresh nonce, exactly as for signing in. The wallet then signs in to this ' +
            'account. A wallet linked to another account answers 409 `WALLET_ALREADY_LINKED`.',
          tags: ['account'],
          body: SiweBody,
          response: { 201: WalletSchema, 200: WalletSchema },
        },
      },
      async (request, reply) => {
        const linked = unwrap(
          await service.link(
            sessionOf(request).userId,
            request.body.message,
            request.body.signature as `0x${string}`,
          ),
        );
        return reply.code(linked.created ? 201 : 200).send(presentWallet(linked.wallet));
      },
    );

    app.delete(
      '/v1/me/wallets/:walletId',
      {
        config: { permission: 'account:write' },
        schema: {
          operationId: 'unlinkWallet',
          summary: 'Unlink a wallet from your account',
          description:
            'Refused (409 `LAST_SIGN_IN_METHOD`) when it is the account’s only way to sign in: no password, no other ' +
            'wallet, no SSO identity.',
          tags: ['account'],
          params: WalletParams,
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        unwrap(await service.unlink(sessionOf(request).userId, request.params.walletId));
        return reply.code(204).send(null);
      },
    );
  };
}
