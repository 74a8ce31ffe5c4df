import { defineIdPrefixes } from '../../infra/ids.ts';

/**
 * Access's ids. Three-letter prefixes predate the rule that new prefixes are readable words;
 * they stay because ids already stored and handed out keep them (ARCHITECTURE.md, "Ids").
 */
export const ACCESS_IDS = defineIdPrefixes('access', [
  // An org.
  'org',
  // A user.
  'usr',
  // An API key.
  'key',
  // A signed-in session.
  'ses',
  // An invitation into an org.
  'inv',
]);
