import type { FieldError } from '../../../infra/http/errors.ts';
import { MAX_AMOUNT, type Metadata, type TransferCommand } from './model.ts';

/** The transfer types a client may ask for; `expire` is the expiry job's alone. */
export const REQUEST_TYPES = ['posted', 'pending', 'post', 'void', 'reversal'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

/** A transfer as a client sends it (the shape of the TransferRequest schema). */
export interface TransferRequest {
  readonly id?: string;
  readonly type?: RequestType;
  readonly debitAccountId?: string;
  readonly creditAccountId?: string;
  readonly asset?: string;
  readonly amount?: string;
  readonly pendingId?: string;
  readonly reversesId?: string;
  readonly timeoutSeconds?: number;
  readonly code?: string;
  readonly reference?: string;
  readonly metadata?: Metadata;
}

type Field = keyof TransferRequest;

/** Which fields each type needs and which it may carry, beyond id, type, code, reference, metadata. */
const FIELDS: Record<RequestType, { required: readonly Field[]; optional: readonly Field[] }> = {
  posted: { required: ['debitAccountId', 'creditAccountId', 'asset', 'amount'], optional: [] },
  pending: {
    required: ['debitAccountId', 'creditAccountId', 'asset', 'amount'],
    optional: ['timeoutSeconds'],
  },
  post: { required: ['pendingId'], optional: ['amount'] },
  void: { required: ['pendingId'], optional: [] },
  reversal: { required: ['reversesId'], optional: ['amount'] },
};
const TYPED_FIELDS: readonly Field[] = [
  'debitAccountId',
  'creditAccountId',
  'asset',
  'amount',
  'pendingId',
  'reversesId',
  'timeoutSeconds',
];

/**
 * Checks what the schema cannot say alone (which fields each type needs, distinct accounts, the
 * uint256 bound) and turns a request into a command. Every problem is reported at once, each
 * with a JSON Pointer under `pointer` (e.g. `/transfers/3`).
 */
export function parseTransferRequest(
  request: TransferRequest,
  id: string,
  pointer = '',
): { command: TransferCommand; errors?: undefined } | { command?: undefined; errors: FieldError[] } {
  const type = request.type ?? 'posted';
  const { required, optional } = FIELDS[type];
  const errors: FieldError[] = [];
  const error = (field: string, message: string) =>
    errors.push({ path: `${pointer}/${field}`, in: 'body', message });
  for (const field of required) {
    if (request[field] === undefined) error(field, `is required for a ${type} transfer`);
  }
  for (const field of TYPED_FIELDS) {
    if (request[field] !== undefined && !required.includes(field) && !optional.includes(field)) {
      error(field, `must not be set for a ${type} transfer`);
    }
  }
  if (
    request.debitAccountId !== undefined &&
    request.debitAccountId === request.creditAccountId &&
    required.includes('creditAccountId')
  ) {
    error('creditAccountId', 'must differ from debitAccountId');
  }
  let amount: bigint | undefined;
  if (request.amount !== undefined) {
    amount = /^[0-9]{1,78}$/.test(request.amount) ? BigInt(request.amount) : -1n;
    if (amount <= 0n || amount > MAX_AMOUNT)
      error('amount', 'must be an integer from 1 to 2^256-1, in minor units');
  }
  if (errors.length > 0) return { errors };
  return {
    command: {
      id,
      kind: type,
      ...(request.debitAccountId !== undefined && { debitAccountId: request.debitAccountId }),
      ...(request.creditAccountId !== undefined && { creditAccountId: request.creditAccountId }),
      ...(request.asset !== undefined && { asset: request.asset }),
      ...(amount !== undefined && { amount }),
      ...(request.pendingId !== undefined && { pendingId: request.pendingId }),
      ...(request.reversesId !== undefined && { reversesId: request.reversesId }),
      ...(request.timeoutSeconds !== undefined && { timeoutSeconds: request.timeoutSeconds }),
      code: request.code ?? null,
      reference: request.reference ?? null,
      metadata: request.metadata ?? null,
    },
  };
}
