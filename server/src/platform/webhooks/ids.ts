import { defineIdPrefixes } from '../../infra/ids.ts';

/**
 * Webhooks' ids. The prefixes are cryptic, and stay: ids already stored and handed to clients
 * keep them, and lists page in id order, which a second prefix for the same kind would break
 * (ARCHITECTURE.md, "Ids").
 */
export const WEBHOOK_IDS = defineIdPrefixes('webhooks', [
  // A webhook endpoint.
  'whe',
  // A webhook delivery: one event for one endpoint.
  'whd',
  // One attempt of a delivery (an HTTP request).
  'wha',
]);
