/**
 * The producers' guarantees under trouble, on the real stack: every fault knob of the simulator on at
 * once gives the same topic contents as a clean run; a producer killed with SIGKILL mid-walk and
 * restarted leaves no gap and no duplicate; an incompatible schema stops start-up with an error that
 * names the subject and the field.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { createLogger } from '../../core/log.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import {
  ensureTopics,
  pipelineTopicSpecs,
  producerDlqTopic,
  resourceTopic,
  valueSubject,
} from '../../core/topics.ts';
import { startProducers } from '../../producers/daemon.ts';
import { IncompatibleSchemaError } from '../../producers/registration.ts';
import { valueSchema } from '../../schemas/index.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { quietLogger, readTopics, testConfig, uniqueName, waitFor } from '../helpers/pipeline.ts';
import { builtModule } from '../helpers/built.ts';
import { freePort } from '../helpers/sink-clickhouse.ts';
import { produceOnce } from '../helpers/sink-pipeline.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const SCALE = {
  batches: 120,
  runs: 12,
  filesPerRun: 2,
  docsPerFile: 2,
  auditLogs: 400,
  conversations: 3,
  docsPerConversation: 2,
  queries: 3,
  files: 10,
};

const sims: Simulator[] = [];
after(async () => {
  for (const sim of sims) await sim.close();
});

function overridesFor(sim: Simulator, auditLogsPageSize = 50) {
  return {
    producers: {
      files: sim.expected.files().map((f) => f.path),
      queryIds: sim.expected.queryIds(),
      initialLookbackMs: 5 * YEAR_MS,
      defaultIntervalMs: 3_600_000,
      auditLogsSettleMs: 0,
      batchesPageSize: 20,
      auditLogsPageSize,
    },
    instabase: { retryBaseMs: 20, retryMaxMs: 1_500, maxRetries: 8 },
  };
}

/** Per topic, the set of (key, content hash): what a topic holds, independent of order and batching. */
async function contents(prefix: string, sim: Simulator) {
  const cfg = testConfig(prefix, overridesFor(sim), {
    INSTABASE_API_URL: sim.url,
    INSTABASE_API_TOKEN: sim.token,
  });
  const topics = await readTopics(
    cfg,
    RESOURCE_NAMES.flatMap((r) => [resourceTopic(cfg, r), producerDlqTopic(cfg, r)]),
  );
  const out: Record<string, { records: string[]; deadLetters: string[] }> = {};
  for (const r of RESOURCE_NAMES) {
    out[r] = {
      records: topics
        .get(resourceTopic(cfg, r))!
        .map((m) => `${String(m.key)}#${String(m.value!._content_hash)}`)
        .sort(),
      deadLetters: topics
        .get(producerDlqTopic(cfg, r))!
        .map((m) => {
          const letter = JSON.parse(m.raw!.toString()) as { reason: string; raw: string };
          return `${letter.reason}:${letter.raw}`;
        })
        .sort(),
    };
  }
  return out;
}

async function pollOnce(prefix: string, sim: Simulator): Promise<void> {
  await produceOnce(
    testConfig(prefix, overridesFor(sim), { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token }),
    sim,
  );
}

describe('producers under trouble', () => {
  test('every fault knob on: the topics hold exactly what a clean run gives', async () => {
    const clean = await startSimulator({
      port: 0,
      seed: 'faults',
      scale: SCALE,
      badRecords: 0.05,
      logger: quietLogger,
    });
    const faulty = await startSimulator({
      port: 0,
      seed: 'faults',
      scale: SCALE,
      badRecords: 0.05,
      logger: quietLogger,
      faults: {
        rate429: 0.05,
        retryAfterS: 1,
        rate500: 0.05,
        rate503: 0.05,
        rateSlow: 0.05,
        slowMs: 50,
        rateTruncate: 0.05,
        rateMalformed: 0.05,
        rateReset: 0.05,
        maxConsecutive: 2,
      },
    });
    sims.push(clean, faulty);
    const cleanPrefix = uniqueName('itclean');
    const faultyPrefix = uniqueName('itfault');
    await pollOnce(cleanPrefix, clean);
    await pollOnce(faultyPrefix, faulty);
    const injected = faulty.stats().faults;
    assert.ok(
      Object.values(injected).reduce((a, b) => a + b, 0) > 10,
      `faults were injected: ${JSON.stringify(injected)}`,
    );
    const [a, b] = [await contents(cleanPrefix, clean), await contents(faultyPrefix, faulty)];
    for (const r of RESOURCE_NAMES) {
      assert.ok(a[r]!.records.length > 0, `${r}: the clean run published records`);
      assert.deepEqual(b[r]!.records, a[r]!.records, `${r}: same records`);
      assert.deepEqual(b[r]!.deadLetters, a[r]!.deadLetters, `${r}: only the bad records are dead-lettered`);
    }
  });

  test('SIGKILL mid-walk, then a restart: no gap and no duplicate', async () => {
    // Slow responses make the walk long enough to be killed in the middle of it.
    const sim = await startSimulator({
      port: 0,
      seed: 'kill',
      startTime: Date.now(),
      scale: { ...SCALE, auditLogs: 3_000, batches: 400 },
      logger: quietLogger,
      faults: { rateSlow: 1, slowMs: 60 },
    });
    sims.push(sim);
    const prefix = uniqueName('itkill');
    const cfg = testConfig(prefix, overridesFor(sim), {
      INSTABASE_API_URL: sim.url,
      INSTABASE_API_TOKEN: sim.token,
    });
    const dir = mkdtempSync(join(tmpdir(), 'ibs-kill-'));
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(overridesFor(sim, 10)));
    const port = await freePort();
    const env = {
      ...process.env,
      TOPIC_PREFIX: cfg.kafka.topicPrefix,
      KAFKA_CLIENT_ID: cfg.kafka.clientId,
      KAFKA_BROKERS: cfg.kafka.brokers.join(','),
      SCHEMA_REGISTRY_URL: cfg.registry.url,
      CLICKHOUSE_URL: cfg.clickhouse.url,
      INSTABASE_API_URL: sim.url,
      INSTABASE_API_TOKEN: sim.token,
      HTTP_PORT: String(port),
      LOG_LEVEL: 'error',
    };
    const run = () =>
      spawn(process.execPath, [builtModule('cli/main.ts'), '--config', configFile, 'producers'], {
        env,
        stdio: 'ignore',
      });
    const published = async () =>
      (await readTopics(cfg, [resourceTopic(cfg, 'audit_logs')])).get(resourceTopic(cfg, 'audit_logs'))!
        .length;

    const kafka = new Kafka({ brokers: cfg.kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const offsets = async () => {
      try {
        return (await admin.fetchTopicOffsets(resourceTopic(cfg, 'audit_logs'))).reduce(
          (n, p) => n + Number(p.high),
          0,
        );
      } catch {
        return 0;
      }
    };
    const first = run();
    // High-water marks, not a full read: a reader never sees the topic quiet while the walk goes on.
    await waitFor('some audit entries to be published', async () => (await offsets()) > 100, 180_000);
    await admin.disconnect();
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const atKill = await published();
    const expectedAudit = sim.expected.auditLogs({ end_time: String(sim.now()) }).total;
    assert.ok(atKill < expectedAudit, `killed mid-walk (${atKill} of ${expectedAudit} published)`);

    const second = run();
    try {
      await waitFor(
        'the restarted producer to finish its first poll of every resource',
        async () => {
          try {
            const res = await fetch(`http://127.0.0.1:${port}/healthz`);
            const body = (await res.json()) as {
              components: Array<{ jobs?: Record<string, { lastSuccessAt: number | null }> }>;
            };
            const jobs = Object.values(body.components[0]?.jobs ?? {});
            return jobs.length === 6 && jobs.every((j) => j.lastSuccessAt !== null);
          } catch {
            return false;
          }
        },
        240_000,
      );
    } finally {
      second.kill('SIGTERM');
      await new Promise((r) => second.once('exit', r));
    }
    const topics = await readTopics(cfg, [resourceTopic(cfg, 'audit_logs'), resourceTopic(cfg, 'batches')]);
    const audit = topics.get(resourceTopic(cfg, 'audit_logs'))!;
    assert.equal(audit.length, expectedAudit, 'every audit entry exactly once');
    assert.equal(
      new Set(audit.map((m) => `${String(m.key)}@${String(m.value!.timestamp_millis)}`)).size,
      audit.length,
    );
    const batches = topics.get(resourceTopic(cfg, 'batches'))!;
    assert.equal(batches.length, sim.expected.batches().keys.length, 'every batch exactly once');
    assert.equal(new Set(batches.map((m) => String(m.key))).size, batches.length);
  });

  test('started while Kafka is down, the producers wait, say why, and start once it is up', async () => {
    const sim = await startSimulator({ port: 0, seed: 'down', scale: SCALE, logger: quietLogger });
    sims.push(sim);
    // A bootstrap address where nothing listens yet; later a proxy to the real broker opens there (the
    // broker's metadata then sends the client to its advertised address).
    const port = await freePort();
    const [brokerHost, brokerPort] = testConfig('x').kafka.brokers[0]!.split(':');
    const prefix = uniqueName('itdown');
    const cfg = testConfig(
      prefix,
      { ...overridesFor(sim), producers: { ...overridesFor(sim).producers, resources: ['batches'] } },
      { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token, KAFKA_BROKERS: `127.0.0.1:${port}` },
    );
    const lines: string[] = [];
    const logger = createLogger(
      'test',
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
      'info',
    );
    let settled = false;
    const starting = startProducers(cfg, logger).finally(() => (settled = true));
    await waitFor('a log line saying what the producers wait for', () =>
      lines.some((l) => l.includes('waiting for Kafka') && l.includes('connection refused')),
    );
    assert.equal(settled, false, 'still waiting, not exited');
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(brokerPort), brokerHost);
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    try {
      const producers = await starting;
      await producers.stop();
      assert.ok(lines.some((l) => l.includes('producers started')));
      assert.ok(
        !lines.some((l) => /waiting for Kafka.*SASL/.test(l)),
        'a refused connection is not blamed on SASL or TLS settings',
      );
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });

  test('several processes creating the same topics at once all succeed, each topic once', async () => {
    const prefix = uniqueName('ittopics');
    const cfg = testConfig(prefix);
    const specs = pipelineTopicSpecs(cfg, [...RESOURCE_NAMES]);
    // Separate clients, as separate processes would have: no shared metadata cache.
    const admins = Array.from({ length: 6 }, () =>
      new Kafka({ brokers: cfg.kafka.brokers, logLevel: logLevel.NOTHING }).admin(),
    );
    await Promise.all(admins.map((a) => a.connect()));
    try {
      const results = await Promise.allSettled(admins.map((a) => ensureTopics(a, specs, quietLogger)));
      assert.deepEqual(
        results
          .filter((r) => r.status === 'rejected')
          .map((r) => String((r as PromiseRejectedResult).reason)),
        [],
      );
      const { topics } = await admins[0]!.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
      assert.deepEqual(
        topics.map((t) => `${t.name}:${t.partitions.length}`).sort(),
        specs.map((s) => `${s.topic}:${s.numPartitions}`).sort(),
      );
      assert.ok(
        topics.every((t) => t.partitions.every((p) => p.leader >= 0)),
        'every partition has a leader',
      );
      await admins[0]!.deleteTopics({ topics: specs.map((s) => s.topic) }).catch(() => undefined);
    } finally {
      await Promise.all(admins.map((a) => a.disconnect()));
    }
  });

  test('an incompatible schema stops start-up, naming the subject and the field', async () => {
    const sim = await startSimulator({ port: 0, seed: 'schema', scale: SCALE, logger: quietLogger });
    sims.push(sim);
    const prefix = uniqueName('itschema');
    const cfg = testConfig(
      prefix,
      { producers: { resources: ['batches'] } },
      { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token },
    );
    const subject = valueSubject(resourceTopic(cfg, 'batches'));
    // What an older deployment registered: the same record with `id` as a string.
    const older = valueSchema('batches');
    const retyped = {
      ...older,
      fields: older.fields.map((f) => (f.name === 'id' ? { ...f, type: 'string' } : f)),
    };
    const res = await fetch(`${cfg.registry.url}/subjects/${encodeURIComponent(subject)}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(retyped), schemaType: 'AVRO' }),
    });
    assert.equal(res.status, 200);
    await assert.rejects(
      () => startProducers(cfg, quietLogger),
      (err: unknown) =>
        err instanceof IncompatibleSchemaError &&
        err.subject === subject &&
        /field "id" changed type from "string" to "long"/.test(err.message),
    );
  });
});
