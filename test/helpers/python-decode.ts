/**
 * Runs test/python/decode_all.py (Confluent's Python client: Consumer + AvroDeserializer through the
 * registry) with the project's venv, made by test/python/setup.sh.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../core/config.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VENV_PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
const SCRIPT = path.join(ROOT, 'test', 'python', 'decode_all.py');

/** Why the Python decode cannot run here, or undefined when it can. */
export function pythonUnavailable(): string | undefined {
  if (!existsSync(VENV_PYTHON)) return `${VENV_PYTHON} is missing: run bash test/python/setup.sh`;
  const probe = spawnSync(VENV_PYTHON, ['-c', 'import confluent_kafka.schema_registry.avro, fastavro'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0)
    return `the venv lacks confluent-kafka[avro,schemaregistry]: run bash test/python/setup.sh (${probe.stderr.trim()})`;
  return undefined;
}

export interface TopicReport {
  format: 'avro' | 'json' | 'other';
  messages: number;
  tombstones: number;
  /** Values decoded as Python datetimes: the logical types were applied. */
  timestamps: number;
  /** The exact sum of every integer decoded (Python only), as a decimal string. */
  int_sum?: string;
  /** Paths named in `_nulled_fields`, each checked to be null. */
  nulled: Record<string, number>;
}

export interface DecodeReport {
  topics: Record<string, TopicReport>;
  errors: { topic: string; partition?: number; offset?: number; part: string; error: string }[];
  registry_subjects: number;
}

/** Every message of every topic starting with the config's topic prefix, as Confluent's client reads it. */
export function decodeWithConfluentPython(config: Config, timeoutS = 120): Promise<DecodeReport> {
  const args = [
    SCRIPT,
    '--bootstrap',
    config.kafka.brokers.join(','),
    '--registry',
    config.registry.url,
    '--prefix',
    config.kafka.topicPrefix,
    '--timeout',
    String(timeoutS),
  ];
  return new Promise((resolve, reject) => {
    execFile(
      VENV_PYTHON,
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: (timeoutS + 60) * 1000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`decode_all.py failed: ${err.message}\n${stderr.slice(-4000)}`));
        else resolve(JSON.parse(stdout) as DecodeReport);
      },
    );
  });
}
