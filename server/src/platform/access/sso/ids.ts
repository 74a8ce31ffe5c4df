import { defineIdPrefixes } from '../../../infra/ids.ts';

/** An org's SSO connection. */
export const SSO_IDS = defineIdPrefixes('access-sso', ['sso']);
