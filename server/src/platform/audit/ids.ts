import { defineIdPrefixes } from '../../infra/ids.ts';

/**
 * The audit log's ids. The prefixes are cryptic, and stay: signed checkpoints name their key
 * by id, and ids already stored and handed out keep them (ARCHITECTURE.md, "Ids").
 */
export const AUDIT_IDS = defineIdPrefixes('audit', [
  // An audit checkpoint: a signed statement of an org's chain head.
  'acp',
  // An audit signing key (an org's Ed25519 key pair that signs checkpoints).
  'ask',
]);
