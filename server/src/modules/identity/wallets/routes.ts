import { Type } from 'typebox';
import { requireOrgId } from '../../../infra/http/auth.ts';
import type { App } from '../../../infra/http/pipeline.ts';
import { formatAccount } from './domain/caip10.ts';
import { adr036SignDoc } from './domain/cosmos.ts';
import {
  ChallengeBody,
  ChallengeSchema,
  LinkBody,
  LinkedWalletResponse,
  PageQuery,
  SubjectParams,
  WalletPage,
  WalletParams,
} from './schemas.ts';
import type { Challenge, Wallet, WalletsService } from './service.ts';

export const presentWallet = (wallet: Wallet) => ({
  id: wallet.id,
  subjectId: wallet.subjectId,
  accountId: wallet.accountId,
  namespace: wallet.namespace,
  reference: wallet.reference,
  address: wallet.address,
  kind: wallet.kind,
  linkedAt: wallet.linkedAt.toISOString(),
});

const presentChallenge = (challenge: Challenge) => ({
  id: challenge.id,
  subjectId: challenge.subjectId,
  accountId: formatAccount(challenge.account),
  namespace: challenge.account.namespace,
  message: challenge.message,
  signDoc:
    challenge.account.namespace === 'cosmos'
      ? adr036SignDoc(challenge.account.address, new TextEncoder().encode(challenge.message))
      : null,
  issuedAt: challenge.issuedAt.toISOString(),
  expiresAt: challenge.expiresAt.toISOString(),
});

const common = { tags: ['identity'], security: [{ bearer: [] }] };

export function walletsRoutes(service: WalletsService) {
  return async (app: App) => {
    app.post(
      '/v1/identity/subjects/:subjectId/wallets/challenges',
      {
        config: { permission: 'identity:write' },
        schema: {
          ...common,
          operationId: 'createWalletChallenge',
          summary: 'Create a challenge for a wallet to sign',
          description:
            'Returns the message the wallet signs to prove control: Sign-In with Ethereum (EIP-4361) for eip155, ' +
            'Sign-In With Solana for solana, ADR-036 arbitrary data for cosmos. The challenge is single-use and ' +
            'expires after 10 minutes.',
          params: SubjectParams,
          body: ChallengeBody,
          response: { 201: ChallengeSchema },
        },
      },
      async (request, reply) => {
        const challenge = await service.createChallenge(
          requireOrgId(request),
          request.params.subjectId,
          request.body,
        );
        return reply.code(201).send(presentChallenge(challenge));
      },
    );

    app.post(
      '/v1/identity/subjects/:subjectId/wallets',
      {
        config: { permission: 'identity:write' },
        schema: {
          ...common,
          operationId: 'linkWallet',
          summary: 'Link a wallet with a signed challenge',
          description:
            'Checks the signature over the challenge message and links the wallet. 201 for a new link, 200 when ' +
            'the subject already had it. A wallet linked to another subject of the org answers 409 ' +
            'WALLET_LINKED_TO_OTHER_SUBJECT with that `subjectId`.',
          params: SubjectParams,
          body: LinkBody,
          response: { 200: LinkedWalletResponse, 201: LinkedWalletResponse },
        },
      },
      async (request, reply) => {
        const { wallet, created } = await service.link(
          requireOrgId(request),
          request.params.subjectId,
          request.body,
        );
        return reply.code(created ? 201 : 200).send({ ...presentWallet(wallet), created });
      },
    );

    app.get(
      '/v1/identity/subjects/:subjectId/wallets',
      {
        config: { permission: 'identity:read' },
        schema: {
          ...common,
          operationId: 'listSubjectWallets',
          summary: 'List the wallets linked to a subject',
          params: SubjectParams,
          querystring: PageQuery,
          response: { 200: WalletPage },
        },
      },
      async (request) => {
        const page = await service.list(requireOrgId(request), request.params.subjectId, request.query);
        return { data: page.data.map(presentWallet), nextCursor: page.nextCursor };
      },
    );

    app.delete(
      '/v1/identity/subjects/:subjectId/wallets/:accountId',
      {
        config: { permission: 'identity:write' },
        schema: {
          ...common,
          operationId: 'unlinkWallet',
          summary: 'Unlink a wallet from a subject',
          description:
            'The wallet can then be linked to any subject of the org. Its link stays in the history.',
          params: WalletParams,
          response: { 204: Type.Null({ description: 'Unlinked.' }) },
        },
      },
      async (request, reply) => {
        await service.unlink(requireOrgId(request), request.params.subjectId, request.params.accountId);
        return reply.code(204).send(null);
      },
    );
  };
}
