import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { requireOrgId } from '../../infra/http/auth.ts';
import { KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import {
  AccountBalanceSchema,
  AccountPage,
  AccountSchema,
  AssetPage,
  AssetSchema,
  BalanceQuery,
  BulkTransfersBody,
  BulkTransfersResponse,
  CreateAccountBody,
  CreateAssetBody,
  ListAccountsQuery,
  ListQuery,
  MAX_BULK_BODY_BYTES,
  ReconciliationSchema,
  TransactionBody,
  TransactionSchema,
  TransferPage,
  TransferRequestSchema,
  TransferSchema,
} from './schemas.ts';
import { type LedgerService, LedgerValidationError, type Result } from './service.ts';

const TAGS = ['ledger'];
const SECURITY = [{ bearer: [] }];
const READ = { permission: 'ledger:read' } as const;
const WRITE = { permission: 'ledger:write', idempotent: true } as const;
const PathId = (description: string, example: string) =>
  Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, description, examples: [example] }) });
const AccountPath = PathId('Account id.', 'acc_01jd7x8m3q9f2k5v6w7y8z9a0b');

/** Unwraps a service result, turning an expected failure into its problem document. */
function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw new KeelError(result.code, result.detail, result.members ? { members: result.members } : {});
}

/** Validation the schema cannot express surfaces as the same 400 as schema validation. */
async function validated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof LedgerValidationError) {
      throw new KeelError('VALIDATION_FAILED', error.message, { errors: error.errors });
    }
    throw error;
  }
}

const created = <T>(reply: FastifyReply, isNew: boolean, body: T) => reply.code(isNew ? 201 : 200).send(body);

export function ledgerRoutes(ledger: LedgerService) {
  return async (app: App) => {
    app.post(
      '/v1/ledger/assets',
      {
        config: WRITE,
        schema: {
          operationId: 'createLedgerAsset',
          summary: 'Create an asset',
          description:
            'Declares a unit of account and the decimal places of its minor unit. Creating an asset that exists with the same scale answers 200 with it.',
          tags: TAGS,
          security: SECURITY,
          body: CreateAssetBody,
          response: { 201: AssetSchema, 200: AssetSchema },
        },
      },
      async (request, reply) => {
        const { asset, created: isNew } = unwrap(
          await ledger.createAsset(requireOrgId(request), request.body),
        );
        return created(reply, isNew, asset);
      },
    );

    app.get(
      '/v1/ledger/assets',
      {
        config: READ,
        schema: {
          operationId: 'listLedgerAssets',
          summary: 'List assets',
          tags: TAGS,
          security: SECURITY,
          querystring: ListQuery,
          response: { 200: AssetPage },
        },
      },
      async (request) => ledger.listAssets(requireOrgId(request), request.query),
    );

    app.get(
      '/v1/ledger/assets/:code',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerAsset',
          summary: 'Get an asset',
          tags: TAGS,
          security: SECURITY,
          params: Type.Object({ code: Type.String({ maxLength: 16, examples: ['USD'] }) }),
          response: { 200: AssetSchema },
        },
      },
      async (request) => {
        const asset = await ledger.getAsset(requireOrgId(request), request.params.code);
        if (!asset) throw new KeelError('ASSET_NOT_FOUND', `No asset ${request.params.code}`);
        return asset;
      },
    );

    app.post(
      '/v1/ledger/accounts',
      {
        config: WRITE,
        schema: {
          operationId: 'createLedgerAccount',
          summary: 'Create an account',
          description:
            'Opens an account in one asset. Send an `id` (or an Idempotency-Key) to make a retry safe: a retry with the same fields answers 200 with the account.',
          tags: TAGS,
          security: SECURITY,
          body: CreateAccountBody,
          response: { 201: AccountSchema, 200: AccountSchema },
        },
      },
      async (request, reply) => {
        const orgId = requireOrgId(request);
        const result = await validated(() =>
          ledger.createAccount(orgId, request.body, { idempotencyKey: request.idempotencyKey }),
        );
        const { account, created: isNew } = unwrap(result);
        return created(reply, isNew, account);
      },
    );

    app.get(
      '/v1/ledger/accounts',
      {
        config: READ,
        schema: {
          operationId: 'listLedgerAccounts',
          summary: 'List accounts',
          tags: TAGS,
          security: SECURITY,
          querystring: ListAccountsQuery,
          response: { 200: AccountPage },
        },
      },
      async (request) => ledger.listAccounts(requireOrgId(request), request.query),
    );

    app.get(
      '/v1/ledger/accounts/:id',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerAccount',
          summary: 'Get an account with its balances',
          tags: TAGS,
          security: SECURITY,
          params: AccountPath,
          response: { 200: AccountSchema },
        },
      },
      async (request) => {
        const account = await ledger.getAccount(requireOrgId(request), request.params.id);
        if (!account) throw new KeelError('ACCOUNT_NOT_FOUND', `No account ${request.params.id}`);
        return account;
      },
    );

    app.get(
      '/v1/ledger/accounts/:id/balance',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerAccountBalance',
          summary: 'Get an account’s balance, now or at a point in time',
          description:
            'Without `at`, the balance now. With `at`, the balance as it was then: the latest balance snapshot before it plus the transfers since.',
          tags: TAGS,
          security: SECURITY,
          params: AccountPath,
          querystring: BalanceQuery,
          response: { 200: AccountBalanceSchema },
        },
      },
      async (request) => {
        const at = request.query.at === undefined ? undefined : new Date(request.query.at);
        const balance = await ledger.getBalance(requireOrgId(request), request.params.id, at);
        if (!balance) throw new KeelError('ACCOUNT_NOT_FOUND', `No account ${request.params.id}`);
        return balance;
      },
    );

    app.get(
      '/v1/ledger/accounts/:id/transfers',
      {
        config: READ,
        schema: {
          operationId: 'listLedgerAccountTransfers',
          summary: 'List an account’s transfers, newest first',
          tags: TAGS,
          security: SECURITY,
          params: AccountPath,
          querystring: ListQuery,
          response: { 200: TransferPage },
        },
      },
      async (request) => {
        const page = await validated(() =>
          ledger.listAccountTransfers(requireOrgId(request), request.params.id, request.query),
        );
        if (!page) throw new KeelError('ACCOUNT_NOT_FOUND', `No account ${request.params.id}`);
        return page;
      },
    );

    app.post(
      '/v1/ledger/transfers',
      {
        config: WRITE,
        schema: {
          operationId: 'createLedgerTransfer',
          summary: 'Create a transfer: posted, pending, post, void or reversal',
          description:
            'Writes one transfer. A retry with the same `id` (or Idempotency-Key) and the same fields answers 200 with the transfer already written; with different fields, 409 TRANSFER_ID_CONFLICT. A failure such as INSUFFICIENT_FUNDS is a problem document naming the account and its available balance.',
          tags: TAGS,
          security: SECURITY,
          body: TransferRequestSchema,
          response: { 201: TransferSchema, 200: TransferSchema },
        },
      },
      async (request, reply) => {
        const orgId = requireOrgId(request);
        const result = await validated(() =>
          ledger.createTransfer(orgId, request.body, { idempotencyKey: request.idempotencyKey }),
        );
        const { transfer, created: isNew } = unwrap(result);
        return created(reply, isNew, transfer);
      },
    );

    app.post(
      '/v1/ledger/transfers/bulk',
      {
        config: WRITE,
        bodyLimit: MAX_BULK_BODY_BYTES,
        schema: {
          operationId: 'createLedgerTransfersBulk',
          summary: 'Create up to 8,190 independent transfers',
          description:
            'Each transfer succeeds or fails on its own, in order, and its result is at its index. The whole request is one batch of the engine: one database transaction.',
          tags: TAGS,
          security: SECURITY,
          body: BulkTransfersBody,
          response: { 200: BulkTransfersResponse },
        },
      },
      async (request) => {
        const orgId = requireOrgId(request);
        const results = await validated(() =>
          ledger.createTransfers(orgId, request.body.transfers, { idempotencyKey: request.idempotencyKey }),
        );
        return { results };
      },
    );

    app.get(
      '/v1/ledger/transfers/by-reference/:reference',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerTransferByReference',
          summary: 'Get a transfer by its external reference',
          tags: TAGS,
          security: SECURITY,
          params: Type.Object({
            reference: Type.String({ minLength: 1, maxLength: 255, examples: ['invoice-2026-0042'] }),
          }),
          response: { 200: TransferSchema },
        },
      },
      async (request) => {
        const transfer = await ledger.findTransferByReference(
          requireOrgId(request),
          request.params.reference,
        );
        if (!transfer)
          throw new KeelError('TRANSFER_NOT_FOUND', `No transfer with reference ${request.params.reference}`);
        return transfer;
      },
    );

    app.get(
      '/v1/ledger/transfers/:id',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerTransfer',
          summary: 'Get a transfer',
          tags: TAGS,
          security: SECURITY,
          params: PathId('Transfer id.', 'trf_01jd7x9b2c3d4e5f6g7h8j9k0m'),
          response: { 200: TransferSchema },
        },
      },
      async (request) => {
        const transfer = await ledger.getTransfer(requireOrgId(request), request.params.id);
        if (!transfer) throw new KeelError('TRANSFER_NOT_FOUND', `No transfer ${request.params.id}`);
        return transfer;
      },
    );

    app.post(
      '/v1/ledger/transactions',
      {
        config: WRITE,
        bodyLimit: MAX_BULK_BODY_BYTES,
        schema: {
          operationId: 'createLedgerTransaction',
          summary: 'Create transfers that commit together or not at all',
          description:
            'Applies the transfers in order; if one fails, none is written and the problem document names it (`index`, `transferId`). Send an `id` (or an Idempotency-Key) to make a retry safe.',
          tags: TAGS,
          security: SECURITY,
          body: TransactionBody,
          response: { 201: TransactionSchema, 200: TransactionSchema },
        },
      },
      async (request, reply) => {
        const orgId = requireOrgId(request);
        const result = await validated(() =>
          ledger.createTransaction(orgId, request.body, { idempotencyKey: request.idempotencyKey }),
        );
        const { created: isNew, ...transaction } = unwrap(result);
        return created(reply, isNew, transaction);
      },
    );

    app.get(
      '/v1/ledger/transactions/:id',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerTransaction',
          summary: 'Get a transaction with its transfers',
          tags: TAGS,
          security: SECURITY,
          params: PathId('Transaction id.', 'txn_01jd7xa0b1c2d3e4f5g6h7j8k9'),
          response: { 200: TransactionSchema },
        },
      },
      async (request) => {
        const transaction = await ledger.getTransaction(requireOrgId(request), request.params.id);
        if (!transaction) throw new KeelError('NOT_FOUND', `No transaction ${request.params.id}`);
        return transaction;
      },
    );

    app.get(
      '/v1/ledger/reconciliation',
      {
        config: READ,
        schema: {
          operationId: 'getLedgerReconciliation',
          summary: 'Check the ledger’s invariants',
          description:
            'Per asset, debits and credits balance (posted and pending); every stored balance equals the sum of its transfers; pending balances equal the open holds. Reads the whole org’s journal: run it off-peak on large ledgers.',
          tags: TAGS,
          security: SECURITY,
          response: { 200: ReconciliationSchema },
        },
      },
      async (request) => ledger.reconcile(requireOrgId(request)),
    );
  };
}
