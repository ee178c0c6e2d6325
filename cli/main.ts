// instabase-stream: one CLI for the pipeline; every subcommand shares the zod-validated config.
import { Command, Option } from 'commander';
import { rootLogger } from '../core/log.ts';
import { redact } from '../core/secrets.ts';
import { producersDaemon, sinksDaemon, parseResources } from './daemons.ts';
import { configFrom, runUntilSignalled, type GlobalOptions } from './lifecycle.ts';
import { replayCommand } from './replay.ts';
import { checkSchemas, registerAllSchemas } from './schemas.ts';
import { startCommand } from './start.ts';
import { collectStatus, formatStatus } from './status.ts';
import { ConfigError, redactedConfig } from '../core/config.ts';
import { UsageError } from './usage-error.ts';
import { PrerequisiteError } from '../stack/index.ts';

/**
 * `stack` and `sim` are their own programs; they read process.argv when imported, so `args` becomes their
 * argv. `entry` is a literal import so that the build (tsconfig.build.json) rewrites it to the compiled module.
 */
async function delegate(entry: () => Promise<unknown>, args: string[]): Promise<void> {
  process.argv = [process.argv[0]!, process.argv[1]!, ...args];
  await entry();
}

const program = new Command('instabase-stream')
  .description('Streams the Instabase AI Hub API into Kafka (Avro) and on into ClickHouse.')
  .option(
    '-c, --config <file>',
    'config file (JSON or YAML); default ./instabase-stream.config.(json|yaml), env INSTABASE_STREAM_CONFIG',
  )
  .showHelpAfterError()
  .enablePositionalOptions()
  // A usage error (commander's own, or a UsageError from a command) exits 2, as configuration errors do;
  // subcommands inherit this because they are added after it.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

const globals = (): GlobalOptions => program.opts<GlobalOptions>();

program
  .command('start')
  .description(
    'run producers, sinks and the dashboard; without INSTABASE_API_TOKEN, against the built-in simulator and a local stack',
  )
  .option('--no-sim', 'never start the simulator (fail when there is no token)')
  .addOption(new Option('--sim-port <n>', 'simulator port').default(8700).argParser(Number))
  .action((o: { sim: boolean; simPort: number }) => startCommand({ ...globals(), ...o }));

program
  .command('producers')
  .description('poll the Instabase API into Kafka (resources split across instances with --resources)')
  .option('--resources <list>', 'comma-separated root resources this instance polls (default: all enabled)')
  .action(async (o: { resources?: string }) => {
    const resources = parseResources(o.resources);
    const config = configFrom(globals(), resources ? { producers: { resources } } : {});
    await runUntilSignalled(config, async (logger) => [await producersDaemon(config, logger)]);
  });

program
  .command('sinks')
  .description(
    'consume the resource topics into ClickHouse (scale out by running more with the same --group)',
  )
  .option('--resources <list>', 'comma-separated resources to sink (default: all)')
  .option('--group <name>', 'consumer group (default SINK_GROUP or instabase-clickhouse-sink)')
  .action(async (o: { resources?: string; group?: string }) => {
    const resources = parseResources(o.resources);
    const config = configFrom(globals(), {
      ...(resources ? { sinks: { resources } } : {}),
      ...(o.group ? { sinks: { ...(resources ? { resources } : {}), group: o.group } } : {}),
    });
    await runUntilSignalled(config, async (logger) => [
      await sinksDaemon(config, logger, {
        onFatal: () => {
          process.exitCode = 1;
          process.kill(process.pid, 'SIGTERM');
        },
      }),
    ]);
  });

program
  .command('replay')
  .description(
    'read a topic into a new table or database under a new consumer group, then stop at the high-water marks seen at start',
  )
  .requiredOption('--resource <name>', 'the resource whose topic to replay')
  .option('--table <name>', 'target table (default: the resource name)')
  .option('--database <name>', 'target database (default CLICKHOUSE_DATABASE)')
  .option('--group <name>', 'consumer group (default derived from database and table)')
  .option(
    '--from <where>',
    'earliest, a timestamp (ISO or epoch ms), or partition:offset pairs like 0:100,1:250',
    'earliest',
  )
  .option('--follow', 'keep running after catching up', false)
  .action(
    async (o: {
      resource: string;
      table?: string;
      database?: string;
      group?: string;
      from: string;
      follow: boolean;
    }) => {
      await replayCommand(configFrom(globals()), o);
    },
  );

program
  .command('schemas')
  .description('check the local Avro schemas against the registry (check), then register them (register)')
  .argument('<action>', 'check | register')
  .action(async (action: string) => {
    const config = configFrom(globals());
    if (action === 'check') process.exitCode = (await checkSchemas(config)) ? 0 : 1;
    else if (action === 'register') {
      if (!(await checkSchemas(config))) {
        process.exitCode = 1;
        return;
      }
      await registerAllSchemas(config);
    } else program.error(`unknown schemas action "${action}" (check | register)`);
  });

program
  .command('status')
  .description(
    'per resource: topic size, consumer lag, rows in ClickHouse, dead letters, freshness, last poll',
  )
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const rows = await collectStatus(configFrom(globals()));
    process.stdout.write(o.json ? `${redact(JSON.stringify(rows, null, 2))}\n` : `${formatStatus(rows)}\n`);
  });

program
  .command('config')
  .description('print the effective configuration, secrets shown as ***')
  .action(() => {
    process.stdout.write(`${JSON.stringify(redactedConfig(configFrom(globals())), null, 2)}\n`);
  });

program
  .command('stack')
  .description('the local Kafka, registry and ClickHouse: up | down | status | logs [service]')
  .allowUnknownOption()
  .helpOption(false)
  .argument('[args...]')
  .action((args: string[]) => delegate(() => import('../stack/cli.ts'), args));

program
  .command('sim')
  .description('the Instabase API simulator (instabase-sim --help for its knobs)')
  .allowUnknownOption()
  .helpOption(false)
  .argument('[args...]')
  .action((args: string[]) => delegate(() => import('../sim/cli.ts'), args));

program.parseAsync().catch((err: unknown) => {
  if (err instanceof UsageError || err instanceof ConfigError) {
    process.stderr.write(`${redact(err.message)}\n`);
    process.exit(2);
  }
  // A program the local stack needs is missing and could not be installed: the message names the
  // exact apt-get command, and a stack trace would only bury it.
  if (err instanceof PrerequisiteError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  rootLogger.error({ err }, 'command failed');
  process.stderr.write(`${redact(String((err as Error)?.message ?? err))}\n`);
  process.exit(1);
});
