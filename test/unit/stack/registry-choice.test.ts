import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadStackConfig } from '../../../stack/config.ts';
import { APICURIO_2, APICURIO_3, checkSameFlavor, chooseRegistry } from '../../../stack/registry.ts';

/** A JDK home that findJava accepts: a `release` file with the major version and an executable bin/java. */
function fakeJdk(root: string, major: number): string {
  const home = path.join(root, `jdk-${major}`);
  fs.mkdirSync(path.join(home, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(home, 'release'), `JAVA_VERSION="${major}.0.1"\n`);
  fs.writeFileSync(path.join(home, 'bin', 'java'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return home;
}

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('chooseRegistry', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'jdks-'));
  const jdk17 = fakeJdk(root, 17);
  const jdk21 = fakeJdk(root, 21);
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('runs Apicurio 3.3 on a Java 21+, and 2.6 on the Java 17 Debian 12 ships', () => {
    const on21 = withEnv({ STACK_REGISTRY_JAVA_HOME: jdk21, STACK_REGISTRY_VERSION: undefined }, () =>
      chooseRegistry(),
    );
    assert.equal(on21.flavor, APICURIO_3);
    assert.equal(on21.java.bin, path.join(jdk21, 'bin', 'java'));
    const on17 = withEnv({ STACK_REGISTRY_JAVA_HOME: jdk17, STACK_REGISTRY_VERSION: undefined }, () =>
      chooseRegistry(),
    );
    assert.equal(on17.flavor, APICURIO_2);
    assert.equal(on17.java.major, 17);
  });

  it('honours STACK_REGISTRY_VERSION, and refuses a Java too old for the version asked for', () => {
    for (const v of ['2', '2.6', '2.6.13.Final']) {
      const pick = withEnv({ STACK_REGISTRY_JAVA_HOME: jdk21, STACK_REGISTRY_VERSION: v }, () =>
        chooseRegistry(),
      );
      assert.equal(pick.flavor, APICURIO_2, v);
    }
    assert.throws(
      () =>
        withEnv({ STACK_REGISTRY_JAVA_HOME: jdk17, STACK_REGISTRY_VERSION: '3.3' }, () => chooseRegistry()),
      /no Java 21\+ found/,
    );
    assert.throws(
      () =>
        withEnv({ STACK_REGISTRY_JAVA_HOME: jdk17, STACK_REGISTRY_VERSION: '2.5' }, () => chooseRegistry()),
      /STACK_REGISTRY_VERSION=2.5 is not one the stack runs/,
    );
  });

  it('writes the 2.6 registry the same ccompat settings as 3.3, under 2.x names, with a file-backed store', () => {
    const cfg = loadStackConfig({ dir: path.join(root, 'stack') }, {});
    const env = { KAFKA_BROKERS: '127.0.0.1:9092', SCHEMA_REGISTRY_URL: '', CLICKHOUSE_URL: '' };
    const v2 = APICURIO_2.properties(cfg, env, '/data/registry');
    assert.match(
      v2,
      /^quarkus\.datasource\.jdbc\.url=jdbc:h2:file:\/data\/registry\/h2\/registry;WRITE_DELAY=0$/m,
    );
    assert.match(v2, /^registry\.ccompat\.use-canonical-hash=true$/m);
    assert.match(v2, /^registry\.ccompat\.legacy-id-mode\.enabled=false$/m);
    assert.match(v2, /^registry\.rest\.artifact\.deletion\.enabled=true$/m);
    const v3 = APICURIO_3.properties(cfg, env, '/data/registry');
    assert.match(v3, /^apicurio\.ccompat\.use-canonical-hash=true$/m);
    assert.match(v3, /^apicurio\.kafkasql\.bootstrap\.servers=127\.0\.0\.1:9092$/m);
  });
});

describe('checkSameFlavor', () => {
  it('refuses to switch a stack whose Kafka holds the other registry’s schema ids', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flavor-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cfg = loadStackConfig({ dir }, {});
    checkSameFlavor(cfg, APICURIO_3); // a fresh stack takes either
    checkSameFlavor(cfg, APICURIO_2);
    fs.mkdirSync(path.join(dir, 'registry'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'registry', 'flavor'), `${APICURIO_2.version}\n`); // as prepare() records it
    checkSameFlavor(cfg, APICURIO_2);
    assert.throws(() => checkSameFlavor(cfg, APICURIO_3), /written by Apicurio 2\.6\.13\.Final/);

    // A stack from before the flavor file: its Kafka holding the 3.3 journal marks it as 3.3.
    const old = fs.mkdtempSync(path.join(os.tmpdir(), 'flavor-old-'));
    t.after(() => fs.rmSync(old, { recursive: true, force: true }));
    fs.mkdirSync(path.join(old, 'kafka', 'data', 'kafkasql-journal-0'), { recursive: true });
    assert.throws(
      () => checkSameFlavor(loadStackConfig({ dir: old }, {}), APICURIO_2),
      /written by Apicurio 3\.3\.3/,
    );
  });
});
