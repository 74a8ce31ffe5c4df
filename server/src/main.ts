// The `keel` command. Only config and the logger are imported eagerly: tracing must start before
// the HTTP, pg and Redis libraries load, so everything else is imported once it has.
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig, redactConfig } from './config.ts';
import { createLogger, drainLogs, type Logger } from './infra/observability/logger.ts';
import { ROLES } from './roles.ts';
import { KEEL_VERSION } from './version.ts';

const HELP = `keel ${KEEL_VERSION}: the self-hosted production backend for web3 services

Usage:
  keel start [--role all|api|worker]   Serve the API and run the workers (default role: all)
  keel migrate                         Apply pending database migrations, then exit
  keel config check                    Validate the environment and print the resolved config
  keel audit verify [--org <orgId>]    Verify the audit log's hash chains; exit 1 if one is broken
  keel contracts deploy --chain <id>   Deploy Keel's contracts (the attestation registry) on an EVM
                                       chain of CHAIN_RPC_URLS, paid by KEEL_DEPLOYER_PRIVATE_KEY
  keel --version                       Print the version
  keel --help                          Print this help

Configuration comes from environment variables (and a .env file): see docs/configuration.md.
Without DATABASE_URL, Keel runs an embedded PostgreSQL with its data in KEEL_DATA_DIR.
`;

/** Exit codes: 0 success, 1 a runtime failure, 2 bad usage or configuration. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function fail(message: string, code = EXIT_FAILURE): never {
  process.stderr.write(`keel: ${message}\n`);
  process.exit(code);
}

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, EXIT_USAGE);
    throw error;
  }
}

/** Resolves the database: the configured URL, or an embedded server started for this process. */
async function withDatabase(config: Config, log: Logger) {
  if (config.database.url) return { config, stopDatabase: async () => {} };
  const { startEmbeddedPostgres } = await import('./infra/db/embedded.ts');
  const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, log });
  return {
    config: Object.freeze({ ...config, database: Object.freeze({ ...config.database, url: embedded.url }) }),
    stopDatabase: () => embedded.stop(),
  };
}

async function start(role: string) {
  const baseConfig = readConfig();
  if (!(ROLES as readonly string[]).includes(role))
    fail(`--role must be one of ${ROLES.join(', ')}`, EXIT_USAGE);
  const log = createLogger(baseConfig.log);
  const { startTracing } = await import('./infra/observability/tracing.ts');
  const tracing = await startTracing({
    endpoint: baseConfig.otel.endpoint,
    serviceName: 'keel',
    serviceVersion: KEEL_VERSION,
  });

  let shuttingDown = false;
  const cleanups: Array<() => Promise<void>> = [];
  const shutdown = async (signal: string) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(EXIT_FAILURE);
    }
    shuttingDown = true;
    log.info({ signal }, 'shutting down');
    // Last registered, first run; a step registered while shutting down is still run.
    for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) {
      try {
        await cleanup();
      } catch (error) {
        log.error({ err: error }, 'shutdown step failed');
      }
    }
    await tracing?.shutdown().catch(() => {});
    log.info('stopped');
    // Log lines are written asynchronously: write out what is buffered, in order, before exiting.
    await drainLogs(log);
    process.exit(0);
  };
  // Signals that arrive during start-up run the same ordered shutdown over what has started so far.
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const startedAt = performance.now();
  // Loading the program's modules takes about as long as starting the embedded database, and
  // one is CPU while the other is mostly waiting: do both at once.
  const modulesLoading = Promise.all([
    import('./infra/runtime.ts'),
    import('./infra/db/migrate.ts'),
    import('./app.ts'),
    import('./infra/jobs/runner.ts'),
  ]);
  modulesLoading.catch(() => {}); // Surfaced where it is awaited.
  const { config, stopDatabase } = await withDatabase(baseConfig, log);
  cleanups.push(stopDatabase);
  const [{ createRuntime }, { migrate }, { assembleModules, buildApp, systemJobs }, { startWorker }] =
    await modulesLoading;
  const runtime = await createRuntime(config, { log });
  cleanups.push(() => runtime.close());
  if (config.database.migrateOnStart) await migrate(runtime.database.pool, log);
  if (shuttingDown) return;

  const app = await buildApp(config, { runtime, role: role as 'all' });
  // The HTTP drain is registered now, so a signal from here on always drains HTTP first.
  const drain = async () => {
    // Stop accepting connections and let in-flight requests finish, up to the drain deadline.
    const drained = app.close();
    const deadline = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), config.http.shutdownDrainMs).unref(),
    );
    if ((await Promise.race([drained, deadline])) === 'timeout') {
      log.warn(
        { drainMs: config.http.shutdownDrainMs },
        'requests still in flight at the deadline: closing their connections',
      );
      app.server.closeAllConnections();
      await drained;
    }
  };
  cleanups.push(drain);
  const address = await app.listen({ port: config.http.port, host: config.http.host });
  log.info(
    { url: address, role, version: KEEL_VERSION, startMs: Math.round(performance.now() - startedAt) },
    'keel listening',
  );
  // Route validators and serializers not needed to answer yet are built now, between requests.
  app.deferredSchemas
    .buildAll()
    .catch((error: unknown) => log.error({ err: error }, 'route schemas could not be built'));
  if (role === 'api') return;
  // Workers stop after HTTP has drained and before the pools close, so their cleanups go below
  // the drain. Cleanups run one at a time from the end, so a signal mid-way is still ordered.
  cleanups.pop();
  try {
    const worker = await startWorker({ pool: runtime.database.pool, jobs: systemJobs(runtime), log });
    cleanups.push(() => worker.stop());
    for (const module of assembleModules(runtime)) {
      if (!module.background || shuttingDown) continue;
      await module.background.start();
      cleanups.push(() => module.background!.stop());
    }
  } finally {
    cleanups.push(drain);
  }
}

async function migrateCommand() {
  const baseConfig = readConfig();
  const log = createLogger(baseConfig.log);
  const { config, stopDatabase } = await withDatabase(baseConfig, log);
  const { createDatabase } = await import('./infra/db/database.ts');
  const { migrate } = await import('./infra/db/migrate.ts');
  const database = createDatabase({ url: config.database.url!, poolSize: 2, log });
  try {
    const { applied } = await migrate(database.pool, log);
    log.info(
      { applied: applied.length },
      applied.length > 0 ? 'migrations applied' : 'database is up to date',
    );
  } finally {
    await database.close();
    await stopDatabase();
  }
}

/** Verifies each org's audit chain (or one org's), prints one line per org, and fails if any is broken. */
async function auditVerifyCommand(orgId: string | undefined) {
  const baseConfig = readConfig();
  const log = createLogger(baseConfig.log);
  const { config, stopDatabase } = await withDatabase(baseConfig, log);
  const { createDatabase } = await import('./infra/db/database.ts');
  const { systemClock } = await import('./infra/clock.ts');
  const { newId } = await import('./infra/ids.ts');
  const { createAuditService } = await import('./platform/audit/index.ts');
  const database = createDatabase({ url: config.database.url!, poolSize: 2, log });
  // Verification reads the public keys only: no master key is needed.
  const audit = createAuditService({ database, clock: systemClock, newId, log });
  let checked = 0;
  let broken = 0;
  let missingTables = false;
  try {
    for await (const org of orgId ? [orgId] : audit.listChainOrgs()) {
      const result = await audit.verify(org);
      checked++;
      if (result.valid) {
        const range =
          result.firstSeq === null
            ? 'no entries'
            : `${result.checkedEntries} entries (seq ${result.firstSeq}-${result.lastSeq})`;
        process.stdout.write(`${org} ok: ${range}, ${result.checkpointsChecked} checkpoints checked\n`);
      } else {
        broken++;
        process.stdout.write(
          `${org} BROKEN at seq ${result.firstBrokenSeq} (${result.reason}): ${result.detail}\n`,
        );
      }
    }
    process.stdout.write(`${checked} audit chain${checked === 1 ? '' : 's'} verified, ${broken} broken\n`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P01') throw error; // 42P01: undefined_table
    missingTables = true;
  } finally {
    await database.close();
    await stopDatabase();
  }
  if (missingTables) fail('the audit tables do not exist: run `keel migrate` first');
  if (broken > 0) process.exitCode = EXIT_FAILURE;
}

/**
 * Deploys Keel's contracts on one chain of CHAIN_RPC_URLS with the deployer key, records their
 * addresses (the attestation module reads them from there) and prints one line per contract.
 */
async function contractsDeployCommand(chain: string | undefined) {
  if (!chain || !/^\d{1,15}$/.test(chain) || Number(chain) === 0) {
    fail('--chain <id> is required: the EVM chain id to deploy on, e.g. --chain 8453', EXIT_USAGE);
  }
  const chainId = Number(chain);
  const baseConfig = readConfig();
  const rpcUrl = baseConfig.chains.rpcUrls.find((entry) => entry.chainId === chainId)?.url;
  if (!rpcUrl) fail(`chain ${chainId} has no RPC URL: add ${chainId}=<url> to CHAIN_RPC_URLS`, EXIT_USAGE);
  const deployerPrivateKey = baseConfig.contracts.deployerPrivateKey;
  if (!deployerPrivateKey)
    fail('KEEL_DEPLOYER_PRIVATE_KEY is not set: the deployment needs a funded key', EXIT_USAGE);
  const log = createLogger(baseConfig.log);
  const { config, stopDatabase } = await withDatabase(baseConfig, log);
  const { createDatabase } = await import('./infra/db/database.ts');
  const { systemClock } = await import('./infra/clock.ts');
  const { deployContracts } = await import('./modules/identity/attestations/deploy.ts');
  const database = createDatabase({ url: config.database.url!, poolSize: 2, log });
  let missingTables = false;
  try {
    const deployments = await deployContracts({
      db: database.db,
      clock: systemClock,
      chainId,
      rpcUrl,
      deployerPrivateKey,
    });
    for (const deployment of deployments) {
      process.stdout.write(
        `${deployment.name} ${deployment.deployed ? 'deployed' : 'already deployed'} on chain ${chainId} ` +
          `at ${deployment.address} (transaction ${deployment.txHash})\n`,
      );
    }
  } catch (error) {
    if ((error as { code?: string }).code !== '42P01') throw error; // 42P01: undefined_table
    missingTables = true;
  } finally {
    await database.close();
    await stopDatabase();
  }
  if (missingTables) fail('the chain_contracts table does not exist: run `keel migrate` first');
}

async function main(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string', default: 'all' },
      org: { type: 'string' },
      chain: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.version) return void process.stdout.write(`${KEEL_VERSION}\n`);
  const [command, subcommand] = positionals;
  if (values.help || !command) return void process.stdout.write(HELP);
  switch (command) {
    case 'start':
      return start(values.role ?? 'all');
    case 'migrate':
      return migrateCommand();
    case 'config':
      if (subcommand !== 'check')
        fail(`unknown command "config ${subcommand ?? ''}"; try: keel config check`, EXIT_USAGE);
      process.stdout.write(`${JSON.stringify(redactConfig(readConfig()), null, 2)}\n`);
      return;
    case 'audit':
      if (subcommand !== 'verify')
        fail(`unknown command "audit ${subcommand ?? ''}"; try: keel audit verify`, EXIT_USAGE);
      return auditVerifyCommand(values.org);
    case 'contracts':
      if (subcommand !== 'deploy')
        fail(
          `unknown command "contracts ${subcommand ?? ''}"; try: keel contracts deploy --chain <id>`,
          EXIT_USAGE,
        );
      return contractsDeployCommand(values.chain);
    default:
      fail(`unknown command "${command}"\n\n${HELP}`, EXIT_USAGE);
  }
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    fail(`${error.message}\n\n${HELP}`, EXIT_USAGE);
  }
  fail((error as Error).stack ?? String(error));
}
