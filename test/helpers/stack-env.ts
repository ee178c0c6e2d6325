/**
 * Endpoints for integration tests. test/run.ts exports these after starting the local stack; run a test
 * file directly (node --import tsx --test FILE) and the CONVENTIONS.md defaults apply.
 */
export interface TestEndpoints {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  clickhouseUrl: string;
  clickhouseUser: string;
  clickhousePassword: string;
}

export function testEndpoints(env: NodeJS.ProcessEnv = process.env): TestEndpoints {
  return {
    kafkaBrokers: (env.KAFKA_BROKERS || '127.0.0.1:9092')
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
    schemaRegistryUrl: (env.SCHEMA_REGISTRY_URL || 'http://127.0.0.1:8081/apis/ccompat/v7').replace(
      /\/+$/,
      '',
    ),
    clickhouseUrl: env.CLICKHOUSE_URL || 'http://127.0.0.1:8123',
    clickhouseUser: env.CLICKHOUSE_USER || 'default',
    clickhousePassword: env.CLICKHOUSE_PASSWORD ?? '',
  };
}
