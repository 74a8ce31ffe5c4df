import { createSsrfGuard } from '../../infra/http/ssrf.ts';
import type { KeelModule } from '../../infra/module.ts';
import type { Runtime } from '../../infra/runtime.ts';
import type { EventsService } from '../events/index.ts';
import { createDispatcher, type Dispatcher } from './dispatcher.ts';
import { WEBHOOK_EVENTS } from './events.ts';
import { WEBHOOK_IDS } from './ids.ts';
import { WEBHOOKS_PERMISSIONS } from './permissions.ts';
import { webhooksRoutes } from './routes.ts';
import { createSender } from './sender.ts';
import { createWebhooksService, type WebhooksService } from './service.ts';

export { WEBHOOK_ENDPOINT_DISABLED, WEBHOOK_TEST } from './events.ts';
export { signatureHeaders } from './sender.ts';
export type { WebhooksService } from './service.ts';

export interface WebhooksModuleDeps {
  readonly events: EventsService;
  /** Emails an org's owners and admins; the access platform provides it. */
  readonly notifyOrgAdmins?: (orgId: string, subject: string, text: string) => Promise<void>;
}

export function createWebhooksModule(
  runtime: Runtime,
  deps: WebhooksModuleDeps,
): KeelModule & { service: WebhooksService; dispatcher: Dispatcher } {
  const guard = createSsrfGuard({ allow: runtime.config.webhooks.ssrfAllowlist });
  const service = createWebhooksService({ runtime, guard });
  const dispatcher = createDispatcher({
    runtime,
    events: deps.events,
    sender: createSender(guard),
    notifyOrgAdmins: deps.notifyOrgAdmins,
  });
  return {
    name: 'webhooks',
    vocabulary: { idPrefixes: WEBHOOK_IDS, permissions: WEBHOOKS_PERMISSIONS, events: WEBHOOK_EVENTS },
    service,
    dispatcher,
    routes: webhooksRoutes(service),
    background: dispatcher,
  };
}
