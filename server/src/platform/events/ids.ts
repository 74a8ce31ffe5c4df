import { defineIdPrefixes } from '../../infra/ids.ts';

/** An event (`evt`: kept as stored and handed out, ARCHITECTURE.md "Ids"). */
export const EVENT_IDS = defineIdPrefixes('events', ['evt']);
