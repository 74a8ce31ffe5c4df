import { defineIdPrefixes } from '../../../infra/ids.ts';

/** Wallet linking's ids (kept as stored and handed out, ARCHITECTURE.md "Ids"). */
export const IDENTITY_WALLET_IDS = defineIdPrefixes('identity-wallets', [
  // A wallet challenge: the message a wallet signs to prove control.
  'wch',
  // A wallet link: a wallet linked to a subject.
  'wlk',
]);
