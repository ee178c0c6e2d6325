import type { ClickHouseClient } from '@clickhouse/client';
import type avro from 'avsc';
import type { Logger } from '../core/log.ts';
import type { ResourceName } from '../core/resources.ts';
import type { BatchBuffer } from './batch-buffer.ts';
import { isPermanentClickHouseError } from './clickhouse-errors.ts';
import { FatalSinkError, UnmappableSchemaError } from './errors.ts';
import type { RecordCoordinates, SinkTarget } from './ports.ts';
import { IncompatibleTableError } from './schema/ddl.ts';
import { serverFeatures, type ServerFeatures } from './schema/features.ts';
import { deriveLayout } from './schema/layout.ts';
import { applySchema } from './schema/migrate.ts';
import { qualifiedName } from './schema/sql.ts';
import { createRowMapper, type RowMapper } from './schema/rows.ts';
import { createTranscoder, type RowBinaryTable, type Transcoder } from './schema/rowbinary.ts';

export interface TableTargetOptions {
  resource: ResourceName;
  topic: string;
  dlqTopic: string;
  database: string;
  /** Defaults to the resource name; replays into a new table pass another. */
  table?: string;
  clickhouse: ClickHouseClient;
  logger: Logger;
  /**
   * ClickHouse ≥ 22.2: plain MergeTree tables only honour insert_deduplication_token within a
   * non-replicated deduplication window, which 18.16 does not know. It now follows from the server's
   * version (features.ts, 1000 from 22.2); a value here overrides that window.
   */
  dedupWindow?: number;
  /** The server's features; looked up once per client from version() when absent. */
  features?: ServerFeatures;
  /** Days after which audit rows expire (TTL), on servers with monthly partitions; unset: never. */
  auditTtlDays?: number;
  /**
   * How rows are encoded: 'RowBinary' (the default) transcodes the Avro bytes straight into RowBinary
   * (schema/rowbinary.ts); 'JSONEachRow' decodes records with avsc and maps them to JSON rows
   * (schema/rows.ts), the sinks' earlier path, kept as the reference the RowBinary one is tested against.
   */
  encoding?: 'RowBinary' | 'JSONEachRow';
}

/**
 * One resource's tables, following its writer schemas: the first record of each schema id derives
 * the layout from that schema, creates or alters the tables (an incompatible change stops the sink
 * before anything is committed), and compiles the row mapper for it.
 */
export class TableTarget implements SinkTarget {
  readonly resource: ResourceName;
  readonly topic: string;
  readonly dlqTopic: string;
  private readonly mappers = new Map<number, { mapper: RowMapper; tables: string[] }>();
  private readonly transcoders = new Map<number, { transcoder: Transcoder; tables: RowBinaryTable[] }>();

  constructor(private readonly o: TableTargetOptions) {
    this.resource = o.resource;
    this.topic = o.topic;
    this.dlqTopic = o.dlqTopic;
  }

  get table(): string {
    return this.o.table ?? this.o.resource;
  }

  async prepare(schemaId: number, type: avro.Type): Promise<void> {
    // The DDL follows the server: a failure to ask it is transient like any unreachable ClickHouse.
    let features = this.o.features ?? (await serverFeatures(this.o.clickhouse));
    if (this.o.dedupWindow !== undefined) features = { ...features, dedupWindow: this.o.dedupWindow };
    let layout: ReturnType<typeof deriveLayout>;
    try {
      layout = deriveLayout(this.o.resource, type, {
        database: this.o.database,
        table: this.table,
        features,
        ...(this.o.auditTtlDays ? { ttlDays: this.o.auditTtlDays } : {}),
      });
    } catch (err) {
      throw new UnmappableSchemaError(
        `schema ${schemaId} of ${this.topic} cannot be mapped to tables: ${(err as Error).message}`,
        { cause: err },
      );
    }
    try {
      // The deduplication window is part of CREATE TABLE; an older table gets it once (applySchema).
      const ran = await applySchema(this.o.clickhouse, layout);
      const changes = ran.filter((q) => !/^CREATE DATABASE/i.test(q));
      if (changes.length)
        this.o.logger.info(
          { resource: this.o.resource, schemaId, statements: changes.length },
          'tables brought in line with the schema',
        );
    } catch (err) {
      if (err instanceof IncompatibleTableError) {
        throw new FatalSinkError(
          `schema ${schemaId} of ${this.topic} is incompatible with table ${this.table}: ${err.message}`,
          { cause: err },
        );
      }
      if (isPermanentClickHouseError(err)) {
        throw new FatalSinkError(
          `creating or altering ${this.table} for schema ${schemaId} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
      // Anything else (ClickHouse unreachable, a timeout) is transient: the runner retries.
      throw err;
    }
    // The client selects no database (the sinks create theirs), so inserts name it.
    if (this.transcodes) {
      // The same schema JSON deriveLayout read the layout from.
      const transcoder = createTranscoder(layout, type.schema({ exportAttrs: true }), this.topic);
      this.transcoders.set(schemaId, {
        transcoder,
        tables: transcoder.tables.map((t) => ({ ...t, table: qualifiedName(this.o.database, t.table) })),
      });
    } else {
      const mapper = createRowMapper(layout);
      this.mappers.set(schemaId, {
        mapper,
        tables: mapper.tables.map((t) => qualifiedName(this.o.database, t)),
      });
    }
  }

  private get transcodes(): boolean {
    return (this.o.encoding ?? 'RowBinary') === 'RowBinary';
  }

  append(
    record: Record<string, unknown>,
    schemaId: number,
    coords: RecordCoordinates,
    buffer: BatchBuffer,
  ): void {
    const prepared = this.mappers.get(schemaId);
    if (!prepared) throw new Error(`schema ${schemaId} was not prepared`);
    prepared.mapper.map(record, coords, buffer.ingestedAt, buffer.out(schemaId, prepared.tables));
  }

  get transcode(): SinkTarget['transcode'] {
    return this.transcodes ? this.transcodeRecord : undefined;
  }

  private readonly transcodeRecord = (
    value: Buffer,
    schemaId: number,
    coords: RecordCoordinates,
    buffer: BatchBuffer,
  ): void => {
    const prepared = this.transcoders.get(schemaId);
    if (!prepared) throw new Error(`schema ${schemaId} was not prepared`);
    // After the wire format's magic byte and schema id.
    prepared.transcoder.transcode(
      value,
      5,
      coords.partition,
      coords.offset,
      buffer.ingestedAt,
      buffer.binary(schemaId, prepared.tables),
    );
  };
}
