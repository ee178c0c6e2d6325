// The V8 flag every process that runs a sink is started with (package.json's scripts, the Dockerfile's
// ENTRYPOINT, the `instabase-stream` bin, the tests' daemons; test/unit/core/node-flags.test.ts holds
// them to it), and the check a sink makes at start-up.
//
// Why: V8's memory reducer shrinks an idle process's heap, and when it is done it makes the old
// generation grow by at most 1.3× per mark-compact until the committed old generation has grown by
// 10 MB. A sink that idled (caught up, or waiting on a fill) and then gets a backlog keeps an old
// generation of about 30 MB whose garbage never lets it grow that much: V8 then starts marking soon
// after every mark-compact, about 10 a second, with concurrent marking taking much of the other core.
// In `npm run bench -- sink` that was 110-120 mark-compacts and 11.4-15.5 µs of CPU per row in most
// runs, against 15-35 and 6.8-9.9 µs without the memory reducer (test/bench/README.md). V8 reads the
// flag only when the heap is set up, so it must be on node's command line: NODE_OPTIONS does not
// accept it, and v8.setFlagsFromString comes too late.
export const SINK_NODE_FLAGS = ['--no-memory-reducer'] as const;

/** The flags of SINK_NODE_FLAGS that this process was not started with. */
export function missingSinkNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return SINK_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}

/** Whether `arg` is one of SINK_NODE_FLAGS (for a process that passes its flags on to one that runs no sink). */
export function isSinkNodeFlag(arg: string): boolean {
  return (SINK_NODE_FLAGS as readonly string[]).includes(arg);
}
