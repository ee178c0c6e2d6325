import { Writable } from 'node:stream';
import { MockAgent } from 'undici';
import { createLogger, type Logger } from '../../../core/log.ts';
import { InstabaseClient, type InstabaseClientOptions } from '../../../producers/instabase/index.ts';

export const ORIGIN = 'https://aihub.test';
export const BASE_URL = `${ORIGIN}/api`;
export const TOKEN = 'tok-UNIT-0123456789abcdef';

/** A pino logger whose lines land in `lines`, at debug level so every log call is captured. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger('test', stream);
  logger.level = 'debug';
  return { logger, lines };
}

export interface TestClient {
  client: InstabaseClient;
  agent: MockAgent;
  pool: ReturnType<MockAgent['get']>;
  sleeps: number[];
  lines: string[];
}

/** A client on a MockAgent whose sleeps are recorded and skipped, with random() fixed at 0.5. */
export function testClient(overrides: Partial<InstabaseClientOptions> = {}): TestClient {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const sleeps: number[] = [];
  const { logger, lines } = captureLogger();
  const client = new InstabaseClient({
    baseUrl: BASE_URL,
    token: TOKEN,
    context: 'acme_org',
    timeoutMs: 2000,
    maxRetries: 3,
    retryBaseMs: 100,
    retryMaxMs: 5000,
    rps: 0,
    concurrency: 4,
    maxPagesPerWalk: 50,
    logger,
    dispatcher: agent,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    now: () => Date.parse('2026-01-10T00:00:00Z'),
    ...overrides,
  });
  return { client, agent, pool: agent.get(ORIGIN), sleeps, lines };
}

export const json = { 'content-type': 'application/json' };
