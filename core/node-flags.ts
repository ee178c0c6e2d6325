// The V8 flag every process that runs a sink is started with, and the check a sink makes at start-up.
// Where it is passed: `npm start` and `npm run sinks`, the image's ENTRYPOINT and the `instabase-stream`
// bin (both run every command), `npm test` and `npm run bench` (sinks run in their processes), and the
// tests' sink processes (cliNodeArgs). test/unit/core/node-flags.test.ts checks each of them.
//
// Why: V8's memory reducer shrinks an idle process's heap. When it is done, V8 raises the old
// generation's limit by at most 1.3× per mark-compact until the committed old generation has grown by
// 10 MB. A sink that idled (caught up, or waiting on a fill) and then gets a backlog keeps an old
// generation of about 30 MB, which never grows that much. V8 then starts marking again soon after
// every mark-compact, about ten times a second, and concurrent marking takes much of the other core.
// In `npm run bench -- sink` such runs did about 100-120 mark-compacts at 11.4-15.5 µs of CPU per row,
// against 15-35 at 6.9-10.7 µs with the flag (test/bench/README.md). V8 reads the flag only when it
// sets up the heap, so it must be on node's command line: NODE_OPTIONS does not accept it, and
// v8.setFlagsFromString comes too late.
export const SINK_NODE_FLAGS = ['--no-memory-reducer'] as const;

/** A V8 flag as V8 reads it: `_` and `-` alike, `--nofoo` as `--no-foo`. */
function normalizeFlag(arg: string): string {
  const flag = arg.replace(/_/g, '-');
  return /^--no[^-]/.test(flag) ? `--no-${flag.slice(4)}` : flag;
}

/** Whether `arg` is one of SINK_NODE_FLAGS (for a process that passes its flags on to one that runs no sink). */
export function isSinkNodeFlag(arg: string): boolean {
  return (SINK_NODE_FLAGS as readonly string[]).includes(normalizeFlag(arg));
}

/** The flags of SINK_NODE_FLAGS that this process was not started with. */
export function missingSinkNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const given = new Set(execArgv.map(normalizeFlag));
  return SINK_NODE_FLAGS.filter((flag) => !given.has(flag));
}

/**
 * node's arguments for the CLI module `cli` with `globals` (options such as `--config FILE`) and then
 * `command` (its name first): SINK_NODE_FLAGS first when the command runs a sink.
 */
export function cliNodeArgs(cli: string, globals: readonly string[], command: readonly string[]): string[] {
  const runsSink = ['sinks', 'start', 'replay'].includes(command[0] ?? '');
  return [...(runsSink ? SINK_NODE_FLAGS : []), cli, ...globals, ...command];
}
