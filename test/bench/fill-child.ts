// The fill's child process (see fillInChild): argv is prefix, partitions, flushRows, records.
import { createLogger } from '../../core/log.ts';
import { benchConfig } from './config.ts';
import { fillTopic } from './fill.ts';

const [prefix = '', partitions = '3', flushRows = '25000', records = '0'] = process.argv.slice(2);
const logger = createLogger('bench-fill', undefined, process.env.LOG_LEVEL ?? 'error');
const config = benchConfig(prefix, { partitions: Number(partitions), flushRows: Number(flushRows) });

fillTopic(config, logger, Number(records)).then(
  (filled) => process.send!({ ok: true, filled }, () => process.exit(0)),
  (err: unknown) =>
    process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
      process.exit(1),
    ),
);
