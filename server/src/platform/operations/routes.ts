import { sql } from 'kysely';
import { Type } from 'typebox';
import { migrationStatus } from '../../infra/db/migrate.ts';
import type { App } from '../../infra/http/pipeline.ts';
import type { Runtime } from '../../infra/runtime.ts';

/** A readiness check that takes longer than this counts as down. */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

const CheckSchema = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  latencyMs: Type.Number({ description: 'How long the check took.', examples: [1.42] }),
  detail: Type.Optional(Type.String({ examples: ['2 migrations pending'] })),
});

const ReadinessSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    checks: Type.Record(Type.String(), CheckSchema, {
      examples: [
        {
          postgres: { status: 'up', latencyMs: 0.9 },
          migrations: { status: 'up', latencyMs: 1.3 },
          redis: { status: 'up', latencyMs: 0.4 },
        },
      ],
    }),
  },
  { $id: 'Readiness', title: 'Readiness' },
);

type Check = { status: 'up' | 'down'; latencyMs: number; detail?: string };

async function timed(check: () => Promise<string | undefined>): Promise<Check> {
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${READINESS_CHECK_TIMEOUT_MS} ms`)),
        READINESS_CHECK_TIMEOUT_MS,
      );
    });
    const problem = await Promise.race([check(), timeout]);
    const latencyMs = round(performance.now() - startedAt);
    return problem ? { status: 'down', latencyMs, detail: problem } : { status: 'up', latencyMs };
  } catch (error) {
    return {
      status: 'down',
      latencyMs: round(performance.now() - startedAt),
      detail: (error as Error).message,
    };
  } finally {
    clearTimeout(timer);
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** Liveness, readiness and Prometheus metrics: served by every role, never authenticated. */
export async function operationsRoutes(app: App, runtime: Runtime) {
  app.get(
    '/health/live',
    {
      schema: {
        operationId: 'getLiveness',
        summary: 'Liveness: the process is running',
        description:
          'Answers 200 while the event loop runs. Checks no dependency: use it to restart a wedged process.',
        tags: ['operations'],
        response: {
          200: Type.Object({ status: Type.Literal('ok') }, { examples: [{ status: 'ok' }] }),
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness: every dependency is reachable',
        description:
          'Checks PostgreSQL, that every migration is applied, and Redis when configured, each with its latency. ' +
          'Answers 503 when any check is down: take the replica out of the load balancer.',
        tags: ['operations'],
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (_request, reply) => {
      const checks: Record<string, Check> = {};
      const [postgres, migrations, redis] = await Promise.all([
        timed(async () => {
          await sql`select 1`.execute(runtime.database.db);
          return undefined;
        }),
        timed(async () => {
          const status = await migrationStatus(runtime.database.pool);
          return status.pending.length > 0 ? `${status.pending.length} migrations pending` : undefined;
        }),
        runtime.kv.kind === 'redis'
          ? timed(async () => {
              await runtime.kv.ping();
              return undefined;
            })
          : undefined,
      ]);
      checks.postgres = postgres;
      checks.migrations = migrations;
      if (redis) checks.redis = redis;
      const ready = Object.values(checks).every((check) => check.status === 'up');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description:
          'Process metrics, HTTP request durations by route, method and status, and database pool gauges.',
        tags: ['operations'],
        produces: ['text/plain'],
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4.',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      const body = await runtime.metrics.registry.metrics();
      return reply.type(runtime.metrics.registry.contentType).send(body);
    },
  );
}
