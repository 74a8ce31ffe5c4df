import { Type } from 'typebox';
import { type Permission, requireOrgId } from '../../infra/http/auth.ts';
import { type FieldError, KeelError } from '../../infra/http/errors.ts';
import type { App } from '../../infra/http/pipeline.ts';
import {
  CreateMeterBody,
  IngestBody,
  IngestResult,
  MeterList,
  MeterSchema,
  QuotaList,
  QuotaParams,
  QuotaSchema,
  SetQuotaBody,
  UsageQuerystring,
  UsageReportSchema,
} from './schemas.ts';
import type { Failure, Meter, MeteringService, Quota, Result, UsageReport } from './service.ts';
import type { GroupByDimension } from './store.ts';

/** The permissions of the usage routes (declared in the access platform's PERMISSIONS table). */
export const USAGE_READ: Permission = 'usage:read';
export const USAGE_WRITE: Permission = 'usage:write';

const common = { tags: ['usage'], security: [{ bearer: [] }] };

function fail(
  failure: Failure,
  location: FieldError['in'],
  prefix: (index: number | undefined) => string,
): never {
  const errors =
    failure.code === 'VALIDATION_FAILED'
      ? failure.errors.map((error) => ({
          path: `${prefix(error.index)}${error.path}`,
          in: location,
          message: error.message,
        }))
      : undefined;
  throw new KeelError(failure.code, failure.detail, errors ? { errors } : {});
}

function unwrap<T>(result: Result<T>, location: FieldError['in'] = 'body'): T {
  if (result.ok) return result.value;
  return fail(result, location, () => '');
}

const presentMeter = (meter: Meter) => ({ ...meter, createdAt: meter.createdAt?.toISOString() ?? null });

const presentQuota = (quota: Quota) => ({
  ...quota,
  periodStart: quota.periodStart.toISOString(),
  periodEnd: quota.periodEnd.toISOString(),
  createdAt: quota.createdAt.toISOString(),
  updatedAt: quota.updatedAt.toISOString(),
});

const presentReport = (report: UsageReport) => ({
  granularity: report.granularity,
  from: report.from.toISOString(),
  to: report.to.toISOString(),
  data: report.data.map((point) => ({ ...point, periodStart: point.periodStart.toISOString() })),
});

export function meteringRoutes(service: MeteringService) {
  return async (app: App) => {
    app.post(
      '/v1/usage/events',
      {
        config: { permission: USAGE_WRITE, idempotent: true },
        schema: {
          ...common,
          operationId: 'recordUsageEvents',
          summary: 'Record meter events',
          description:
            'One event or an array of up to 1,000, with CloudEvents attribute names; `type` names the meter. ' +
            'Idempotent by event id: an id the org sent before is reported as `duplicate` and not counted ' +
            'again. A batch with any bad event is refused whole, with every bad field listed.',
          body: IngestBody,
          response: { 200: IngestResult },
        },
      },
      async (request) => {
        const body = request.body;
        const batch = Array.isArray(body);
        const principal = request.principal;
        const result = await service.recordMeterEvents(requireOrgId(request), batch ? body : [body], {
          keyId: principal?.id ?? '',
          builtInMeters: false,
        });
        if (!result.ok)
          return fail(result, 'body', (index) => (batch && index !== undefined ? `/${index}` : ''));
        return { ...result.value, results: [...result.value.results] };
      },
    );

    app.get(
      '/v1/usage',
      {
        config: { permission: USAGE_READ },
        schema: {
          ...common,
          operationId: 'getUsage',
          summary: 'Usage by hour or day, per meter, key or route',
          description:
            'Aggregated usage of every meter, API requests (`api_requests`) included. Request counts ' +
            'reach this report within a few seconds (each replica flushes every 5 s); meter events at once.',
          querystring: UsageQuerystring,
          response: { 200: UsageReportSchema },
        },
      },
      async (request) => {
        const query = request.query;
        const groupBy = (query.groupBy ?? []).filter(
          (dimension): dimension is GroupByDimension => dimension !== 'meter',
        );
        const report = unwrap(
          await service.usage(requireOrgId(request), {
            granularity: query.granularity,
            from: query.from === undefined ? undefined : new Date(query.from),
            to: query.to === undefined ? undefined : new Date(query.to),
            meters: query.meter,
            groupBy,
          }),
          'query',
        );
        return presentReport(report);
      },
    );

    app.post(
      '/v1/usage/meters',
      {
        config: { permission: USAGE_WRITE, idempotent: true },
        schema: {
          ...common,
          operationId: 'createMeter',
          summary: 'Define a meter',
          description:
            'Creates the meter, or answers 200 with it when the org has one with this name and aggregation ' +
            '(409 METER_EXISTS with another aggregation).',
          body: CreateMeterBody,
          response: { 200: MeterSchema, 201: MeterSchema },
        },
      },
      async (request, reply) => {
        const { meter, created } = unwrap(await service.createMeter(requireOrgId(request), request.body));
        return reply.code(created ? 201 : 200).send(presentMeter(meter));
      },
    );

    app.get(
      '/v1/usage/meters',
      {
        config: { permission: USAGE_READ },
        schema: {
          ...common,
          operationId: 'listMeters',
          summary: 'List meters: built-in ones and the org’s own',
          description: 'At most 100 meters per org, so there is no pagination.',
          response: { 200: MeterList },
        },
      },
      async (request) => ({ data: (await service.listMeters(requireOrgId(request))).map(presentMeter) }),
    );

    app.get(
      '/v1/usage/quotas',
      {
        config: { permission: USAGE_READ },
        schema: {
          ...common,
          operationId: 'listQuotas',
          summary: 'List quotas with this month’s usage',
          response: { 200: QuotaList },
        },
      },
      async (request) => ({ data: (await service.listQuotas(requireOrgId(request))).map(presentQuota) }),
    );

    app.put(
      '/v1/usage/quotas/:meter',
      {
        config: { permission: USAGE_WRITE },
        schema: {
          ...common,
          operationId: 'setQuota',
          summary: 'Set the monthly quota of a meter',
          description:
            'Usage reaching 80 % and 100 % of the quota in a UTC month emits `usage.threshold_reached` ' +
            '(deliverable as a webhook), once per threshold, quota and month; usage is not refused.',
          params: QuotaParams,
          body: SetQuotaBody,
          response: { 200: QuotaSchema },
        },
      },
      async (request) =>
        presentQuota(
          unwrap(
            await service.setQuota(requireOrgId(request), request.params.meter, request.body.quota),
            'params',
          ),
        ),
    );

    app.delete(
      '/v1/usage/quotas/:meter',
      {
        config: { permission: USAGE_WRITE },
        schema: {
          ...common,
          operationId: 'deleteQuota',
          summary: 'Remove the quota of a meter',
          params: QuotaParams,
          response: { 204: Type.Null({ description: 'Removed.' }) },
        },
      },
      async (request, reply) => {
        unwrap(await service.deleteQuota(requireOrgId(request), request.params.meter), 'params');
        return reply.code(204).send(null);
      },
    );
  };
}
