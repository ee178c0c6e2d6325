// The producers bench's simulator, in a child process (see simulatorInChild in producers.ts), so that
// the bench's CPU time and RSS are the producers' own. argv is auditLogs, batches, runs, filesPerRun,
// docsPerFile, batchSpacingMs. It replies with where it listens and its (frozen) virtual time, and stays up until the
// parent goes away.
import { startSimulator } from '../../sim/index.ts';

const [auditLogs, batches, runs, filesPerRun, docsPerFile, batchSpacingMs] = process.argv
  .slice(2)
  .map(Number);

startSimulator({
  port: 0,
  tickMs: 0,
  scale: { auditLogs, batches, runs, filesPerRun, docsPerFile, batchSpacingMs },
}).then(
  (sim) => {
    const stop = () => void sim.close().finally(() => process.exit(0));
    process.once('disconnect', stop);
    process.once('SIGTERM', stop);
    process.send!({ ok: true, url: sim.url, token: sim.token, now: sim.now() });
  },
  (err: unknown) =>
    process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
      process.exit(1),
    ),
);
