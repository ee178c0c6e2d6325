import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ensurePrerequisites,
  installCommands,
  PrerequisiteError,
  type Requirement,
} from '../../../stack/prerequisites.ts';

/** A requirement whose presence flips once `installs` of its packages have happened. */
function fake(what: string, apt: string[], state: { installed: Set<string> }): Requirement {
  return { what, apt, present: () => apt.every((p) => state.installed.has(p)) };
}

function tmpLog(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prereq-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'apt.log');
}

describe('ensurePrerequisites', () => {
  it('does nothing when every program is there', async (t) => {
    const state = { installed: new Set(['maven']) };
    const calls: string[][] = [];
    const installed = await ensurePrerequisites([fake('mvn', ['maven'], state)], {
      progress: () => undefined,
      logFile: tmpLog(t),
      canInstall: true,
      runApt: async (args) => (calls.push(args), 0),
    });
    assert.deepEqual(installed, []);
    assert.deepEqual(calls, []);
  });

  it('without root or apt, names every missing program once and the exact command to run', async (t) => {
    const state = { installed: new Set<string>() };
    const java = fake('Java 17+', ['openjdk-17-jre-headless'], state);
    const reqs = [
      java,
      fake('mvn', ['maven'], state),
      java,
      fake('clickhouse', ['clickhouse-server'], state),
    ];
    await assert.rejects(
      ensurePrerequisites(reqs, { progress: () => undefined, logFile: tmpLog(t), canInstall: false }),
      (err: Error) => {
        assert.ok(err instanceof PrerequisiteError);
        assert.match(err.message, /missing on this machine: Java 17\+; mvn; clickhouse\./);
        const cmd = installCommands(['openjdk-17-jre-headless', 'maven', 'clickhouse-server']);
        assert.ok(err.message.includes(cmd), err.message);
        return true;
      },
    );
  });

  it('refuses to install when STACK_AUTO_INSTALL=0, even as root', async (t) => {
    const state = { installed: new Set<string>() };
    await assert.rejects(
      ensurePrerequisites([fake('mvn', ['maven'], state)], {
        progress: () => undefined,
        logFile: tmpLog(t),
        env: { ...process.env, STACK_AUTO_INSTALL: '0' },
      }),
      /STACK_AUTO_INSTALL=0.*\n.*apt-get install -y --no-install-recommends maven/,
    );
  });

  it('as root with apt: updates the lists, then installs the missing packages in one go', async (t) => {
    const state = { installed: new Set(['maven']) };
    const calls: string[][] = [];
    const lines: string[] = [];
    const installed = await ensurePrerequisites(
      [
        fake('mvn', ['maven'], state),
        fake('Java', ['openjdk-17-jre-headless'], state),
        fake('ch', ['clickhouse-server'], state),
      ],
      {
        progress: (l) => lines.push(l),
        logFile: tmpLog(t),
        canInstall: true,
        runApt: async (args) => {
          calls.push(args);
          if (args.includes('install'))
            for (const p of args.slice(args.indexOf('install') + 1)) state.installed.add(p);
          return 0;
        },
      },
    );
    assert.deepEqual(installed, ['openjdk-17-jre-headless', 'clickhouse-server']);
    assert.deepEqual(calls, [
      ['-o', 'DPkg::Lock::Timeout=600', '-q', 'update'],
      [
        '-o',
        'DPkg::Lock::Timeout=600',
        '-q',
        'install',
        '-y',
        '--no-install-recommends',
        'openjdk-17-jre-headless',
        'clickhouse-server',
      ],
    ]);
    assert.match(lines.at(-1) ?? '', /^installed openjdk-17-jre-headless, clickhouse-server in \d+s$/);
  });

  it('fails with the tail of apt output when apt fails, and when the program is still missing after', async (t) => {
    const state = { installed: new Set<string>() };
    const logFile = tmpLog(t);
    await assert.rejects(
      ensurePrerequisites([fake('mvn', ['maven'], state)], {
        progress: () => undefined,
        logFile,
        canInstall: true,
        runApt: async (args) => {
          if (args.includes('update')) return 0;
          fs.appendFileSync(logFile, 'E: Unable to locate package maven\n');
          return 100;
        },
      }),
      /apt-get install -y --no-install-recommends maven failed \(exit 100\)[^]*Unable to locate package maven/,
    );
    await assert.rejects(
      ensurePrerequisites([fake('mvn', ['maven'], state)], {
        progress: () => undefined,
        logFile,
        canInstall: true,
        runApt: async () => 0, // "succeeds" but mvn never appears
      }),
      /installed maven but still missing: mvn/,
    );
  });

  it('waits for another apt run that holds the lock, then goes on', { timeout: 30_000 }, async (t) => {
    const state = { installed: new Set<string>() };
    const logFile = tmpLog(t);
    let updates = 0;
    const lines: string[] = [];
    await ensurePrerequisites([fake('mvn', ['maven'], state)], {
      progress: (l) => lines.push(l),
      logFile,
      canInstall: true,
      runApt: async (args) => {
        if (args.includes('update') && ++updates === 1) {
          fs.appendFileSync(
            logFile,
            'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42\n',
          );
          return 100;
        }
        if (args.includes('install')) state.installed.add('maven');
        return 0;
      },
    });
    assert.equal(updates, 2);
    assert.ok(lines.some((l) => l.includes('apt is busy')));
  });
});

describe('installCommands', () => {
  it('uses sudo unless running as root', () => {
    assert.equal(
      installCommands(['maven'], false),
      'sudo apt-get update && sudo apt-get install -y --no-install-recommends maven',
    );
    assert.equal(
      installCommands(['maven'], true),
      'apt-get update && apt-get install -y --no-install-recommends maven',
    );
  });
});
