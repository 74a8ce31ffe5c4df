import { Type } from 'typebox';
import { defineEvent } from '../../../platform/events/index.ts';

const subjectId = Type.String({ examples: ['sbj_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const walletId = Type.String({ examples: ['wlk_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const accountId = Type.String({
  description: 'CAIP-10 account id.',
  examples: ['eip155:1:0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B'],
});

export const WALLET_LINKED = defineEvent({
  type: 'wallet.linked',
  version: 1,
  description: 'A wallet proved control by signing a challenge and was linked to a subject (human).',
  payload: Type.Object({
    subjectId,
    walletId,
    accountId,
    kind: Type.Union([
      Type.Literal('eoa'),
      Type.Literal('contract'),
      Type.Literal('ed25519'),
      Type.Literal('secp256k1'),
    ]),
  }),
});

export const WALLET_UNLINKED = defineEvent({
  type: 'wallet.unlinked',
  version: 1,
  description: 'A wallet was unlinked from its subject; it may now be linked to any subject of the org.',
  payload: Type.Object({ subjectId, walletId, accountId }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const IDENTITY_WALLET_EVENTS = [WALLET_LINKED, WALLET_UNLINKED];
