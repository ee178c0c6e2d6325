/**
 * Runs test/jvm/DecodeAll.java (Apache Avro's Java library and the Kafka Java client, from Maven
 * Central) as a single source file. Its jars are copied once into test-artifacts/jvm/lib with Maven,
 * which the local stack needs anyway.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../core/config.ts';
import type { DecodeReport } from './python-decode.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const JVM_DIR = path.join(ROOT, 'test', 'jvm');
const LIB = path.join(ROOT, 'test-artifacts', 'jvm', 'lib');

const hasLib = () => existsSync(LIB) && readdirSync(LIB).some((f) => f.startsWith('avro-'));
const runs = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;

/** Why the JVM reader cannot run here, or undefined when it can. */
export function jvmUnavailable(): string | undefined {
  // The source-file launcher and `instanceof` patterns need Java 16+; the stack's Kafka needs 17.
  if (!runs('java', ['-version'])) return 'java is not on PATH (Java 17+ is needed, as for the stack)';
  if (!hasLib() && !runs('mvn', ['-v']))
    return `mvn is not on PATH to fetch the JVM reader's jars into ${LIB}`;
  return undefined;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${(stderr || stdout).slice(-4000)}`));
      else resolve(stdout);
    });
  });
}

/** Every message of every topic starting with the config's prefix, as Avro's Java library reads it. */
export async function decodeWithJvm(config: Config, timeoutS = 120): Promise<DecodeReport> {
  if (!hasLib()) {
    await run(
      'mvn',
      [
        '-B',
        '-q',
        'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies',
        '-DincludeScope=runtime',
        `-DoutputDirectory=${LIB}`,
      ],
      JVM_DIR,
      600_000,
    );
  }
  const stdout = await run(
    'java',
    [
      '-cp',
      path.join(LIB, '*'),
      path.join(JVM_DIR, 'DecodeAll.java'),
      '--bootstrap',
      config.kafka.brokers.join(','),
      '--registry',
      config.registry.url,
      '--prefix',
      config.kafka.topicPrefix,
      '--timeout',
      String(timeoutS),
    ],
    ROOT,
    (timeoutS + 120) * 1000,
  );
  return JSON.parse(stdout) as DecodeReport;
}
