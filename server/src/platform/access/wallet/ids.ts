import { defineIdPrefixes } from '../../../infra/ids.ts';

/** A wallet a user signs in with (`wal`: kept as stored and handed out, ARCHITECTURE.md "Ids"). */
export const WALLET_SIGN_IN_IDS = defineIdPrefixes('access-wallet', ['wal']);
