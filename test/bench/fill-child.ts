// The fill's child process (see fillInChild): argv is prefix, partitions, flushRows, records, and the
// file to write the records' placement to.
import { createLogger } from '../../core/log.ts';
import { benchConfig } from './config.ts';
import { fillTopic, writePlacement, type ChildReply } from './fill.ts';

const [prefix = '', partitions = '3', flushRows = '25000', records = '0', placementFile = ''] =
  process.argv.slice(2);
const logger = createLogger('bench-fill', undefined, process.env.LOG_LEVEL ?? 'error');
const config = benchConfig(prefix, { partitions: Number(partitions), flushRows: Number(flushRows) });

fillTopic(config, logger, Number(records)).then(
  ({ summary, valueId, placement }) => {
    writePlacement(placementFile, placement);
    const reply: ChildReply = { ok: true, summary, valueId };
    process.send!(reply, () => process.exit(0));
  },
  (err: unknown) =>
    process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
      process.exit(1),
    ),
);
