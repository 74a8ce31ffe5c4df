import { defineIdPrefixes } from '../../infra/ids.ts';

/** Identity's ids (kept as stored and handed out, ARCHITECTURE.md "Ids"). */
export const IDENTITY_IDS = defineIdPrefixes('identity', [
  // A subject: one human per org.
  'sbj',
  // A verification: one verdict.
  'vrf',
]);
